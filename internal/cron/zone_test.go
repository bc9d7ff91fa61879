package cron

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestValidateZone(t *testing.T) {
	for _, name := range []string{"UTC", "", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"} {
		loc, err := ValidateZone(name)
		if err != nil || loc == nil {
			t.Errorf("ValidateZone(%q): %v", name, err)
		}
	}
	for _, tt := range []struct{ name, want string }{
		{"Local", `"Local" is the host's own zone`},
		{"Mars/Olympus_Mons", `"Mars/Olympus_Mons" is not a known time zone`},
		{"../../etc/passwd", "is not a known time zone"},
	} {
		_, err := ValidateZone(tt.name)
		if err == nil || !errors.Is(err, ErrUnknownZone) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateZone(%q) = %v, want ErrUnknownZone with %q", tt.name, err, tt.want)
		}
	}
}

// TestValidateZone_Suggests needs a zoneinfo directory; the pure part is TestSuggestZone.
func TestValidateZone_Suggests(t *testing.T) {
	if len(zoneNames()) == 0 {
		t.Skip("no zoneinfo directory: suggestions are off, TestSuggestZone covers the matching")
	}
	_, err := ValidateZone("Europe/Pari")
	if want := `"Europe/Pari" is not a known time zone (did you mean "Europe/Paris"?)`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestSuggestZone(t *testing.T) {
	names := listZones(fstest.MapFS{
		"Europe/Paris":            {Data: []byte("TZif2...")},
		"Europe/Berlin":           {Data: []byte("TZif2...")},
		"America/New_York":        {Data: []byte("TZif2...")},
		"America/Los_Angeles":     {Data: []byte("TZif2...")},
		"UTC":                     {Data: []byte("TZif2...")},
		"posix/Europe/Paris":      {Data: []byte("TZif2...")},
		"zone1970.tab":            {Data: []byte("# tab")},
		"leapseconds":             {Data: []byte("# leap")},
		"right/America/New_York":  {Data: []byte("TZif2...")},
		"Australia/Lord_Howe":     {Data: []byte("TZif2...")},
		"Asia/Kolkata":            {Data: []byte("TZif2...")},
		"Asia/Calcutta":           {Data: []byte("TZif2...")},
		"America/Argentina/Salta": {Data: []byte("TZif2...")},
	})
	if len(names) != 9 {
		t.Fatalf("listZones: %v", names)
	}
	for _, tt := range []struct{ in, want string }{
		{"Europe/Pari", "Europe/Paris"},
		{"europe/paris", "Europe/Paris"},
		{"America/New York", "America/New_York"},
		{"America/Newyork", "America/New_York"},
		{"Australia/Lord Howe", "Australia/Lord_Howe"},
		{"Asia/Kolkatta", "Asia/Kolkata"},
		{"utc", "UTC"},
		{"Mars/Olympus_Mons", ""},
		{"Berlin", ""},
	} {
		if got := suggestZone(tt.in, names); got != tt.want {
			t.Errorf("suggestZone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

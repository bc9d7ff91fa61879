package config

import (
	"math"
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{"12B", 12, ""},
		{"1K", 1024, ""},
		{"1k", 1024, ""},
		{"1KiB", 1024, ""},
		{"1KB", 1000, ""},
		{"50MiB", 50 << 20, ""},
		{"50M", 50 << 20, ""},
		{"50MB", 50_000_000, ""},
		{"2G", 2 << 30, ""},
		{"2gib", 2 << 30, ""},
		{"2GB", 2_000_000_000, ""},
		{"1T", 1 << 40, ""},
		{"1TB", 1e12, ""},
		{"1P", 1 << 50, ""},
		{"1PB", 1e15, ""},
		{"1.5G", 3 << 29, ""},
		{"1.5GB", 1_500_000_000, ""},
		{"0.1K", 102, ""}, // a fraction of a byte is dropped
		{"8191P", 8191 << 50, ""},
		{"9223372036854775807", math.MaxInt64, ""},
		{"9223372036854775808", 0, "is too large"},
		{"8192P", 0, "is too large"},
		{"99999999999999999999", 0, "is too large"},
		{"", 0, `"" is not a size`},
		{"G", 0, `"G" is not a size`},
		{"-1G", 0, "a size cannot be negative"},
		{"1.G", 0, `"1.G" is not a size`},
		{".5G", 0, `".5G" is not a size`},
		{"12 GB", 0, `"12 GB" is not a size (try "12GB" or "12GiB")`},
		{"12 G", 0, `"12 G" is not a size (try "12G")`},
		{" 12G", 0, `" 12G" is not a size (try "12G")`},
		{"20GG", 0, `unknown unit "GG"`},
		{"20Gi", 0, `unknown unit "Gi"`},
		{"1e9", 0, `unknown unit "e9"`},
		{"0x10", 0, `unknown unit "x10"`},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseByteSize(%q) = %d, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "4096", "50MiB", "2GB", "1.5G", "12 GB", "20GG", "-1", "9223372036854775807", "8191.99999999999999999P", "1.000000000000000000001K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			if n != 0 {
				t.Errorf("ParseByteSize(%q) = %d with error %v", s, n, err)
			}
			if !strings.Contains(err.Error(), "is not a size") && !strings.Contains(err.Error(), "is too large") {
				t.Errorf("ParseByteSize(%q): error %q does not say what is wrong", s, err)
			}
			return
		}
		if n < 0 {
			t.Errorf("ParseByteSize(%q) = %d, negative", s, n)
		}
		if strings.ContainsAny(s, " \t\n-+") {
			t.Errorf("ParseByteSize(%q) = %d, accepted blanks or a sign", s, n)
		}
		// A whole number of bytes reads back as itself.
		if !strings.ContainsAny(s, ".") && strings.Trim(s, "0123456789") == "" {
			if m, _ := ParseByteSize(strings.TrimLeft(s, "0") + "B"); strings.TrimLeft(s, "0") != "" && m != n {
				t.Errorf("ParseByteSize(%q) = %d but with a B %d", s, n, m)
			}
		}
	})
}

package gpu

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestState_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "gpus.json")
	want := map[Owner][]string{
		{Task: "llm", Instance: 1}:   {"GPU-b", "GPU-a"},
		{Task: "llm", Instance: 0}:   {"GPU-c"},
		{Task: "embed", Instance: 0}: {"GPU-d"},
	}
	if err := saveState(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
	for o, us := range want {
		if !slices.Equal(got[o], us) {
			t.Errorf("%v: loaded %v, want %v (allocation order kept)", o, got[o], us)
		}
	}
	// Overwrite: the rename leaves no temporary file behind.
	if err := saveState(path, map[Owner][]string{}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "gpus.json" {
		t.Errorf("state dir holds %v, want only gpus.json", entries)
	}
	if got, err := loadState(path); err != nil || len(got) != 0 {
		t.Errorf("after saving nothing: %v, %v", got, err)
	}
}

func TestState_Load(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		wantErr string
		want    int
	}{
		{name: "missing file is no state", content: nil},
		{name: "corrupt", content: statePtr(`{"version":1,"assignments":[{"uuid":`), wantErr: "parse gpu state"},
		{name: "other version", content: statePtr(`{"version":7,"assignments":[]}`), wantErr: "version 7, want 1"},
		{name: "entries without uuid or task are skipped", want: 1,
			content: statePtr(`{"version":1,"assignments":[{"uuid":"","task":"a"},{"uuid":"GPU-x","task":""},{"uuid":"GPU-y","task":"b","instance":2}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gpus.json")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := loadState(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("loadState = %v, want an error with %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Errorf("loadState: %v", err)
			}
			if got == nil || len(got) != tt.want {
				t.Errorf("loadState = %v, want %d owners (never nil)", got, tt.want)
			}
		})
	}
}

func statePtr(s string) *string { return &s }

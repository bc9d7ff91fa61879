package main

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
		str     string // String of the parsed value
	}{
		{in: "0", want: 0, str: "0"},
		{in: "4096", want: 4096, str: "4KiB"},
		{in: "1000", want: 1000, str: "1000"},
		{in: "4K", want: 4 << 10, str: "4KiB"},
		{in: "4KiB", want: 4 << 10, str: "4KiB"},
		{in: "32MiB", want: 32 << 20, str: "32MiB"},
		{in: "32m", want: 32 << 20, str: "32MiB"},
		{in: "2GiB", want: 2 << 30, str: "2048MiB"},
		{in: "", wantErr: true},
		{in: "MiB", wantErr: true},
		{in: "5MB", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1.5MiB", wantErr: true},
		{in: " 1", wantErr: true},
		{in: "9223372036854775807K", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b byteSize
			err := b.Set(tt.in)
			if (err != nil) != tt.wantErr || int64(b) != tt.want {
				t.Fatalf("Set(%q) = %d, %v; want %d, error %v", tt.in, b, err, tt.want, tt.wantErr)
			}
			if !tt.wantErr && b.String() != tt.str {
				t.Errorf("String() = %q, want %q", b.String(), tt.str)
			}
		})
	}
}

func TestForkSummary(t *testing.T) {
	tests := []struct {
		ok, n int
		err   error
		want  string
	}{
		{5, 5, nil, "forked 5 of 5 (0 failed)"},
		{3, 10, fmt.Errorf("fork/exec /x: %w", syscall.EAGAIN),
			"forked 3 of 10 (7 failed: fork/exec /x: resource temporarily unavailable (EAGAIN))"},
		{0, 1, errors.New("boom"), "forked 0 of 1 (1 failed: boom)"},
	}
	for _, tt := range tests {
		if got := forkSummary(tt.ok, tt.n, tt.err); got != tt.want {
			t.Errorf("forkSummary(%d, %d, %v) = %q, want %q", tt.ok, tt.n, tt.err, got, tt.want)
		}
	}
}

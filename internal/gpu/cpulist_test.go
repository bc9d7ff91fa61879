package gpu

import (
	"math/bits"
	"slices"
	"testing"
)

func TestMaskBits(t *testing.T) {
	tests := []struct {
		name  string
		words []uint
		want  []int
	}{
		{"empty", nil, nil},
		{"zero words", []uint{0, 0}, nil},
		{"bit 0", []uint{1}, []int{0}},
		{"top bit of word 0", []uint{1 << (bits.UintSize - 1)}, []int{bits.UintSize - 1}},
		{"word 1", []uint{0, 0b101}, []int{bits.UintSize, bits.UintSize + 2}},
		{"several words", []uint{0b11, 0, 1}, []int{0, 1, 2 * bits.UintSize}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maskBits(tt.words); !slices.Equal(got, tt.want) {
				t.Errorf("maskBits(%b) = %v, want %v", tt.words, got, tt.want)
			}
		})
	}
}

func TestFormatCPUList(t *testing.T) {
	tests := []struct {
		cpus []int
		want string
	}{
		{nil, ""},
		{[]int{3}, "3"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 1, 2, 3, 8, 10, 11}, "0-3,8,10-11"},
		{[]int{11, 10, 3, 2, 1, 0, 8, 8}, "0-3,8,10-11"},
	}
	for _, tt := range tests {
		if got := formatCPUList(tt.cpus); got != tt.want {
			t.Errorf("formatCPUList(%v) = %q, want %q", tt.cpus, got, tt.want)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"", nil, false},
		{"\n", nil, false},
		{"5\n", []int{5}, false},
		{"0-3,8,10-11", []int{0, 1, 2, 3, 8, 10, 11}, false},
		{" 0-1 , 4 ", []int{0, 1, 4}, false},
		{"3-1", nil, true},
		{"a", nil, true},
		{"-1", nil, true},
		{"1,", nil, true},
		{"0-99999999", nil, true},
	}
	for _, tt := range tests {
		got, err := parseCPUList(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseCPUList(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzParseCPUList: a list or an error, never a panic; what parses formats
// back to a list that parses to the same CPUs.
func FuzzParseCPUList(f *testing.F) {
	for _, seed := range []string{"", "0", "0-55,112-167", "3-1", "1,,2", "0-65535"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := parseCPUList(s)
		if err != nil {
			return
		}
		again, err := parseCPUList(formatCPUList(cpus))
		if err != nil {
			t.Fatalf("formatted list of %q does not parse: %v", s, err)
		}
		slices.Sort(cpus)
		if want := slices.Compact(cpus); !slices.Equal(again, want) {
			t.Fatalf("round trip of %q: %v, want %v", s, again, want)
		}
	})
}

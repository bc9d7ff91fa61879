package gpu

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSysfsPCIName(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"00000000:18:00.0", "0000:18:00.0", false},
		{"00000000:AB:00.0", "0000:ab:00.0", false},
		{"0000:ab:00.0", "0000:ab:00.0", false},
		{"00010000:1A:02.1", "10000:1a:02.1", false},
		{"", "", true},
		{"00000000", "", true},
		{"0000000G:18:00.0", "", true},
		{"00000000:18:00", "", true},
		{"00000000:18:00.0x", "", true},
	}
	for _, tt := range tests {
		got, err := sysfsPCIName(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("sysfsPCIName(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// writeSysfs creates <root>/bus/pci/devices/<dev>/<attr> files.
func writeSysfs(t *testing.T, root, dev string, attrs map[string]string) {
	t.Helper()
	dir := filepath.Join(root, "bus", "pci", "devices", dev)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, value := range attrs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSysfsNUMAAndCPUs(t *testing.T) {
	root := t.TempDir()
	writeSysfs(t, root, "0000:18:00.0", map[string]string{"numa_node": "1\n", "local_cpulist": "56-111,168-223\n"})
	writeSysfs(t, root, "0000:2a:00.0", map[string]string{"numa_node": "-1\n", "local_cpulist": "\n"})
	writeSysfs(t, root, "0000:3a:00.0", map[string]string{"numa_node": "x\n", "local_cpulist": "3-1\n"})

	tests := []struct {
		busID    string
		wantNode int
		nodeErr  bool
		wantCPUs string
		cpusErr  bool
	}{
		{"00000000:18:00.0", 1, false, "56-111,168-223", false},
		{"00000000:2A:00.0", -1, false, "", false},
		{"00000000:3A:00.0", -1, true, "", true},
		{"00000000:5D:00.0", -1, true, "", true}, // no such device
	}
	for _, tt := range tests {
		t.Run(tt.busID, func(t *testing.T) {
			node, err := sysfsNUMANode(root, tt.busID)
			if node != tt.wantNode || (err != nil) != tt.nodeErr {
				t.Errorf("sysfsNUMANode = %d, %v; want %d, error %v", node, err, tt.wantNode, tt.nodeErr)
			}
			cpus, err := sysfsLocalCPUs(root, tt.busID)
			if cpus != tt.wantCPUs || (err != nil) != tt.cpusErr {
				t.Errorf("sysfsLocalCPUs = %q, %v; want %q, error %v", cpus, err, tt.wantCPUs, tt.cpusErr)
			}
		})
	}
}

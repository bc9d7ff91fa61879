package gpu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultSysfsRoot is where sysfs is mounted; NUMA node and local CPUs
// are read below it when NVML cannot answer.
const DefaultSysfsRoot = "/sys"

// sysfsPCIName turns NVML's bus id ("00000000:AB:00.0": 8 hex digits of
// domain, upper case) into the name of the device's directory under
// /sys/bus/pci/devices ("0000:ab:00.0": at least 4 digits, lower case).
func sysfsPCIName(busID string) (string, error) {
	domain, rest, ok := strings.Cut(strings.TrimSpace(busID), ":")
	if !ok {
		return "", fmt.Errorf("pci bus id %q: want domain:bus:device.function", busID)
	}
	d, err := strconv.ParseUint(domain, 16, 32)
	if err != nil {
		return "", fmt.Errorf("pci bus id %q: bad domain %q", busID, domain)
	}
	var bus, dev, fn uint
	if n, err := fmt.Sscanf(rest, "%2x:%2x.%1x", &bus, &dev, &fn); n != 3 || err != nil || len(rest) != len("00:00.0") {
		return "", fmt.Errorf("pci bus id %q: want domain:bus:device.function", busID)
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", d, bus, dev, fn), nil
}

// sysfsNUMANode reads the NUMA node of the PCI device busID below root
// (-1: the kernel does not know, as on single-node hosts).
func sysfsNUMANode(root, busID string) (int, error) {
	data, err := readPCIAttr(root, busID, "numa_node")
	if err != nil {
		return -1, err
	}
	node, err := strconv.Atoi(data)
	if err != nil || node < -1 {
		return -1, fmt.Errorf("numa_node of %s: %q is not a node number", busID, data)
	}
	return node, nil
}

// sysfsLocalCPUs reads the CPUs local to the PCI device busID below root,
// as a list ("0-55,112-167").
func sysfsLocalCPUs(root, busID string) (string, error) {
	data, err := readPCIAttr(root, busID, "local_cpulist")
	if err != nil {
		return "", err
	}
	cpus, err := parseCPUList(data)
	if err != nil {
		return "", fmt.Errorf("local_cpulist of %s: %w", busID, err)
	}
	return formatCPUList(cpus), nil
}

func readPCIAttr(root, busID, attr string) (string, error) {
	name, err := sysfsPCIName(busID)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(root, "bus", "pci", "devices", name, attr))
	if err != nil {
		return "", fmt.Errorf("read %s of GPU %s: %w", attr, busID, err)
	}
	return strings.TrimSpace(string(data)), nil
}

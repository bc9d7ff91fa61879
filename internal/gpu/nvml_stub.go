//go:build !(linux && cgo)

package gpu

import (
	"fmt"
	"log/slog"
)

// OpenNVML returns ErrNoNVML: go-nvml needs cgo and Linux, and this
// binary was built without them.
func OpenNVML(*slog.Logger) (Inventory, error) {
	return nil, fmt.Errorf("%w: glmd was built without cgo (NVML needs CGO_ENABLED=1 on Linux)", ErrNoNVML)
}

//go:build !linux

package supervisor

import (
	"context"
	"log/slog"
)

// OSLauncher is unavailable on this platform.
type OSLauncher struct{}

// NewOSLauncher returns ErrUnsupported: glmd supervises processes on Linux only.
func NewOSLauncher(log *slog.Logger) (*OSLauncher, error) { return nil, ErrUnsupported }

// Launch returns ErrUnsupported.
func (l *OSLauncher) Launch(ctx context.Context, c *Command) (Process, error) {
	return nil, ErrUnsupported
}

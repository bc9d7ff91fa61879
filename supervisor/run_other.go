//go:build !linux

package supervisor

import "context"

// Run returns ErrUnsupported.
func (l *OSLauncher) Run(ctx context.Context, c *Command, maxOutput int) (Exit, []byte, error) {
	return Exit{}, nil, ErrUnsupported
}

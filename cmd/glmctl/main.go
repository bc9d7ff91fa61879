// Command glmctl controls the glmd agent on this host through its control
// socket: status, start, stop, restart, logs, reload and events.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// An interrupt ends `logs -f` and `events -f` cleanly; a second one,
	// after stop(), kills as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

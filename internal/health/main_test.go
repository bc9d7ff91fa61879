package health

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// childEnv makes the test binary serve /health on many ports instead of
// running tests: the benchmark starts it so that the servers' CPU is not the
// probing side's.
const childEnv = "GLMD_HEALTH_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	goleak.VerifyTestMain(closingIdle{m})
}

// closingIdle closes the package transports' idle connections after the
// tests, so that their goroutines do not count as leaks.
type closingIdle struct{ m *testing.M }

func (c closingIdle) Run() int {
	code := c.m.Run()
	CloseIdleConnections()
	return code
}

func runChild(mode string) int {
	switch mode {
	case "serve":
		if err := serveMany(os.Stdin, os.Stdout, os.Getenv("SERVE_PORTS")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

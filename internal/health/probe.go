package health

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"time"
)

// prober runs one kind of probe against one instance.
type prober interface {
	// target names what is probed, for messages: "GET http://127.0.0.1:8000/health".
	target() string
	// probe runs once within ctx and says how it went, e.g. (OutcomeFailure,
	// "503"). It returns soon after ctx ends.
	probe(ctx context.Context) (Outcome, string)
}

// runProbe runs p once, cut at timeout. A probe that fails because its
// timeout cut it is a timeout, whatever error it saw.
func runProbe(ctx context.Context, p prober, timeout time.Duration) Result {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	out, detail := p.probe(pctx)
	d := time.Since(t0)
	if out != OutcomeSuccess && ctx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded) {
		out, detail = OutcomeTimeout, "timeout after "+timeout.String()
	}
	return Result{Outcome: out, Message: p.target() + ": " + detail, Duration: d}
}

// shortError drops what the probe's target already says ("dial tcp
// 127.0.0.1:8000: connect: ") and keeps the cause: "connection refused".
func shortError(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if op, ok := errors.AsType[*net.OpError](err); ok {
		err = op.Err
	}
	if sc, ok := errors.AsType[*os.SyscallError](err); ok {
		err = sc.Err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed before the answer"
	}
	return err.Error()
}

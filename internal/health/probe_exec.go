package health

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Lengths of what exec probe messages quote.
const (
	maxArgvShown = 80
	maxLineShown = 200
)

// execProbe runs a command through the agent's Exec; exit 0 passes.
type execProbe struct {
	name string // "exec /usr/local/bin/check --port 8000"
	argv []string
	exec func(ctx context.Context, argv []string) (int, []byte, error)
}

func newExecProbe(e *ExecCheck, exec func(context.Context, []string) (int, []byte, error)) *execProbe {
	return &execProbe{
		name: "exec " + truncate(strings.Join(e.Argv, " "), maxArgvShown),
		argv: slices.Clone(e.Argv),
		exec: exec,
	}
}

func (p *execProbe) target() string { return p.name }

func (p *execProbe) probe(ctx context.Context) (Outcome, string) {
	code, out, err := p.exec(ctx, p.argv)
	if err != nil {
		return OutcomeError, err.Error()
	}
	detail := fmt.Sprintf("exit %d", code)
	if line := firstLine(out); line != "" {
		detail += ": " + line
	}
	if code != 0 {
		return OutcomeFailure, detail
	}
	return OutcomeSuccess, detail
}

// firstLine is the first non-blank line of out, trimmed, valid UTF-8, at
// most maxLineShown bytes.
func firstLine(out []byte) string {
	for line := range bytes.Lines(out) {
		if s := strings.TrimSpace(string(line)); s != "" {
			return truncate(strings.ToValidUTF8(s, "\uFFFD"), maxLineShown)
		}
	}
	return ""
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

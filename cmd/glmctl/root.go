package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/clitext"
)

// defaultSocket is glmd's control socket unless GLMD_SOCKET or --socket
// names another.
const defaultSocket = "/run/glmd/glmd.sock"

// now is the clock of the status table's UPTIME; tests fix it.
var now = time.Now

// cli holds the global flags every command shares.
type cli struct {
	socket  string
	timeout time.Duration
}

func (c *cli) client() *api.Client { return api.NewClient(c.socket) }

// callContext bounds a call that is not a stream by --timeout (0: none).
func (c *cli) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run is glmctl: it executes args and returns the exit status, 0 on
// success, 1 when the call failed, 2 for a usage error. Errors are one
// line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	socket := os.Getenv("GLMD_SOCKET")
	if socket == "" {
		socket = defaultSocket
	}
	c := &cli{socket: socket}
	root := c.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if cmd == nil {
		cmd = root
	}
	msg := clitext.OneLine(err.Error())
	switch {
	case errors.As(err, new(usageError)) || !c.started(cmd):
		fmt.Fprintf(stderr, "glmctl: %s; see '%s --help'\n", msg, cmd.CommandPath())
		return 2
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		fmt.Fprintf(stderr, "glmctl: glmd at %s did not answer within %s (raise --timeout)\n", c.socket, c.timeout)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintln(stderr, "glmctl: interrupted (glmd may still complete the request)")
	default:
		fmt.Fprintf(stderr, "glmctl: %s\n", msg)
	}
	return 1
}

// started tells whether cmd got as far as its PersistentPreRun: errors
// before that point (unknown command or flag, wrong arguments) are usage
// errors.
func (c *cli) started(cmd *cobra.Command) bool {
	return cmd.Annotations != nil && cmd.Annotations[startedKey] == "1"
}

const startedKey = "glmctl.started"

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "glmctl",
		Short: "Control the glmd agent on this host",
		Long: `glmctl talks to glmd, the GPU node agent, over its control socket
(` + defaultSocket + `, or $GLMD_SOCKET, or --socket).`,
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		// Runnable, so that an unknown command reaches Args and becomes a
		// one-line usage error instead of cobra's multi-line one.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
			}
			return usageError{errors.New(msg)}
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if cmd.Annotations == nil {
				cmd.Annotations = map[string]string{}
			}
			cmd.Annotations[startedKey] = "1"
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&c.socket, "socket", c.socket, "glmd's control socket (env GLMD_SOCKET)")
	pf.DurationVar(&c.timeout, "timeout", 5*time.Minute, "how long to wait for glmd, streams excepted (a stop waits for the task's stop timeout); 0 = forever")

	root.AddCommand(
		c.statusCmd(),
		c.controlCmd("start", "Start a task's instances (and clear their failed state)", "started", (*api.Client).Start),
		c.controlCmd("stop", "Stop a task's instances; waits until they have stopped", "stopped", (*api.Client).Stop),
		c.controlCmd("restart", "Restart a task's instances", "restarted", (*api.Client).Restart),
		c.logsCmd(),
		c.reloadCmd(),
		c.eventsCmd(),
		c.runsCmd(),
		c.runCmd(),
		c.gpusCmd(),
		c.leaderCmd(),
		c.versionCmd(),
	)
	return root
}

// parseTarget splits TASK[:INSTANCE]; without an instance it returns def.
func parseTarget(s string, def int) (task string, instance int, err error) {
	task, inst, found := strings.Cut(s, ":")
	if task == "" {
		return "", 0, usagef("missing task name in %q: want TASK or TASK:N", s)
	}
	if !found {
		return task, def, nil
	}
	n, err := strconv.Atoi(inst)
	if err != nil || n < 0 {
		return "", 0, usagef("invalid instance %q in %q: want TASK or TASK:N with N >= 0", inst, s)
	}
	return task, n, nil
}

// targetName is how messages name an instance, or all of a task's.
func targetName(task string, instance int) string {
	if instance < 0 {
		return task
	}
	return task + ":" + strconv.Itoa(instance)
}

// exactArgs is cobra.ExactArgs with a message that names what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

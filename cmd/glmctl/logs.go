package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
)

func (c *cli) logsCmd() *cobra.Command {
	var (
		follow, stderr, rotate bool
		lines                  int
	)
	cmd := &cobra.Command{
		Use:   "logs [-f] [--stderr] [-n LINES] TASK[:INSTANCE]",
		Short: "Print an instance's log; or rotate log files",
		Long: `Print the last lines of an instance's stdout log (instance 0 unless
TASK:N names one), or of its stderr log with --stderr. With -f, keep
printing what the instance writes until interrupted.

glmctl logs --rotate [TASK] rotates the log files of TASK, or of every task.`,
		Example: "  glmctl logs -f glm-serve:1\n  glmctl logs --stderr -n 20 glm-serve\n  glmctl logs --rotate",
		Args: func(cmd *cobra.Command, args []string) error {
			if rotate {
				if cmd.Flags().Changed("follow") || cmd.Flags().Changed("stderr") || cmd.Flags().Changed("lines") {
					return usagef("--rotate cannot be combined with -f, --stderr or -n")
				}
				if len(args) > 1 {
					return usagef("--rotate takes at most one TASK, got %d", len(args))
				}
				return nil
			}
			if lines < 0 {
				return usagef("invalid -n %d: want a number >= 0", lines)
			}
			return exactArgs(1, "one TASK[:INSTANCE]")(cmd, args)
		},
		ValidArgsFunction: c.completeTargets,
		RunE: func(cmd *cobra.Command, args []string) error {
			if rotate {
				return c.rotate(cmd, args)
			}
			task, inst, err := parseTarget(args[0], 0)
			if err != nil {
				return err
			}
			req := api.LogRequest{Task: task, Instance: inst, Stream: api.StreamStdout, Lines: lines, Follow: follow}
			if stderr {
				req.Stream = api.StreamStderr
			}
			ctx := cmd.Context()
			if !follow {
				var cancel func()
				ctx, cancel = c.callContext(ctx)
				defer cancel()
			}
			rc, err := c.client().Logs(ctx, req)
			if err != nil {
				return err
			}
			defer rc.Close()
			if _, err := io.Copy(cmd.OutOrStdout(), rc); err != nil {
				if follow && cmd.Context().Err() != nil {
					return nil // interrupted: the normal end of -f
				}
				return fmt.Errorf("read log of %s from glmd: %w", targetName(task, inst), err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
	f.BoolVar(&stderr, "stderr", false, "print the stderr log instead of stdout")
	f.IntVarP(&lines, "lines", "n", api.DefaultLogLines, "how many of the last lines to print first")
	f.BoolVar(&rotate, "rotate", false, "rotate the log files of TASK (or of all tasks) instead")
	return cmd
}

func (c *cli) rotate(cmd *cobra.Command, args []string) error {
	task := ""
	if len(args) == 1 {
		task = args[0]
	}
	ctx, cancel := c.callContext(cmd.Context())
	defer cancel()
	if err := c.client().RotateLogs(ctx, task); err != nil {
		return err
	}
	if task == "" {
		fmt.Fprintln(cmd.OutOrStdout(), "rotated the logs of all tasks")
	} else {
		fmt.Fprintf(cmd.OutOrStdout(), "rotated the logs of %s\n", task)
	}
	return nil
}

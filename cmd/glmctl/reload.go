package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/clitext"
)

func (c *cli) reloadCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "reload [--dry-run]",
		Short: "Read conf.d again and apply the changes",
		Long: `Read the task files again and apply what changed, then print the plan,
one line per task:

  + TASK  add
  - TASK  remove
  ~ TASK  restart   REASONS
  ~ TASK  in-place  REASONS    (no restart: quotas and the like)
  ! TASK  invalid              (keeps running its last good version)

followed by one "error:" line per task file with errors; then the exit
status is 1. With --dry-run nothing changes.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.callContext(cmd.Context())
			defer cancel()
			plan, err := c.client().Reload(ctx, dryRun)
			if err != nil {
				return err
			}
			if err := clitext.WritePlan(cmd.OutOrStdout(), plan); err != nil {
				return err
			}
			if n := len(plan.Errors); n > 0 {
				errs := "errors"
				if n == 1 {
					errs = "error"
				}
				if dryRun {
					return fmt.Errorf("%d %s in task files", n, errs)
				}
				return fmt.Errorf("%d %s in task files; those tasks keep their last good version", n, errs)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only print what would change")
	return cmd
}

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
)

// controlCmd builds start, stop and restart: they differ in the call only.
func (c *cli) controlCmd(name, short, done string, call func(*api.Client, context.Context, string, int) error) *cobra.Command {
	return &cobra.Command{
		Use:   name + " TASK[:INSTANCE]...",
		Short: short,
		Long: short + `.

TASK alone means every instance of the task; TASK:N only instance N.`,
		Example:           "  glmctl " + name + " glm-serve\n  glmctl " + name + " glm-serve:1",
		Args:              minArgs(1, "TASK[:INSTANCE]"),
		ValidArgsFunction: c.completeTargets,
		RunE: func(cmd *cobra.Command, args []string) error {
			type target struct {
				task     string
				instance int
			}
			// Check every argument before acting on any.
			targets := make([]target, 0, len(args))
			for _, a := range args {
				task, inst, err := parseTarget(a, -1)
				if err != nil {
					return err
				}
				targets = append(targets, target{task, inst})
			}
			cl := c.client()
			for _, t := range targets {
				ctx, cancel := c.callContext(cmd.Context())
				err := call(cl, ctx, t.task, t.instance)
				cancel()
				if err != nil {
					return err // the agent's message names the task
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, targetName(t.task, t.instance))
			}
			return nil
		},
	}
}

// minArgs is cobra.MinimumNArgs with a message that names what is missing.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("missing %s", what)
		}
		return nil
	}
}

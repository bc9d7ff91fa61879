package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
)

// completionTimeout bounds the status call behind a TAB: a shell waits for it.
const completionTimeout = 2 * time.Second

// completeTasks offers the agent's task names not given yet.
func (c *cli) completeTasks(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	rows, ok := c.completionStatus(cmd.Context())
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, r := range rows {
		if strings.HasPrefix(r.Task, toComplete) && !slices.Contains(args, r.Task) && !slices.Contains(out, r.Task) {
			out = append(out, r.Task)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeTargets offers task names, and TASK:N with each instance's state
// once the word has a colon.
func (c *cli) completeTargets(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if !strings.Contains(toComplete, ":") {
		return c.completeTasks(cmd, args, toComplete)
	}
	rows, ok := c.completionStatus(cmd.Context())
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, r := range rows {
		if r.Instance < 0 {
			continue
		}
		t := r.Task + ":" + strconv.Itoa(r.Instance)
		if strings.HasPrefix(t, toComplete) {
			out = append(out, cobra.CompletionWithDesc(t, r.State))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (c *cli) completionStatus(ctx context.Context) ([]api.InstanceStatus, bool) {
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	rows, err := c.client().Status(ctx, api.StatusOptions{})
	if err != nil {
		// A TAB must not print errors into the command line; cobra's debug
		// log (BASH_COMP_DEBUG_FILE) keeps the reason.
		cobra.CompDebugln("glmctl: "+err.Error(), false)
		return nil, false
	}
	return rows, true
}

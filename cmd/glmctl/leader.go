package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
)

func (c *cli) leaderCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "leader [--json]",
		Short: "Show which node holds the fleet's scheduler role",
		Long: `Show which node holds the fleet's scheduler role, since when, and
its fencing token. With Consul, one glmd in the fleet is elected; the
Consul UI's Key/Value view shows the same under <kv_prefix>leader/scheduler.
Without Consul, every glmd is its own scheduler ("standalone").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.callContext(cmd.Context())
			defer cancel()
			l, err := c.client().Leader(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, "leader", l)
			}
			return writeLeader(out, l, now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON object of the API")
	return cmd
}

func writeLeader(w io.Writer, l api.LeaderInfo, now time.Time) error {
	var line string
	switch {
	case l.Mode == "standalone":
		line = fmt.Sprintf("%s (standalone: no Consul, this agent is its own scheduler)", l.Holder)
	case l.Holder == "":
		line = "nobody holds the scheduler role now"
	default:
		line = l.Holder
		if l.Address != "" {
			line += " (" + l.Address + ")"
		}
		if l.Since != nil {
			line += fmt.Sprintf(", since %s (%s)", l.Since.UTC().Format(time.RFC3339), shortDuration(now.Sub(*l.Since)))
		}
		line += fmt.Sprintf(", token %d", l.Token)
		if l.Self {
			line += ", this node"
		}
	}
	if _, err := fmt.Fprintln(w, "leader: "+line); err != nil {
		return err
	}
	if l.Suspended {
		fmt.Fprintln(w, "this node suspended its leadership: it cannot confirm it with Consul")
	}
	if l.Degraded != "" {
		fmt.Fprintln(w, "discovery degraded: "+l.Degraded+" (local supervision goes on)")
	}
	return nil
}

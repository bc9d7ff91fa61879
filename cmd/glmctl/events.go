package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/clitext"
)

func (c *cli) eventsCmd() *cobra.Command {
	var follow, asJSON bool
	cmd := &cobra.Command{
		Use:   "events [-f] [--json]",
		Short: "Print the agent's recent events; -f keeps following",
		Long: `Print the agent's recent events, one per line:

  2026-11-22T10:00:00Z  glm-serve:0  running  started pid 1234

(time in UTC, the instance or task or "glmd", the new state or the event
type, the message). With -f, keep printing new events until interrupted.
--json prints one JSON object per line, as the API sends them.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !follow {
				var cancel func()
				ctx, cancel = c.callContext(ctx)
				defer cancel()
			}
			out := cmd.OutOrStdout()
			err := c.client().Events(ctx, follow, func(ev api.Event) error {
				if asJSON {
					return writeEventJSON(out, ev)
				}
				return writeEvent(out, ev)
			})
			if err != nil && follow && cmd.Context().Err() != nil {
				return nil // interrupted: the normal end of -f
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print NDJSON, one event object per line")
	return cmd
}

func writeEventJSON(w io.Writer, ev api.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeEvent prints one event on one line. Lines are not aligned: they
// come one by one while following.
func writeEvent(w io.Writer, ev api.Event) error {
	who := "glmd"
	if ev.Task != "" {
		who = ev.Task
		if ev.Instance >= 0 {
			who += ":" + strconv.Itoa(ev.Instance)
		}
	}
	what := ev.State
	if what == "" {
		what = ev.Type
	}
	msg := clitext.OneLine(ev.Message)
	if ev.Exit != nil && ev.Exit.Reason != "" {
		msg += " (" + exitText(*ev.Exit) + ")"
	}
	_, err := fmt.Fprintf(w, "%s  %s  %s  %s\n", ev.Time.UTC().Format(time.RFC3339), who, what, msg)
	return err
}

package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/version"
)

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print glmctl's version and the agent's",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			// version.String is glmd's line; the build is the same.
			fmt.Fprintln(out, "glmctl "+strings.TrimPrefix(version.String(), "glmd "))
			ctx, cancel := c.callContext(cmd.Context())
			defer cancel()
			info, err := c.client().Info(ctx)
			if err != nil {
				return err
			}
			line := fmt.Sprintf("glmd %s on node %s (pid %d, up %s, conf_dir %s", info.Version, info.Node, info.PID,
				shortDuration(now().Sub(info.StartedAt)), info.ConfDir)
			if info.Dev {
				line += ", dev mode"
			}
			fmt.Fprintln(out, line+")")
			return nil
		},
	}
}

package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/clitext"
)

func (c *cli) gpusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gpus [--json]",
		Short: "List the node's GPUs, their health and who holds them",
		Long: `List every GPU glmd knows on this node: index, UUID, model, memory
used and total, utilisation, temperature, NUMA node, health and the
instances that hold it.

HEALTH other than "healthy" takes the GPU out of the pool until it
recovers; the reason (an XID, a failed row remap, a lost GPU) follows it.
A GPU with memory held by a process no glmd instance owns shows the stray
process under STRAYS.

--json prints the API's array as it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.callContext(cmd.Context())
			defer cancel()
			gpus, err := c.client().GPUs(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if gpus == nil {
					gpus = []api.GPUStatus{}
				}
				return writeJSON(out, "gpus", gpus)
			}
			return writeGPUTable(out, gpus)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON array of the API")
	return cmd
}

func writeGPUTable(w io.Writer, gpus []api.GPUStatus) error {
	if len(gpus) == 0 {
		_, err := fmt.Fprintln(w, "no GPUs (see the [gpu] provider in glmd.toml, and glmd's log at start)")
		return err
	}
	tw := clitext.NewTable(w)
	fmt.Fprintln(tw, "GPU\tUUID\tMODEL\tMEMORY\tUTIL\tTEMP\tNUMA\tHEALTH\tHELD BY\tSTRAYS")
	for _, g := range gpus {
		mem := "-/" + bytesText(uint64(max(g.MemoryTotal, 0)))
		if g.MemoryUsed >= 0 {
			mem = bytesText(uint64(g.MemoryUsed)) + "/" + bytesText(uint64(max(g.MemoryTotal, 0)))
		}
		health := g.Health
		if g.MIG {
			health += " (MIG)"
		}
		if g.Reason != "" {
			health += ": " + g.Reason
		}
		var strays []string
		for _, p := range g.Strays {
			s := "pid " + strconv.Itoa(p.PID)
			if p.MemoryBytes >= 0 {
				s += " " + bytesText(uint64(p.MemoryBytes))
			}
			strays = append(strays, s)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			g.Index, g.UUID, dash(g.Name), mem, ratioText(g.Utilization), tempText(g.Temperature),
			numaText(g.NUMANode), health, dash(strings.Join(g.Holders, ",")), dash(strings.Join(strays, ",")))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ratioText(r float64) string {
	if r < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", r*100)
}

func tempText(c float64) string {
	if c < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fC", c)
}

func numaText(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

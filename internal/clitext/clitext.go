// Package clitext is the text glmd and glmctl print for people: aligned
// tables without trailing blanks, and reload plans.
package clitext

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/open-autoglm/glmd/internal/api"
)

// Table is a tabwriter that drops the padding an empty last cell leaves at
// the end of a line, so that the output has no trailing blanks. Cells are
// separated by tabs; Flush writes the aligned rows.
type Table struct {
	out io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

// NewTable returns a Table writing to w.
func NewTable(w io.Writer) *Table {
	t := &Table{out: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *Table) Write(p []byte) (int, error) { return t.tw.Write(p) }

// Flush aligns the rows and writes them out.
func (t *Table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	for _, l := range bytes.SplitAfter(t.buf.Bytes(), []byte("\n")) {
		trimmed := bytes.TrimRight(l, " \n")
		if len(l) > 0 && l[len(l)-1] == '\n' {
			trimmed = append(trimmed, '\n')
		}
		if _, err := t.out.Write(trimmed); err != nil {
			return err
		}
	}
	t.buf.Reset()
	return nil
}

// OneLine folds whitespace, newlines included, so a message fits a row.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// changeSigns mark a plan's lines as a diff does.
var changeSigns = map[string]string{
	api.ActionAdd:     "+",
	api.ActionRemove:  "-",
	api.ActionRestart: "~",
	api.ActionInPlace: "~",
	api.ActionInvalid: "!",
}

// WritePlan prints a reload plan, one line per task, then one "error:" line
// per task-file error.
func WritePlan(w io.Writer, p api.Plan) error {
	if len(p.Changes) == 0 && len(p.Errors) == 0 {
		_, err := fmt.Fprintln(w, "no changes")
		return err
	}
	tw := NewTable(w)
	for _, ch := range p.Changes {
		sign, ok := changeSigns[ch.Action]
		if !ok {
			sign = "?"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\n", sign, ch.Task, ch.Action, OneLine(strings.Join(ch.Reasons, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range p.Errors {
		if _, err := fmt.Fprintf(w, "error: %s\n", OneLine(e)); err != nil {
			return err
		}
	}
	return nil
}

package main

import (
	"bytes"
	"io"
	"text/tabwriter"
)

// table is a tabwriter that drops the padding an empty last cell leaves at
// the end of a line, so that the output has no trailing blanks.
type table struct {
	out io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	t := &table{out: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) Write(p []byte) (int, error) { return t.tw.Write(p) }

// Flush aligns the rows and writes them out.
func (t *table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	lines := bytes.SplitAfter(t.buf.Bytes(), []byte("\n"))
	for _, l := range lines {
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

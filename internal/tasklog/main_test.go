package tasklog

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnv makes the test binary act as a worker instead of running tests:
// the tests and benchmarks start it as a real process on the instance's pipes.
const childEnv = "GLMD_TASKLOG_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	goleak.VerifyTestMain(m)
}

// runChild is the worker side. Modes:
//
//	flood: writes FLOOD_BYTES bytes of FLOOD_LINE-byte numbered lines to
//	       FLOOD_STREAM (stdout, stderr or both, alternating blocks)
//	blast: writes FLOOD_BYTES bytes to stdout, one prepared 1 MiB block of
//	       FLOOD_LINE-byte lines again and again (a worker that costs next
//	       to nothing, for the benchmark), at FLOOD_RATE MiB/s if set
func runChild(mode string) int {
	switch mode {
	case "flood":
		total, _ := strconv.ParseInt(os.Getenv("FLOOD_BYTES"), 10, 64)
		line, _ := strconv.Atoi(os.Getenv("FLOOD_LINE"))
		if err := flood(os.Getenv("FLOOD_STREAM"), total, line); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "blast":
		total, _ := strconv.ParseInt(os.Getenv("FLOOD_BYTES"), 10, 64)
		line, _ := strconv.Atoi(os.Getenv("FLOOD_LINE"))
		rate, _ := strconv.Atoi(os.Getenv("FLOOD_RATE"))
		if err := blast(total, line, rate); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

// flood writes numbered lines in blocks of about 1 MiB: the worker side of a
// flood must cost little so that the agent's side is what is measured.
func flood(stream string, total int64, line int) error {
	outs := []*os.File{os.Stdout}
	switch stream {
	case "stderr":
		outs = []*os.File{os.Stderr}
	case "both":
		outs = []*os.File{os.Stdout, os.Stderr}
	}
	var n int64
	for k := 0; n < total; {
		for _, out := range outs {
			block := floodBlock(k, line, min(1<<20, total-n))
			k += len(block) / line
			if _, err := out.Write(block); err != nil {
				return err
			}
			n += int64(len(block))
		}
	}
	return nil
}

// blast writes total bytes; with rate > 0 (MiB/s) it paces itself to that
// rate.
func blast(total int64, line, rate int) error {
	block := floodBlock(0, line, 1<<20)
	start := time.Now()
	for n := int64(0); n < total; n += int64(len(block)) {
		if _, err := os.Stdout.Write(block[:min(int64(len(block)), total-n)]); err != nil {
			return err
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(n) / float64(rate<<20) * float64(time.Second)))
			time.Sleep(time.Until(due))
		}
	}
	return nil
}

// floodBlock returns whole lines numbered from first, at most size bytes
// (at least one line).
func floodBlock(first, line int, size int64) []byte {
	lines := max(1, int(size)/line)
	var b bytes.Buffer
	b.Grow(lines * line)
	for k := range lines {
		b.Write(floodLine(first+k, line))
	}
	return b.Bytes()
}

// floodLine is line number k, length bytes with its newline.
func floodLine(k, length int) []byte {
	l := make([]byte, 0, max(length, 11))
	l = fmt.Appendf(l, "%09d ", k)
	for len(l) < length-1 {
		l = append(l, floodPad[:min(len(floodPad), length-1-len(l))]...)
	}
	return append(l[:length-1], '\n')
}

const floodPad = "abcdefghijklmnopqrstuvwxyz"

// floodContent is what flood writes to one stream in total (stream stdout or stderr).
func floodContent(total int64, line int) []byte {
	var b bytes.Buffer
	for k := 0; int64(b.Len()) < total; {
		block := floodBlock(k, line, min(1<<20, total-int64(b.Len())))
		k += len(block) / line
		b.Write(block)
	}
	return b.Bytes()
}

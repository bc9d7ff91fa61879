package tasklog

import (
	"io"
	"os"
)

// tailWindow bounds what TailFile reads of a log file.
const tailWindow = 1 << 20

// TailFile returns the last lines of a log file that is no longer written
// (a finished run's), as Tail does for a live one: at most the last MiB.
func TailFile(path string, lines int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailWindow {
		if _, err := f.Seek(-tailWindow, io.SeekEnd); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return lastLines(data, lines), nil
}

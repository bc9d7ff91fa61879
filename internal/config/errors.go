package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Sentinel errors; a *FileError wraps one of them where the problem has a
// class a caller may want to tell apart.
var (
	// ErrInsecureFile: the agent runs as root and the file is not owned by
	// root or can be written by group or others.
	ErrInsecureFile = errors.New("config: refused: file is not root-owned or is writable by others")
	// ErrUnknownKey: the file sets a key glmd does not know (often a typo).
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrSyntax: the file is not valid TOML.
	ErrSyntax = errors.New("config: syntax error")
	// ErrNotBlockDevice: a [[resources.io]] device path exists but is no
	// block device. A LoadOptions.StatDevice of a test may return it.
	ErrNotBlockDevice = errors.New("config: not a block device")
)

// FileError is one problem of one config file. Error() reads
// "FILE:LINE:COL: KEY: problem (hint)"; LINE:COL are left out when the
// position is unknown (Line == 0), "KEY: " when the problem is not about one key.
type FileError struct {
	File string // the path as shown to the operator, e.g. "/etc/glmd/conf.d/glm-serve.toml"
	Line int    // 1-based; 0 = unknown
	Col  int    // 1-based, in characters; 0 = unknown
	Key  string // dotted key, e.g. "restart.delay" or "command[1]"; "" = the whole file
	Err  error
	Task string // the task's name if the file names one, else the file name without ".toml"
}

// Error formats the problem as "FILE:LINE:COL: KEY: problem (hint)".
func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteString(":" + strconv.Itoa(e.Col))
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *FileError) Unwrap() error { return e.Err }

// insecureError explains why a file was refused; errors.Is(err, ErrInsecureFile) holds.
type insecureError struct{ msg string }

func (e *insecureError) Error() string        { return e.msg }
func (e *insecureError) Is(target error) bool { return target == ErrInsecureFile }

// unknownKeyError is an unknown key with its did-you-mean hint.
type unknownKeyError struct {
	key  string
	hint string
}

func (e *unknownKeyError) Error() string {
	msg := fmt.Sprintf("unknown key %q", e.key)
	if e.hint != "" {
		msg += " (" + e.hint + ")"
	}
	return msg
}

func (e *unknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// syntaxError is a TOML syntax error as the TOML library words it.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string        { return "syntax error: " + e.msg }
func (e *syntaxError) Is(target error) bool { return target == ErrSyntax }

// sortFileErrors orders errors by file, then position; errors without a
// position (about the whole file) come first within their file.
func sortFileErrors(errs []*FileError) {
	slices.SortStableFunc(errs, func(a, b *FileError) int {
		return cmp.Or(
			strings.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			strings.Compare(a.Key, b.Key),
		)
	})
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// document is one parsed TOML file on its way to a Go value. The TOML
// library stops at the first value it cannot convert, so documents are
// decoded into plain TOML values first and converted here, key by key, so
// that every bad value of a file is reported in one go.
type document struct {
	path  string // shown in errors
	task  string // FileError.Task
	raw   map[string]any
	keys  []toml.Key // in document order
	where map[string]position
	given map[string]bool // keys set with a value of the right type
	bad   map[string]bool // keys already reported
	errs  []*FileError
}

// parseDocument parses src. A syntax error is the only problem that can be
// reported for such a file, so it is returned alone.
func parseDocument(path, task string, src []byte) (*document, *FileError) {
	d := &document{path: path, task: task, given: map[string]bool{}, bad: map[string]bool{}}
	md, err := toml.Decode(string(src), &d.raw)
	if err != nil {
		fe := &FileError{File: path, Task: task, Err: &syntaxError{msg: err.Error()}}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			fe.Err = &syntaxError{msg: pe.Message}
			fe.Line, fe.Col = pe.Position.Line, pe.Position.Col
			// The library's column is off for an error at the very start of
			// a line (it counts it as the end of the line before).
			if p := pe.Position.Start; p >= 0 && p <= len(src) {
				lineStart := bytes.LastIndexByte(src[:p], '\n') + 1
				fe.Line = bytes.Count(src[:p], []byte("\n")) + 1
				fe.Col = utf8.RuneCount(src[lineStart:p]) + 1
			}
		}
		return nil, fe
	}
	d.keys = md.Keys()
	d.where = locateKeys(src)
	return d, nil
}

// errorAt records a problem with key; the position is looked up by posKey
// (a toml.Key.String() form), so that "command[2]" can point at "command".
func (d *document) errorAt(posKey, key string, err error) {
	p := d.where[posKey]
	d.errs = append(d.errs, &FileError{File: d.path, Line: p.Line, Col: p.Col, Key: key, Err: err, Task: d.task})
	d.bad[posKey] = true
	d.bad[key] = true
}

func (d *document) errorf(key string, format string, args ...any) {
	d.errorAt(key, key, fmt.Errorf(format, args...))
}

// ok says whether key decoded without a problem (absent keys are ok).
func (d *document) ok(key string) bool { return !d.bad[key] }

// lookup returns the raw value at path; absent also when a parent is not a table.
func (d *document) lookup(path ...string) (any, bool) {
	var v any = d.raw
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// tomlType names the TOML type of a decoded value, for messages.
func tomlType(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// tomlValue shows a raw value the way it was probably written.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case time.Time:
		return v.Format(time.RFC3339)
	default:
		return fmt.Sprint(v)
	}
}

func (d *document) wrongType(key string, v any, want string) {
	d.errorf(key, "must be %s, not %s", want, tomlType(v))
}

// table returns the table at key, reporting a value of another type.
func (d *document) table(key string) (map[string]any, bool) {
	v, ok := d.lookup(key)
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.errorf(key, "must be a table, not %s (write [%s] on a line of its own, then its keys)", tomlType(v), key)
		return nil, false
	}
	d.given[key] = true
	return m, true
}

func (d *document) str(path ...string) (string, bool) {
	key := toml.Key(path).String()
	v, ok := d.lookup(path...)
	if !ok {
		return "", false
	}
	return d.strValue(key, key, v)
}

// strValue converts the raw value v of key; a problem is reported at the
// position of posKey. The other ...Value methods work alike: they serve
// keys that lookup cannot reach, such as those of [[health]] entries.
func (d *document) strValue(posKey, key string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		if _, num := v.(int64); num {
			d.errorAt(posKey, key, fmt.Errorf("must be a string, not %s (try \"%v\")", tomlType(v), v))
		} else {
			d.errorAt(posKey, key, fmt.Errorf("must be a string, not %s", tomlType(v)))
		}
		return "", false
	}
	d.given[key] = true
	return s, true
}

func (d *document) boolean(path ...string) (bool, bool) {
	key := toml.Key(path).String()
	v, ok := d.lookup(path...)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		if s, isStr := v.(string); isStr && (s == "true" || s == "false") {
			d.errorf(key, "must be a boolean, not a string (write %s without quotes)", s)
		} else {
			d.wrongType(key, v, "a boolean (true or false)")
		}
		return false, false
	}
	d.given[key] = true
	return b, true
}

// integer returns an integer that fits an int; range checks are validation's.
func (d *document) integer(path ...string) (int, bool) {
	key := toml.Key(path).String()
	v, ok := d.lookup(path...)
	if !ok {
		return 0, false
	}
	return d.intValue(key, key, v)
}

func (d *document) intValue(posKey, key string, v any) (int, bool) {
	fail := func(format string, args ...any) (int, bool) {
		d.errorAt(posKey, key, fmt.Errorf(format, args...))
		return 0, false
	}
	switch v := v.(type) {
	case int64:
		if v < math.MinInt32 || v > math.MaxInt32 {
			return fail("%d is out of range", v)
		}
		d.given[key] = true
		return int(v), true
	case string:
		if _, err := strconv.Atoi(v); err == nil {
			return fail("must be an integer, not a string (write %s without quotes)", v)
		}
	}
	return fail("must be an integer, not %s", tomlType(v))
}

// strs returns an array of strings.
func (d *document) strs(path ...string) ([]string, bool) {
	key := toml.Key(path).String()
	v, ok := d.lookup(path...)
	if !ok {
		return nil, false
	}
	arr, ok := v.([]any)
	if !ok {
		if s, isStr := v.(string); isStr {
			d.errorf(key, "must be an array of strings, not a string (try [%q])", s)
		} else {
			d.wrongType(key, v, "an array of strings")
		}
		return nil, false
	}
	return d.strElems(key, key, arr)
}

// strElems converts the elements of an array of strings.
func (d *document) strElems(posKey, key string, arr []any) ([]string, bool) {
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			d.errorAt(posKey, fmt.Sprintf("%s[%d]", key, i), fmt.Errorf("must be a string, not %s", tomlType(e)))
			return nil, false
		}
		out = append(out, s)
	}
	d.given[key] = true
	return out, true
}

func (d *document) ints(path ...string) ([]int, bool) {
	key := toml.Key(path).String()
	v, ok := d.lookup(path...)
	if !ok {
		return nil, false
	}
	arr, ok := v.([]any)
	if !ok {
		if n, isInt := v.(int64); isInt {
			d.errorf(key, "must be an array of integers, not an integer (try [%d])", n)
		} else {
			d.wrongType(key, v, "an array of integers")
		}
		return nil, false
	}
	out := make([]int, 0, len(arr))
	for i, e := range arr {
		n, isInt := e.(int64)
		if !isInt || n < math.MinInt32 || n > math.MaxInt32 {
			d.errorAt(key, fmt.Sprintf("%s[%d]", key, i), fmt.Errorf("must be an integer, not %s", tomlValue(e)))
			return nil, false
		}
		out = append(out, int(n))
	}
	d.given[key] = true
	return out, true
}

// duration reads a Go duration string. A bare number is refused: "90"
// could mean seconds or nanoseconds; the 0 that means "off" is the exception.
func (d *document) duration(path ...string) (time.Duration, bool) {
	key := toml.Key(path).String()
	v, ok := d.lookup(path...)
	if !ok {
		return 0, false
	}
	return d.durationValue(key, key, v)
}

func (d *document) durationValue(posKey, key string, v any) (time.Duration, bool) {
	fail := func(format string, args ...any) (time.Duration, bool) {
		d.errorAt(posKey, key, fmt.Errorf(format, args...))
		return 0, false
	}
	switch v := v.(type) {
	case string:
		dur, err := time.ParseDuration(v)
		if err != nil {
			return fail("%q is not a duration (use Go syntax such as \"90s\", \"1m30s\" or \"100ms\")", v)
		}
		d.given[key] = true
		return dur, true
	case int64:
		if v == 0 {
			d.given[key] = true
			return 0, true
		}
		return fail("%d is not a duration (try \"%ds\")", v, v)
	case float64:
		return fail("%v is not a duration (try \"%vs\")", v, v)
	}
	return fail("must be a duration such as \"90s\", not %s", tomlType(v))
}

// size reads a byte size: an integer (bytes) or a string for ParseByteSize.
func (d *document) size(path ...string) (int64, bool) {
	key := toml.Key(path).String()
	v, ok := d.lookup(path...)
	if !ok {
		return 0, false
	}
	switch v := v.(type) {
	case int64:
		d.given[key] = true
		return v, true
	case string:
		n, err := ParseByteSize(v)
		if err != nil {
			d.errorAt(key, key, err)
			return 0, false
		}
		d.given[key] = true
		return n, true
	default:
		d.wrongType(key, v, "a size such as \"50MiB\" or an integer number of bytes")
	}
	return 0, false
}

// shortDuration prints a duration without Go's trailing zero units: "10m", "1h30m", "100ms".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// strTable returns a table whose values are strings (meta, labels); a
// value of another type is reported at its key. example shows the form.
func (d *document) strTable(example string, path ...string) (map[string]string, bool) {
	v, ok := d.lookup(path...)
	if !ok {
		return nil, false
	}
	m, isTable := v.(map[string]any)
	if !isTable {
		d.wrongType(toml.Key(path).String(), v, "a table of strings, such as "+example)
		return nil, false
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		key := toml.Key(append(slices.Clip(path), k)).String()
		if s, ok := d.strValue(key, key, m[k]); ok {
			out[k] = s
		}
	}
	return out, true
}

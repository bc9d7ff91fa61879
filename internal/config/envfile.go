package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= does:
// blank lines and lines starting with # are skipped, "export " before a key
// is allowed, a value may be wrapped in single quotes (taken literally) or
// double quotes (\\, \", \n, \t and \$ escapes), an unquoted value is the
// rest of the line without surrounding blanks. Nothing is expanded. A later
// line wins over an earlier one. Errors are "PATH:LINE: problem".
func parseEnvFile(path string, data []byte) (map[string]string, error) {
	vars := map[string]string{}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		text := strings.TrimSpace(line)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(text, "export"); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t")) {
			text = strings.TrimSpace(rest)
		}
		key, value, ok := strings.Cut(text, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return nil, fmt.Errorf("%s:%d: %q is not KEY=VALUE", path, n, truncate(text, 40))
		}
		if !envNameRE.MatchString(key) {
			return nil, fmt.Errorf("%s:%d: %q is not a valid variable name (letters, digits and _, not starting with a digit)", path, n, truncate(key, 40))
		}
		v, err := envValue(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", path, n, key, err)
		}
		vars[key] = v
	}
	return vars, nil
}

func envValue(v string) (string, error) {
	if v == "" || (v[0] != '"' && v[0] != '\'') {
		if strings.ContainsRune(v, 0) {
			return "", fmt.Errorf("value contains a NUL byte")
		}
		return v, nil
	}
	quote := v[0]
	var b strings.Builder
	i := 1
	for ; i < len(v) && v[i] != quote; i++ {
		c := v[i]
		if quote == '"' && c == '\\' && i+1 < len(v) {
			i++
			switch e := v[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\\', '"', '$', '`':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
			continue
		}
		if c == 0 {
			return "", fmt.Errorf("value contains a NUL byte")
		}
		b.WriteByte(c)
	}
	if i >= len(v) {
		return "", fmt.Errorf("missing closing %c (values cannot span lines)", quote)
	}
	if rest := strings.TrimSpace(v[i+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
		return "", fmt.Errorf("unexpected %q after the closing %c", truncate(rest, 20), quote)
	}
	return b.String(), nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}

package config

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// position is where a key is written: 1-based line and column (in
// characters). The zero value means "not found".
type position struct{ Line, Col int }

// locateKeys finds where each key of a TOML document is written, keyed by
// toml.Key.String(). The TOML library reports positions only for syntax
// errors, so a small scanner walks the (already parsed, hence valid) text:
// a key points at its first character, a table at the "[" of its header.
// Keys inside arrays are not recorded; the first definition of a key wins.
// An entry of an array of tables is recorded twice: as "a.b" (the first
// entry) and with its index, "a.b[1]" and "a.b[1].key", so that an error can
// point at the entry it is about.
func locateKeys(src []byte) map[string]position {
	s := &keyScanner{src: src, line: 1, found: make(map[string]position), entries: map[string]int{}}
	s.document()
	return s.found
}

type keyScanner struct {
	src       []byte
	i         int // next byte
	line      int // line of src[i]
	lineStart int // offset of the first byte of that line
	found     map[string]position
	entries   map[string]int // [[x]] headers seen so far, by x
	entry     string         // "x[n]" while in the n-th [[x]]; "" otherwise
}

func (s *keyScanner) eof() bool { return s.i >= len(s.src) }

func (s *keyScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *keyScanner) hasPrefix(p string) bool {
	return strings.HasPrefix(string(s.src[s.i:min(len(s.src), s.i+len(p))]), p)
}

// next consumes one byte, keeping the line count.
func (s *keyScanner) next() {
	if s.eof() {
		return
	}
	if s.src[s.i] == '\n' {
		s.line++
		s.lineStart = s.i + 1
	}
	s.i++
}

func (s *keyScanner) pos() position {
	return position{Line: s.line, Col: utf8.RuneCount(s.src[s.lineStart:s.i]) + 1}
}

func (s *keyScanner) record(k toml.Key, p position) {
	// Dotted keys define their parent tables implicitly, at the same place.
	for n := 1; n <= len(k); n++ {
		s.recordName(k[:n].String(), p)
	}
}

func (s *keyScanner) recordName(name string, p position) {
	if _, ok := s.found[name]; !ok {
		s.found[name] = p
	}
}

func (s *keyScanner) skipBlanks() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.next()
	}
}

// skipBlanksAndLines also skips newlines and comments (inside arrays).
func (s *keyScanner) skipBlanksAndLines() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.next()
		case '#':
			s.skipToEOL()
		default:
			return
		}
	}
}

func (s *keyScanner) skipToEOL() {
	for !s.eof() && s.peek() != '\n' {
		s.next()
	}
}

func (s *keyScanner) document() {
	var table toml.Key
	for !s.eof() {
		s.skipBlanks()
		switch c := s.peek(); {
		case c == '\n' || c == '\r':
			s.next()
		case c == '#':
			s.skipToEOL()
		case c == '[':
			p := s.pos()
			s.next()
			array := s.peek() == '['
			if array {
				s.next()
			}
			table = s.key()
			s.record(table, p)
			s.entry = ""
			if array {
				name := table.String()
				s.entry = name + "[" + strconv.Itoa(s.entries[name]) + "]"
				s.entries[name]++
				s.recordName(s.entry, p)
			} else if e := s.subTableOfEntry(table); e != "" {
				s.entry = e
				s.recordName(e, p)
			}
			s.skipToEOL()
		case isBareKeyChar(c) || c == '"' || c == '\'':
			p := s.pos()
			sub := s.key()
			k := append(append(toml.Key{}, table...), sub...)
			s.record(k, p)
			if s.entry != "" {
				for n := 1; n <= len(sub); n++ {
					s.recordName(s.entry+"."+sub[:n].String(), p)
				}
			}
			s.skipBlanks()
			if s.peek() == '=' {
				s.next()
				alt := ""
				if s.entry != "" {
					alt = s.entry + "." + sub.String()
				}
				s.value(k, alt)
			}
			s.skipToEOL()
		default:
			s.skipToEOL()
		}
	}
}

// subTableOfEntry returns the name with index of a [table] that TOML puts
// into the last entry of an array of tables, "x[1].sub" for [x.sub] after
// the second [[x]]; "" when table is no such table.
func (s *keyScanner) subTableOfEntry(table toml.Key) string {
	for n := len(table) - 1; n >= 1; n-- {
		if count := s.entries[table[:n].String()]; count > 0 {
			return table[:n].String() + "[" + strconv.Itoa(count-1) + "]." + table[n:].String()
		}
	}
	return ""
}

// key reads a dotted key of bare and quoted parts.
func (s *keyScanner) key() toml.Key {
	var k toml.Key
	for {
		s.skipBlanks()
		start := s.i
		switch c := s.peek(); {
		case c == '"':
			k = append(k, s.basicString())
		case c == '\'':
			k = append(k, s.literalString())
		case isBareKeyChar(c):
			for isBareKeyChar(s.peek()) {
				s.next()
			}
			k = append(k, string(s.src[start:s.i]))
		}
		if s.i == start {
			return k
		}
		s.skipBlanks()
		if s.peek() != '.' {
			return k
		}
		s.next()
	}
}

// value skips one value; the keys of an inline table are recorded under
// prefix, and under alt too when it is not "" (the dotted name of prefix
// with the index of its entry, "x[1].headers").
func (s *keyScanner) value(prefix toml.Key, alt string) {
	s.skipBlanks()
	switch c := s.peek(); {
	case c == '"' && s.hasPrefix(`"""`):
		s.multiline(`"""`, true)
	case c == '"':
		s.basicString()
	case c == '\'' && s.hasPrefix(`'''`):
		s.multiline(`'''`, false)
	case c == '\'':
		s.literalString()
	case c == '[':
		s.next()
		for {
			s.skipBlanksAndLines()
			if s.eof() {
				return
			}
			if s.peek() == ']' {
				s.next()
				return
			}
			if s.peek() == ',' {
				s.next()
				continue
			}
			start := s.i
			s.value(nil, "")
			if s.i == start {
				s.next()
			}
		}
	case c == '{':
		s.next()
		for {
			s.skipBlanksAndLines()
			if s.eof() {
				return
			}
			switch c := s.peek(); {
			case c == '}':
				s.next()
				return
			case isBareKeyChar(c) || c == '"' || c == '\'':
				p := s.pos()
				sub := s.key()
				k := append(append(toml.Key{}, prefix...), sub...)
				if prefix != nil {
					s.record(k, p)
				}
				subAlt := ""
				if alt != "" {
					for n := 1; n <= len(sub); n++ {
						s.recordName(alt+"."+sub[:n].String(), p)
					}
					subAlt = alt + "." + sub.String()
				}
				s.skipBlanks()
				if s.peek() == '=' {
					s.next()
					s.value(k, subAlt)
				}
			default:
				s.next()
			}
		}
	default:
		for !s.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(s.peek())) {
			s.next()
		}
	}
}

// basicString reads a "..." string and returns its value (the common escapes decoded).
func (s *keyScanner) basicString() string {
	s.next()
	var b strings.Builder
	for !s.eof() {
		c := s.peek()
		switch c {
		case '"':
			s.next()
			return b.String()
		case '\n':
			return b.String()
		case '\\':
			s.next()
			e := s.peek()
			s.next()
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'e':
				b.WriteByte(0x1b)
			case 'u', 'U':
				n := 4
				if e == 'U' {
					n = 8
				}
				hex := string(s.src[s.i:min(len(s.src), s.i+n)])
				if r, err := strconv.ParseUint(hex, 16, 32); err == nil {
					b.WriteRune(rune(r))
					for range n {
						s.next()
					}
				}
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
			s.next()
		}
	}
	return b.String()
}

func (s *keyScanner) literalString() string {
	s.next()
	start := s.i
	for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
		s.next()
	}
	v := string(s.src[start:s.i])
	if s.peek() == '\'' {
		s.next()
	}
	return v
}

// multiline skips a """...""" or ”'...”' string; a closing delimiter may be
// followed by up to two more quotes that belong to the value.
func (s *keyScanner) multiline(delim string, escapes bool) {
	for range 3 {
		s.next()
	}
	for !s.eof() {
		if escapes && s.peek() == '\\' {
			s.next()
			s.next()
			continue
		}
		if s.hasPrefix(delim) {
			for range 3 {
				s.next()
			}
			for extra := 0; extra < 2 && s.peek() == delim[0]; extra++ {
				s.next()
			}
			return
		}
		s.next()
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

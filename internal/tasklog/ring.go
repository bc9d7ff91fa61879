package tasklog

import "bytes"

// ring keeps the last max bytes written to it. Its buffer grows with the
// output up to max, so that an instance that printed little costs little.
type ring struct {
	max  int
	buf  []byte // len(buf) < max: not yet wrapped, data is buf; else data is buf[w:]+buf[:w]
	w    int    // next write position once len(buf) == max
	full bool   // data was overwritten
	lost byte   // the newest byte overwritten: unless '\n', the oldest line in buf is partial
}

// ringMinGrow is the first allocation of a ring, so that a few short lines
// do not cost a reallocation each.
const ringMinGrow = 512

func (r *ring) write(p []byte) {
	if len(p) >= r.max {
		// p alone fills the tail: it replaces everything.
		switch {
		case len(p) > r.max:
			r.full, r.lost = true, p[len(p)-r.max-1]
		case len(r.buf) > 0:
			r.full, r.lost = true, r.newest()
		}
		p = p[len(p)-r.max:]
		r.buf = r.buf[:0]
		r.w = 0
	}
	if len(r.buf) < r.max {
		need := len(r.buf) + len(p)
		if need <= cap(r.buf) {
			r.buf = append(r.buf, p...)
			return
		}
		if need <= r.max {
			r.grow(need)
			r.buf = append(r.buf, p...)
			return
		}
		// Fill up to max, then wrap around with the rest.
		r.grow(r.max)
		room := r.max - len(r.buf)
		r.buf = append(r.buf, p[:room]...)
		p = p[room:]
		r.w = 0
	}
	for len(p) > 0 {
		n := min(len(p), r.max-r.w)
		r.full, r.lost = true, r.buf[r.w+n-1]
		copy(r.buf[r.w:], p[:n])
		p = p[n:]
		r.w += n
		if r.w == r.max {
			r.w = 0
		}
	}
}

// newest returns the last byte written; the ring is not empty.
func (r *ring) newest() byte {
	if len(r.buf) < r.max || r.w == 0 {
		return r.buf[len(r.buf)-1]
	}
	return r.buf[r.w-1]
}

// grow makes room for need bytes, doubling up to max.
func (r *ring) grow(need int) {
	c := max(2*cap(r.buf), need, ringMinGrow)
	c = min(c, r.max)
	nb := make([]byte, len(r.buf), c)
	copy(nb, r.buf)
	r.buf = nb
}

// snapshot returns a copy of the data in write order, starting at a line
// boundary once old data was overwritten.
func (r *ring) snapshot() []byte {
	var out []byte
	if len(r.buf) < r.max {
		out = bytes.Clone(r.buf)
	} else {
		out = make([]byte, 0, r.max)
		out = append(out, r.buf[r.w:]...)
		out = append(out, r.buf[:r.w]...)
	}
	if r.full && r.lost != '\n' {
		// The first line lost its beginning; show whole lines only, unless
		// one line fills the whole tail.
		if i := bytes.IndexByte(out, '\n'); i >= 0 && i+1 < len(out) {
			out = out[i+1:]
		}
	}
	return out
}

// lastLines returns the suffix of data holding its last n complete lines plus
// a trailing partial line; n <= 0 returns data.
func lastLines(data []byte, n int) []byte {
	if n <= 0 {
		return data
	}
	end := len(data)
	// A trailing partial line comes on top of the n complete ones.
	if end > 0 && data[end-1] != '\n' {
		end = bytes.LastIndexByte(data, '\n') + 1
	}
	// end is just past the newline of the last complete line (or 0).
	i := end - 1
	for ; n > 0 && i >= 0; n-- {
		j := bytes.LastIndexByte(data[:i], '\n')
		i = j
	}
	return data[i+1:]
}

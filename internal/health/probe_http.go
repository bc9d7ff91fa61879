package health

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// userAgent tells a worker's access log who keeps asking.
const userAgent = "glmd-health/1"

// httpProbe sends one request and judges the status and, optionally, the
// body.
type httpProbe struct {
	name string // "GET http://127.0.0.1:8000/health"
	// req is the request without context and body, made once: the
	// transport only reads it, and copying it is cheaper than parsing the
	// URL for every probe.
	req      *http.Request
	body     string
	lo, hi   int
	contains []byte
	rt       http.RoundTripper
}

func newHTTPProbe(h *HTTPCheck, rt http.RoundTripper) (*httpProbe, error) {
	method := h.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, h.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("health: http check: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range h.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	p := &httpProbe{name: method + " " + h.URL, req: req, body: h.Body, rt: rt}
	p.lo, p.hi = h.statusRange()
	if h.BodyContains != "" {
		p.contains = []byte(h.BodyContains)
	}
	return p, nil
}

func (p *httpProbe) target() string { return p.name }

func (p *httpProbe) probe(ctx context.Context) (Outcome, string) {
	req := p.req.WithContext(ctx)
	if p.body != "" {
		req.Body = io.NopCloser(strings.NewReader(p.body))
		req.ContentLength = int64(len(p.body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(p.body)), nil }
	}
	// RoundTrip, not a Client: redirects are judged by their status, never
	// followed to another host.
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return OutcomeFailure, shortError(err)
	}
	defer resp.Body.Close()
	// Reading the body to its end (within MaxBody) lets the connection be
	// reused.
	var b []byte
	if p.contains != nil {
		b, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	} else {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody))
	}
	status := strconv.Itoa(resp.StatusCode)
	if resp.StatusCode < p.lo || resp.StatusCode > p.hi {
		return OutcomeFailure, status
	}
	if err != nil {
		return OutcomeFailure, status + ", reading the body: " + shortError(err)
	}
	if p.contains != nil && !bytes.Contains(b, p.contains) {
		return OutcomeFailure, "body lacks " + strconv.Quote(string(p.contains))
	}
	return OutcomeSuccess, status
}

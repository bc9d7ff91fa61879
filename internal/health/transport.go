package health

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// MaxBody is how much of a response body a probe reads: enough for a health
// document or a one-token completion; the rest is not read, and the
// connection is closed instead of reused.
const MaxBody = 64 << 10

// IdleConnTimeout is how long the probes' transports keep an idle connection
// open: a little over a minute, so that a check probed every minute or more
// often reuses its connection, and one of a removed instance goes soon.
const IdleConnTimeout = 65 * time.Second

// NewTransport returns the transport for the HTTP probes of an agent, to
// share among all of them (Deps.Transport): each instance's address keeps
// its keep-alive connections, so that a thousand instances probed every
// second cost a request each and no handshake. It speaks HTTP/1.1 only,
// never uses a proxy from the environment (the probe is for the instance
// itself), asks for no compression, and does not verify certificates of
// https:// URLs (as kubelet: the probe checks health, not identity).
// Redirects are never followed: the probes call RoundTrip directly.
func NewTransport() *http.Transport {
	t := &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{}).DialContext,
		// Every instance has its own host:port; a liveness and a readiness
		// check on the same port may overlap, hence more than 1.
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        IdleConnTimeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxBody,
		// Workers serve self-signed certificates, if any; kubelet does not
		// verify them either.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true)
	return t
}

// newGRPCTransport returns a transport that speaks HTTP/2 without TLS (h2c
// with prior knowledge), as plaintext gRPC does: net/http carries HTTP/2
// already, so gRPC probes add no module and next to nothing to the binary.
func newGRPCTransport() *http.Transport {
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{}).DialContext,
		IdleConnTimeout:        IdleConnTimeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxBody,
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetUnencryptedHTTP2(true)
	return t
}

// The package's transports: the HTTP one for monitors whose Deps have none,
// and the gRPC one for every gRPC probe.
var (
	transportsOnce sync.Once
	httpTransport  *http.Transport
	grpcTransport  *http.Transport
)

func transports() (httpT, grpcT *http.Transport) {
	transportsOnce.Do(func() {
		httpTransport = NewTransport()
		grpcTransport = newGRPCTransport()
	})
	return httpTransport, grpcTransport
}

// CloseIdleConnections closes the idle connections of the package's own
// transports (the gRPC one, and the HTTP one used when Deps.Transport is
// nil), e.g. when the agent stops.
func CloseIdleConnections() {
	h, g := transports()
	h.CloseIdleConnections()
	g.CloseIdleConnections()
}

package health

import (
	"context"
	"net"
)

// tcpProbe passes when a TCP connection opens.
type tcpProbe struct {
	address string
}

func (p *tcpProbe) target() string { return "tcp " + p.address }

func (p *tcpProbe) probe(ctx context.Context) (Outcome, string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.address)
	if err != nil {
		return OutcomeFailure, shortError(err)
	}
	conn.Close()
	return OutcomeSuccess, "connected"
}

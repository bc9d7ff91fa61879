package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// grpcProbe calls grpc.health.v1.Health/Check over plaintext HTTP/2 with
// net/http, and hand-codes the two one-field protobuf messages, so that gRPC
// probes cost no google.golang.org/grpc in the binary. Wire format: gRPC over
// HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md) and grpc/health/v1/health.proto.
type grpcProbe struct {
	name string // `grpc 127.0.0.1:9000 service "llm"`
	url  string
	body []byte // the framed HealthCheckRequest
	rt   http.RoundTripper
}

// gRPC's health service: the method's path and the serving status that passes.
const (
	grpcHealthPath = "/grpc.health.v1.Health/Check"
	grpcServing    = 1
)

func newGRPCProbe(g *GRPCCheck, rt http.RoundTripper) *grpcProbe {
	name := "grpc " + g.Address
	if g.Service != "" {
		name += " service " + strconv.Quote(g.Service)
	}
	return &grpcProbe{
		name: name,
		url:  "http://" + g.Address + grpcHealthPath,
		body: grpcFrame(encodeHealthRequest(g.Service)),
		rt:   rt,
	}
}

func (p *grpcProbe) target() string { return p.name }

func (p *grpcProbe) probe(ctx context.Context) (Outcome, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(p.body))
	if err != nil {
		return OutcomeError, err.Error()
	}
	req.Header = http.Header{
		"Content-Type": {"application/grpc"},
		"Te":           {"trailers"},
		"User-Agent":   {userAgent},
	}
	if dl, ok := ctx.Deadline(); ok {
		req.Header.Set("Grpc-Timeout", grpcTimeout(time.Until(dl)))
	}
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return OutcomeFailure, grpcTransportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return OutcomeFailure, fmt.Sprintf("http status %d", resp.StatusCode)
	}
	// The trailers arrive after the body's end.
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return OutcomeFailure, shortError(err)
	}
	// A "trailers-only" answer (an error without a message) carries the
	// status in the headers.
	code, msg := resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	if code == "" {
		code, msg = resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	}
	switch code {
	case "0":
	case "":
		return OutcomeError, "answer without grpc-status"
	default:
		detail := "grpc-status " + code
		if n, err := strconv.Atoi(code); err == nil && n >= 0 && n < len(grpcCodes) {
			detail += " " + grpcCodes[n]
		}
		if m, err := url.PathUnescape(msg); err == nil && m != "" {
			detail += ": " + m
		}
		return OutcomeFailure, detail
	}
	status, err := decodeHealthResponse(body)
	if err != nil {
		return OutcomeError, "malformed answer: " + err.Error()
	}
	if status != grpcServing {
		return OutcomeFailure, servingStatusName(status)
	}
	return OutcomeSuccess, servingStatusName(status)
}

// grpcTransportError describes a call that got no answer. Once connected,
// a server that does not speak plaintext HTTP/2 fails in ways that depend
// on timing (an http2 error, a broken pipe, a reset); say what they mean.
func grpcTransportError(ctx context.Context, err error) string {
	msg := shortError(err)
	op, isOp := errors.AsType[*net.OpError](err)
	if ctx.Err() != nil || (isOp && op.Op == "dial") {
		return msg
	}
	return msg + " (no gRPC answer over plaintext HTTP/2: is it a gRPC server without TLS?)"
}

// grpcCodes are the names of gRPC status codes, by number.
var grpcCodes = []string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// servingStatusName names a HealthCheckResponse.ServingStatus.
func servingStatusName(s uint64) string {
	switch s {
	case 0:
		return "UNKNOWN"
	case 1:
		return "SERVING"
	case 2:
		return "NOT_SERVING"
	case 3:
		return "SERVICE_UNKNOWN"
	}
	return "serving status " + strconv.FormatUint(s, 10)
}

// grpcTimeout formats d as a grpc-timeout header: at most 8 digits and a
// unit, here milliseconds or, for long ones, seconds.
func grpcTimeout(d time.Duration) string {
	ms := max(d.Milliseconds(), 1)
	if ms < 1e8 {
		return strconv.FormatInt(ms, 10) + "m"
	}
	return strconv.FormatInt(min(ms/1000, 1e8-1), 10) + "S"
}

// grpcFrame prefixes msg with gRPC's message header: not compressed, then
// the length as 4 bytes big-endian.
func grpcFrame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// encodeHealthRequest encodes HealthCheckRequest{string service = 1}: a
// proto3 empty string is left out.
func encodeHealthRequest(service string) []byte {
	if service == "" {
		return nil
	}
	b := []byte{1<<3 | wireBytes}
	b = binary.AppendUvarint(b, uint64(len(service)))
	return append(b, service...)
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var errTruncated = errors.New("truncated")

// decodeHealthResponse reads the first gRPC message of body, a
// HealthCheckResponse{ServingStatus status = 1}, and returns its status;
// a missing field is proto3's default, UNKNOWN.
func decodeHealthResponse(body []byte) (uint64, error) {
	if len(body) < 5 {
		return 0, fmt.Errorf("message header: %w", errTruncated)
	}
	if body[0] != 0 {
		return 0, errors.New("compressed message (none was asked for)")
	}
	n := binary.BigEndian.Uint32(body[1:5])
	if uint64(n) > uint64(len(body)-5) {
		return 0, fmt.Errorf("message of %d bytes: %w", n, errTruncated)
	}
	msg := body[5 : 5+n]
	var status uint64
	for len(msg) > 0 {
		key, k := binary.Uvarint(msg)
		if k <= 0 {
			return 0, fmt.Errorf("field key: %w", errTruncated)
		}
		msg = msg[k:]
		field, wire := key>>3, key&7
		switch wire {
		case wireVarint:
			v, k := binary.Uvarint(msg)
			if k <= 0 {
				return 0, fmt.Errorf("field %d: %w", field, errTruncated)
			}
			msg = msg[k:]
			if field == 1 {
				status = v
			}
		case wireFixed64, wireFixed32:
			size := 8
			if wire == wireFixed32 {
				size = 4
			}
			if len(msg) < size {
				return 0, fmt.Errorf("field %d: %w", field, errTruncated)
			}
			msg = msg[size:]
		case wireBytes:
			l, k := binary.Uvarint(msg)
			if k <= 0 || l > uint64(len(msg)-k) {
				return 0, fmt.Errorf("field %d: %w", field, errTruncated)
			}
			msg = msg[k+int(l):]
		default:
			return 0, fmt.Errorf("field %d: unsupported wire type %d", field, wire)
		}
		if field == 0 {
			return 0, errors.New("field number 0")
		}
	}
	return status, nil
}

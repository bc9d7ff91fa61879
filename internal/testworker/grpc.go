package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// The gRPC health service (grpc/grpc-proto grpc/health/v1/health.proto), spoken on the wire without
// google.golang.org/grpc, which the worker must not need:
//
//	message HealthCheckRequest { string service = 1; }
//	message HealthCheckResponse {
//		enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; }
//		ServingStatus status = 1;
//	}
//
// A unary call is a POST of one length-prefixed message (1 byte compressed flag, 4 bytes big-endian length) and
// answers one such message, then the status as HTTP/2 trailers (grpc/grpc doc/PROTOCOL-HTTP2.md).
const healthCheckPath = "/grpc.health.v1.Health/Check"

// Values of HealthCheckResponse.status.
const (
	servingStatusServing    = 1
	servingStatusNotServing = 2
)

// grpc-status codes (google.golang.org/grpc/codes) the worker answers with.
const (
	grpcOK            = 0
	grpcNotFound      = 5
	grpcUnimplemented = 12
	grpcInternal      = 13
)

// grpcFrameHeader is the length prefix of every message: compressed flag and big-endian length.
const grpcFrameHeader = 5

// maxHealthCheckRequest bounds a request message: it holds a service name, nothing more.
const maxHealthCheckRequest = 64 << 10

// grpcError is a call that fails with a grpc-status other than OK.
type grpcError struct {
	code int
	msg  string
}

func (e *grpcError) Error() string { return fmt.Sprintf("grpc-status %d: %s", e.code, e.msg) }

// grpcHealth serves grpc.health.v1.Health/Check from the switch behind /health.
type grpcHealth struct {
	h *health
	// services are the names that answer; the rest get NOT_FOUND. Never changes.
	services map[string]bool
}

func newGRPCHealth(h *health, services []string) *grpcHealth {
	g := &grpcHealth{h: h, services: map[string]bool{"": true}}
	for _, s := range services {
		g.services[s] = true
	}
	return g
}

func (g *grpcHealth) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	// These two are answered in HTTP, not gRPC, as grpc-go does: the client is not speaking gRPC.
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "gRPC wants POST", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil ||
		(mt != "application/grpc" && mt != "application/grpc+proto") {
		http.Error(rw, "gRPC wants Content-Type application/grpc", http.StatusUnsupportedMediaType)
		return
	}
	if r.URL.Path != healthCheckPath {
		writeGRPCError(rw, &grpcError{grpcUnimplemented, "unknown method " + r.URL.Path})
		return
	}
	service, err := readHealthCheckRequest(r.Body)
	if err != nil {
		writeGRPCError(rw, err)
		return
	}
	if !g.services[service] {
		writeGRPCError(rw, &grpcError{grpcNotFound, "unknown service"})
		return
	}
	answer, err := g.h.wait(r.Context())
	if err != nil {
		return // the client gave up; the stream is reset anyway
	}
	status := byte(servingStatusNotServing)
	if answer == answerOK {
		status = servingStatusServing
	}
	rw.Header().Set("Content-Type", "application/grpc")
	rw.Header().Set("Trailer", "Grpc-Status")
	rw.WriteHeader(http.StatusOK)
	// 0x08: field 1, wire type 0 (varint); both status values fit in one byte of varint.
	_, _ = rw.Write(grpcFrame([]byte{0x08, status}))
	rw.Header().Set("Grpc-Status", strconv.Itoa(grpcOK))
}

// writeGRPCError answers a failed call "trailers only": one HEADERS frame with the status, no message.
func writeGRPCError(rw http.ResponseWriter, err error) {
	ge := &grpcError{grpcInternal, err.Error()}
	errors.As(err, &ge)
	rw.Header().Set("Content-Type", "application/grpc")
	rw.Header().Set("Grpc-Status", strconv.Itoa(ge.code))
	rw.Header().Set("Grpc-Message", percentEncode(ge.msg))
	rw.WriteHeader(http.StatusOK)
}

// readHealthCheckRequest reads the one message of a unary call and returns its service name.
func readHealthCheckRequest(body io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(body, grpcFrameHeader+maxHealthCheckRequest+1))
	if err != nil {
		return "", &grpcError{grpcInternal, "read request: " + err.Error()}
	}
	if len(data) < grpcFrameHeader {
		return "", &grpcError{grpcInternal, fmt.Sprintf("request of %d bytes has no message header", len(data))}
	}
	if data[0] != 0 {
		return "", &grpcError{grpcUnimplemented, "compressed requests are not supported"}
	}
	n := binary.BigEndian.Uint32(data[1:grpcFrameHeader])
	if n > maxHealthCheckRequest {
		return "", &grpcError{grpcInternal, fmt.Sprintf("request message of %d bytes is over %d", n,
			maxHealthCheckRequest)}
	}
	msg := data[grpcFrameHeader:]
	if uint32(len(msg)) != n {
		return "", &grpcError{grpcInternal, fmt.Sprintf("request holds %d bytes after the header, which says %d "+
			"(a unary call sends exactly one message)", len(msg), n)}
	}
	service, err := parseHealthCheckRequest(msg)
	if err != nil {
		return "", &grpcError{grpcInternal, "parse HealthCheckRequest: " + err.Error()}
	}
	return service, nil
}

// parseHealthCheckRequest decodes a HealthCheckRequest in protobuf's wire format. Unknown fields are skipped, as
// protobuf requires; a repeated field 1 counts with its last value. Groups (wire types 3 and 4) are errors: proto3
// has none.
func parseHealthCheckRequest(msg []byte) (string, error) {
	var service string
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return "", errors.New("truncated or overlong field key")
		}
		msg = msg[n:]
		field, wire := key>>3, key&7
		if field == 0 {
			return "", errors.New("field number 0")
		}
		if field == 1 && wire != 2 {
			return "", fmt.Errorf("field 1 (service) has wire type %d, want 2 (bytes)", wire)
		}
		switch wire {
		case 0: // varint
			if _, n = binary.Uvarint(msg); n <= 0 {
				return "", fmt.Errorf("field %d: truncated or overlong varint", field)
			}
			msg = msg[n:]
		case 1, 5: // fixed64, fixed32
			size := 8
			if wire == 5 {
				size = 4
			}
			if len(msg) < size {
				return "", fmt.Errorf("field %d: truncated %d-byte value", field, size)
			}
			msg = msg[size:]
		case 2: // length-delimited
			length, n := binary.Uvarint(msg)
			if n <= 0 || length > uint64(len(msg)-n) {
				return "", fmt.Errorf("field %d: truncated length-delimited value", field)
			}
			value := msg[n : n+int(length)]
			msg = msg[n+int(length):]
			if field == 1 {
				service = string(value)
			}
		default:
			return "", fmt.Errorf("field %d: unsupported wire type %d", field, wire)
		}
	}
	if !utf8.ValidString(service) {
		return "", errors.New("service name is not valid UTF-8")
	}
	return service, nil
}

// grpcFrame prefixes an uncompressed message with its length.
func grpcFrame(msg []byte) []byte {
	frame := make([]byte, grpcFrameHeader, grpcFrameHeader+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	return append(frame, msg...)
}

// percentEncode encodes grpc-message as PROTOCOL-HTTP2.md asks: bytes outside printable ASCII, and '%', as %XX.
func percentEncode(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '%' {
			b = fmt.Appendf(b, "%%%02X", c)
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

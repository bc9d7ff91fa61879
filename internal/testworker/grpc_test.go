package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// request encodes HealthCheckRequest{service} by hand, independently of the worker's parser.
func request(service string) []byte {
	msg := append([]byte{key(1, 2)}, binary.AppendUvarint(nil, uint64(len(service)))...)
	return append(msg, service...)
}

// key is a field's tag byte: field number and wire type, for fields below 16.
func key(field, wire byte) byte { return field<<3 | wire }

// framed prefixes msg with the gRPC message header, flag 0.
func framed(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
}

func TestParseHealthCheckRequest(t *testing.T) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	long := strings.Repeat("s", 300) // a length of two varint bytes
	tests := []struct {
		name    string
		msg     []byte
		want    string
		wantErr bool
	}{
		{name: "empty", msg: nil, want: ""},
		{name: "service", msg: request("glm"), want: "glm"},
		{name: "empty service", msg: request(""), want: ""},
		{name: "long service", msg: request(long), want: long},
		{name: "last wins", msg: cat(request("a"), request("b")), want: "b"},
		{name: "unknown fields skipped", want: "glm", msg: cat(
			[]byte{key(2, 0), 0x96, 0x01}, // field 2 varint 150
			[]byte{key(3, 1), 1, 2, 3, 4, 5, 6, 7, 8},
			[]byte{key(4, 5), 1, 2, 3, 4},
			[]byte{key(5, 2), 2, 'h', 'i'},
			request("glm"),
		)},
		{name: "field 1 as varint", msg: []byte{key(1, 0), 1}, wantErr: true},
		{name: "field 0", msg: []byte{key(0, 0), 1}, wantErr: true},
		{name: "group", msg: []byte{key(2, 3)}, wantErr: true},
		{name: "truncated key", msg: []byte{0x80}, wantErr: true},
		{name: "truncated varint", msg: []byte{key(2, 0), 0x80}, wantErr: true},
		{name: "truncated fixed64", msg: []byte{key(2, 1), 1, 2, 3}, wantErr: true},
		{name: "truncated fixed32", msg: []byte{key(2, 5), 1, 2, 3}, wantErr: true},
		{name: "truncated bytes", msg: []byte{key(1, 2), 5, 'a'}, wantErr: true},
		{name: "huge length", msg: binary.AppendUvarint([]byte{key(1, 2)}, 1<<64-1), wantErr: true},
		{name: "overlong varint", msg: bytes.Repeat([]byte{0xff}, 11), wantErr: true},
		{name: "invalid UTF-8", msg: request("\xff"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHealthCheckRequest(tt.msg)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseHealthCheckRequest(%x) = %q, %v; want %q, error %v", tt.msg, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReadHealthCheckRequest(t *testing.T) {
	tests := []struct {
		name     string
		body     []byte
		want     string
		wantCode int // grpc-status of the error; -1: no error
	}{
		{"service", framed(request("glm")), "glm", -1},
		{"empty message", framed(nil), "", -1},
		{"no body", nil, "", grpcInternal},
		{"short header", []byte{0, 0, 0}, "", grpcInternal},
		{"compressed", append([]byte{1}, framed(nil)[1:]...), "", grpcUnimplemented},
		{"short message", framed(request("glm"))[:7], "", grpcInternal},
		{"two messages", append(framed(request("a")), framed(request("b"))...), "", grpcInternal},
		{"too large", framed(request(string(make([]byte, maxHealthCheckRequest)))), "", grpcInternal},
		{"malformed message", framed([]byte{key(1, 0), 1}), "", grpcInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readHealthCheckRequest(bytes.NewReader(tt.body))
			var ge *grpcError
			switch {
			case tt.wantCode < 0 && (err != nil || got != tt.want):
				t.Errorf("readHealthCheckRequest = %q, %v; want %q", got, err, tt.want)
			case tt.wantCode >= 0 && (!errors.As(err, &ge) || ge.code != tt.wantCode):
				t.Errorf("readHealthCheckRequest = %q, %v; want grpc-status %d", got, err, tt.wantCode)
			}
		})
	}
}

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{
		"unknown service": "unknown service",
		"100% sure":       "100%25 sure",
		"a\nb\xff":        "a%0Ab%FF",
		"":                "",
	} {
		if got := percentEncode(in); got != want {
			t.Errorf("percentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseHealthCheckRequest: any input parses or fails, never panics, and a service name that parses survives
// being encoded again.
func FuzzParseHealthCheckRequest(f *testing.F) {
	f.Add([]byte{})
	f.Add(request("glm"))
	f.Add([]byte{key(2, 0), 0x96, 0x01, key(1, 2), 1, 'x'})
	f.Add([]byte{key(1, 2), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, msg []byte) {
		service, err := parseHealthCheckRequest(msg)
		if err != nil {
			return
		}
		again, err := parseHealthCheckRequest(request(service))
		if err != nil || again != service {
			t.Errorf("service %q parsed from %x, then %q, %v from its own encoding", service, msg, again, err)
		}
	})
}

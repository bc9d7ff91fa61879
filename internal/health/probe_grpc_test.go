package health

import (
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// healthServer is a grpc.health.v1 server written against the wire format
// (gRPC over HTTP/2, plaintext), independently of the probe's own encoder.
// Services: "" and "llm" are SERVING, "draining" NOT_SERVING, "quiet" answers
// an empty message (UNKNOWN); "gone" gets grpc-status 5 in the trailers,
// "busy" a trailers-only grpc-status 14, "proxy" HTTP 502, "garbage" a
// malformed message; anything else SERVICE_UNKNOWN.
func healthServer(t *testing.T) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Method != http.MethodPost || r.URL.Path != "/grpc.health.v1.Health/Check" ||
			r.Header.Get("Content-Type") != "application/grpc" || r.Header.Get("Te") != "trailers" ||
			!strings.HasSuffix(r.Header.Get("Grpc-Timeout"), "m") {
			t.Errorf("request %s %s %s %v", r.Proto, r.Method, r.URL.Path, r.Header)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil || len(body) < 5 || body[0] != 0 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
			t.Errorf("request frame %q: %v", body, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		service := ""
		if msg := body[5:]; len(msg) > 0 {
			// field 1, wire type 2, a one-byte length
			if msg[0] != 0x0a || int(msg[1]) != len(msg)-2 {
				t.Errorf("request message %x", msg)
			}
			service = string(msg[2:])
		}
		respond := func(msg []byte, status, message string) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
			w.WriteHeader(http.StatusOK)
			frame := make([]byte, 5, 5+len(msg))
			binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
			w.Write(append(frame, msg...))
			w.Header().Set("Grpc-Status", status)
			w.Header().Set("Grpc-Message", message)
		}
		switch service {
		case "", "llm":
			respond([]byte{0x08, 1}, "0", "")
		case "draining":
			// an unknown field first, which a decoder must skip
			respond([]byte{0x12, 3, 'a', 'b', 'c', 0x08, 2}, "0", "")
		case "quiet":
			respond(nil, "0", "")
		case "gone":
			respond(nil, "5", "unknown service gone")
		case "busy":
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "14")
			w.Header().Set("Grpc-Message", "loading%20weights")
			w.WriteHeader(http.StatusOK)
		case "proxy":
			w.WriteHeader(http.StatusBadGateway)
		case "garbage":
			respond([]byte{0x08}, "0", "")
		default:
			respond([]byte{0x08, 3}, "0", "")
		}
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestProbeGRPC(t *testing.T) {
	srv := healthServer(t)
	addr := srv.Listener.Addr().String()
	http1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(http1.Close)
	refused := freeAddr(t)
	for _, tc := range []struct {
		name, addr, service string
		outcome             Outcome
		msg                 string // after the target; a prefix for the HTTP/1 server
	}{
		{"server SERVING", addr, "", OutcomeSuccess, "SERVING"},
		{"service SERVING", addr, "llm", OutcomeSuccess, "SERVING"},
		{"NOT_SERVING", addr, "draining", OutcomeFailure, "NOT_SERVING"},
		{"empty answer is UNKNOWN", addr, "quiet", OutcomeFailure, "UNKNOWN"},
		{"SERVICE_UNKNOWN", addr, "other", OutcomeFailure, "SERVICE_UNKNOWN"},
		{"grpc-status in trailers", addr, "gone", OutcomeFailure, "grpc-status 5 NOT_FOUND: unknown service gone"},
		{"trailers-only answer", addr, "busy", OutcomeFailure, "grpc-status 14 UNAVAILABLE: loading weights"},
		{"http error", addr, "proxy", OutcomeFailure, "http status 502"},
		{"malformed message", addr, "garbage", OutcomeError, "malformed answer: field 1: truncated"},
		{"connection refused", refused, "", OutcomeFailure, "connection refused"},
		// How an HTTP/1 server fails the call depends on timing (an http2
		// error, a broken pipe): the hint is what is always there.
		{"HTTP/1 server", http1.Listener.Addr().String(), "", OutcomeFailure, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Check{Type: TypeGRPC, GRPC: &GRPCCheck{Address: tc.addr, Service: tc.service},
				Interval: time.Second, Timeout: 5 * time.Second, FailureThreshold: 1, SuccessThreshold: 1}
			r := probeOnce(t, c, Deps{})
			want := "grpc " + tc.addr
			if tc.service != "" {
				want += ` service "` + tc.service + `"`
			}
			want += ": " + tc.msg
			if r.Outcome != tc.outcome || !strings.HasPrefix(r.Message, want) {
				t.Fatalf("probe: %s %q, want %s %q", r.Outcome, r.Message, tc.outcome, want)
			}
			const hint = "is it a gRPC server without TLS?"
			if http1 := tc.msg == ""; http1 != strings.Contains(r.Message, hint) {
				t.Fatalf("probe: %q: hint %q wanted: %v", r.Message, hint, http1)
			}
		})
	}
}

func TestGRPCTimeout(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Second:             "2000m",
		time.Microsecond:            "1m",
		30 * time.Hour:              "108000S",
		100000 * time.Hour:          "99999999S",
		99999999 * time.Millisecond: "99999999m",
	} {
		if got := grpcTimeout(d); got != want {
			t.Errorf("grpcTimeout(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestEncodeHealthRequest(t *testing.T) {
	if got := grpcFrame(encodeHealthRequest("")); string(got) != "\x00\x00\x00\x00\x00" {
		t.Errorf("empty service: %q", got)
	}
	if got := grpcFrame(encodeHealthRequest("llm")); string(got) != "\x00\x00\x00\x00\x05\x0a\x03llm" {
		t.Errorf("service llm: %q", got)
	}
	long := strings.Repeat("s", 200) // a two-byte varint length
	if got := encodeHealthRequest(long); string(got[:3]) != "\x0a\xc8\x01" || len(got) != 203 {
		t.Errorf("long service: %q...", got[:3])
	}
}

func FuzzDecodeHealthResponse(f *testing.F) {
	for _, seed := range []string{
		"\x00\x00\x00\x00\x02\x08\x01",
		"\x00\x00\x00\x00\x00",
		"\x00\x00\x00\x00\x07\x12\x03abc\x08\x02",
		"\x00\x00\x00\x00\x0a\x19\x01\x02\x03\x04\x05\x06\x07\x08\x08",
		"\x01\x00\x00\x00\x00",
		"\x00\xff\xff\xff\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		status, err := decodeHealthResponse(body)
		if err == nil && len(body) >= 7 && body[0] == 0 && string(body[1:7]) == "\x00\x00\x00\x02\x08\x01" && status != 1 {
			t.Fatalf("SERVING decoded as %d", status)
		}
	})
}

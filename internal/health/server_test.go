package health

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// serveMany serves GET /health ("ok") on n loopback ports, one listener
// each as a worker would have, writes their addresses to out one per line
// and "ready", and returns when in reaches its end (the parent went away).
func serveMany(in io.Reader, out io.Writer, ports string) error {
	n, err := strconv.Atoi(ports)
	if err != nil || n < 1 {
		return fmt.Errorf("SERVE_PORTS=%q: want a positive number", ports)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux}
	w := bufio.NewWriter(out)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go srv.Serve(ln)
		fmt.Fprintln(w, ln.Addr())
	}
	fmt.Fprintln(w, "ready")
	if err := w.Flush(); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, in)
	return err
}

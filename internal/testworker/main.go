// Command testworker is the worker program glmd's tests supervise. It does, on request, what real workers do to a
// supervisor: exit, crash, ignore SIGTERM, leave children and daemons behind, flood stdout, answer health probes,
// and run into cgroup limits (CPU, memory, pids, I/O). Tests build it with internal/testenv.Worker, or take a
// prebuilt one from GLMD_TESTWORKER; it needs nothing but the standard library and x/sys, and is built static
// (CGO_ENABLED=0).
//
// It works in this order: set up signal handling, print, write the pidfile, spawn, serve HTTP and gRPC (with
// -listen-after: start a timer for it), burn CPU, hog memory, fork, flood, write with O_DIRECT, then the main
// behaviour (sleep, exit or crash). Signal handling comes first, so a test that has seen any output or the pidfile
// may signal the process.
//
// Printing:
//
//	-echo STR          print STR and a newline to stdout
//	-echo-stderr STR   print STR and a newline to stderr
//	-print-env         print the environment to stdout, one sorted KEY=VALUE line per variable
//	-open PATH         try to open PATH for reading and print "open PATH: ok" or "open PATH: <error>" (repeatable;
//	                   device files a cgroup refuses say "operation not permitted")
//	-print-id          print "uid=N gid=N groups=a,b umask=0022 cwd=/x" to stdout
//	-pidfile PATH      append "<pid>\n" to PATH (O_APPEND, so tests can count starts)
//
// Main behaviour (default -sleep: sleep until a signal):
//
//	-exit CODE         exit with CODE after -after
//	-crash SIG         after -after, die of signal SIG (SIGSEGV, SEGV, 11, ...); no core file is written
//	-after DUR         delay for -exit and -crash (default 0), counted from the start of the main behaviour
//	-sleep             sleep until a signal (the default; exists to make a test's intent explicit)
//
// Signals:
//
//	SIGTERM and SIGINT print "got SIGTERM" (or "got SIGINT") to stdout and exit 0 after -term-delay. They stop a
//	flood first, so the line is never torn.
//	-term-delay DUR    wait this long between the signal and the exit (default 0)
//	-ignore-term       print "ignoring SIGTERM" (or SIGINT) instead and keep going: only SIGKILL stops it
//
// Descendants, all sleeping until killed, all inheriting stdout, stderr and the environment:
//
//	-spawn N           N children in the worker's process group and session
//	-spawn-setsid N    N children that each start a new session (and so a new process group)
//	-daemonize N       N grandchildren by double fork: a middle child starts a grandchild in a new session and
//	                   exits at once, so the grandchild is reparented to the nearest subreaper (or init)
//	-children-file P   each child or grandchild (also those of -fork) appends its own "<pid>\n" to P once it runs
//	-children-ignore-term
//	                   the descendants ignore SIGTERM and SIGINT (SIG_IGN, visible in /proc/<pid>/status);
//	                   without it they exit 0 on either, silently
//
// The worker reaps its -spawn and -spawn-setsid children; daemonized grandchildren are the subreaper's to reap.
//
// Output volume:
//
//	-flood BYTES       write exactly BYTES bytes to stdout in 1 MB writes, then go on: the stream is 100-byte lines
//	                   of 99 'x' and a newline, cut at BYTES (a multiple of 100 gives whole lines)
//	-flood-forever     flood until killed or signalled
//
// Load, to run into cgroup limits (BYTES is a number of bytes, or one with K, KiB, M, MiB, G or GiB, all binary):
//
//	-burn-cpu N        N goroutines spin on the CPU until the process ends, with GOMAXPROCS at least N (set
//	                   explicitly, so the runtime does not lower it to a cgroup's cpu.max); prints "burning N"
//	                   once they are started, then goes on
//	-hog BYTES         allocate BYTES in steps of -hog-step, writing to every page so that each step is resident
//	                   and kept (never freed), and print "hogged N MiB" after each step (N: the total so far,
//	                   whole MiB rounded down), then go on; under a lower memory.max the kernel OOM-kills it
//	-hog-step BYTES    size of one -hog step (default 4MiB)
//	-fork N            try to start N children, copies of the worker sleeping in its process group like those of
//	                   -spawn (and reaped by the worker), then print "forked OK of N (FAIL failed)" or, after
//	                   failures, "forked OK of N (FAIL failed: <first error> (ERRNO))" and go on; every attempt is
//	                   made, so under pids.max a fork bomb reads "... failed: fork/exec ...: resource temporarily
//	                   unavailable (EAGAIN))". pids.max counts threads too, and each child is a Go program of
//	                   about five: one that forks but then cannot start a thread dies with "fatal error:
//	                   newosproc" and a runtime stack dump on stderr.
//	-write-direct PATH write -write-bytes to PATH (created or truncated) with O_DIRECT, -write-block per write
//	                   from a page-aligned buffer of pseudo-random bytes (the same in every block), fsync, print
//	                   "wrote N MiB in DURATION (R MiB/s)" (time from open to after the fsync) and exit 0. Any
//	                   error exits 1 with a message; a filesystem that refuses O_DIRECT (EINVAL; tmpfs before
//	                   Linux 6.6) is named as such. Excludes -exit, -crash and -flood-forever.
//	-write-bytes BYTES how much -write-direct writes (default 32MiB); a multiple of 4096
//	-write-block BYTES the size of each write (default 1MiB); a multiple of 4096
//
// -burn-cpu, -hog and -fork combine with each other and with everything else.
//
// Health endpoints:
//
//	-http ADDR         serve HTTP on ADDR (127.0.0.1:0 picks a port) and print "listening on HOST:PORT"
//	-addr-file PATH    also write HOST:PORT (no newline) to PATH, atomically
//	-grpc ADDR         serve the gRPC health service (grpc.health.v1.Health/Check) on ADDR, plaintext HTTP/2
//	                   (h2c, prior knowledge only), and print "grpc listening on HOST:PORT"
//	-grpc-addr-file PATH
//	                   also write the gRPC HOST:PORT (no newline) to PATH, atomically
//	-grpc-service NAME answer for service NAME too (repeatable); the empty name, the server as a whole, always
//	                   answers, every other name gets NOT_FOUND
//	-healthy           the first answer of the switch (default true)
//	-ready-after DUR   every probe answers "starting", whatever the switch says, until DUR after the worker
//	                   started, like a model server loading its weights: the servers listen meanwhile, so a
//	                   probe's connection is accepted but the answer is not ready
//	-listen-after DUR  listen only DUR after the worker started, so that connections are refused until then; the
//	                   worker goes on meanwhile, and prints the "listening" lines when it listens (a test gives a
//	                   fixed port, as 127.0.0.1:0 gives no port to try before)
//
// Both count from the worker's start, so -ready-after at most -listen-after is ready as soon as it listens.
//
// One switch drives every probe: "ok", "unhealthy" or "hang". GET /health answers 200 "ok", 503 "unhealthy" or
// 503 "starting", or hangs until the answer changes or the client gives up. POST /v1/completions, a readiness probe
// that asks for one token, answers 200 {"choices":[{"text":"x"}]} when GET /health would answer 200, 503
// {"error":{"message":"ANSWER"}} when it would answer 503, and hangs when it would hang; the request body is read
// and ignored. POST /healthy, /unhealthy and /hang on the -http server set the switch; the new answer also releases
// requests hanging at the time. With -grpc alone, nothing sets the switch: it stays as -healthy says.
//
// The gRPC Check answers SERVING for "ok", NOT_SERVING for "unhealthy" and "starting", and hangs for "hang"; each
// answer is one HealthCheckResponse and the trailer grpc-status 0. An unknown service gets grpc-status 5
// (NOT_FOUND), another method 12 (UNIMPLEMENTED), a compressed request 12 and a malformed one 13 (INTERNAL), each
// with a grpc-message and no response message (trailers only). A request that is not POST or not
// application/grpc(+proto) gets HTTP 405 or 415.
//
// Usage errors exit 2.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Roles of the worker's own descendants, which run this same binary with the hidden -role flag.
const (
	roleWorker = ""
	roleChild  = "child"  // sleeps until killed; -pidfile is the parent's -children-file
	roleMiddle = "middle" // the first fork of -daemonize: starts a grandchild in a new session and exits
)

// floodLine is the unit of -flood output; floodLines of them make one write.
const (
	floodLine  = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
	floodLines = 10000
)

// errUsage marks bad command lines, which exit 2 as the flag package does.
var errUsage = errors.New("usage")

type options struct {
	role string

	echo, echoStderr   string
	printEnv, printID  bool
	open               []string
	pidfile            string
	exit               int
	crash              syscall.Signal
	after              time.Duration
	ignoreTerm         bool
	termDelay          time.Duration
	spawn, spawnSetsid int
	daemonize          int
	childrenFile       string
	childrenIgnoreTerm bool
	flood              int64
	floodForever       bool
	httpAddr           string
	addrFile           string
	grpcAddr           string
	grpcAddrFile       string
	grpcServices       []string
	healthy            bool
	readyAfter         time.Duration
	listenAfter        time.Duration
	burnCPU            int
	hog, hogStep       byteSize
	fork               int
	writeDirect        string
	writeBytes         byteSize
	writeBlock         byteSize
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "testworker:", err)
		}
		os.Exit(2)
	}
	switch o.role {
	case roleChild:
		runChild(o)
	case roleMiddle:
		runMiddle(o)
	default:
		newWorker(o).run()
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{hogStep: defaultHogStep, writeBytes: defaultWriteBytes, writeBlock: defaultWriteBlock}
	fs := flag.NewFlagSet("testworker", flag.ContinueOnError)
	fs.StringVar(&o.role, "role", roleWorker, "internal: how a descendant of the worker behaves")
	fs.StringVar(&o.echo, "echo", "", "print `STR` to stdout at start")
	fs.StringVar(&o.echoStderr, "echo-stderr", "", "print `STR` to stderr at start")
	fs.BoolVar(&o.printEnv, "print-env", false, "print the environment, sorted, at start")
	fs.BoolVar(&o.printID, "print-id", false, "print uid, gid, groups, umask and cwd at start")
	fs.Func("open", "try to open `PATH` and print how it went (repeatable)", func(s string) error {
		o.open = append(o.open, s)
		return nil
	})
	fs.StringVar(&o.pidfile, "pidfile", "", "append the pid to `PATH` at start")
	fs.IntVar(&o.exit, "exit", -1, "exit with `CODE` after -after (default: sleep)")
	fs.Func("crash", "die of signal `SIG` after -after", func(s string) error {
		sig, err := parseSignal(s)
		o.crash = sig
		return err
	})
	fs.DurationVar(&o.after, "after", 0, "delay for -exit and -crash")
	fs.Bool("sleep", true, "sleep until a signal (the default behaviour)")
	fs.BoolVar(&o.ignoreTerm, "ignore-term", false, "ignore SIGTERM and SIGINT")
	fs.DurationVar(&o.termDelay, "term-delay", 0, "wait this long after SIGTERM before exiting 0")
	fs.IntVar(&o.spawn, "spawn", 0, "start `N` children in the process group")
	fs.IntVar(&o.spawnSetsid, "spawn-setsid", 0, "start `N` children in new sessions")
	fs.IntVar(&o.daemonize, "daemonize", 0, "start `N` grandchildren by double fork")
	fs.StringVar(&o.childrenFile, "children-file", "", "descendants append their pids to `PATH`")
	fs.BoolVar(&o.childrenIgnoreTerm, "children-ignore-term", false, "descendants ignore SIGTERM and SIGINT")
	fs.Int64Var(&o.flood, "flood", 0, "write `BYTES` of 100-byte lines to stdout")
	fs.BoolVar(&o.floodForever, "flood-forever", false, "flood stdout until killed")
	fs.StringVar(&o.httpAddr, "http", "", "serve /health on `ADDR`")
	fs.StringVar(&o.addrFile, "addr-file", "", "write the HTTP address to `PATH`")
	fs.StringVar(&o.grpcAddr, "grpc", "", "serve the gRPC health service on `ADDR` (h2c)")
	fs.StringVar(&o.grpcAddrFile, "grpc-addr-file", "", "write the gRPC address to `PATH`")
	fs.Func("grpc-service", "also answer gRPC health checks for service `NAME` (repeatable)", func(s string) error {
		o.grpcServices = append(o.grpcServices, s)
		return nil
	})
	fs.BoolVar(&o.healthy, "healthy", true, "first answer of every probe")
	fs.DurationVar(&o.readyAfter, "ready-after", 0, "probes answer \"starting\" until `DUR` after start")
	fs.DurationVar(&o.listenAfter, "listen-after", 0, "listen for probes only `DUR` after start")
	fs.IntVar(&o.burnCPU, "burn-cpu", 0, "spin on `N` CPUs until killed")
	fs.Var(&o.hog, "hog", "allocate and touch `BYTES` of memory")
	fs.Var(&o.hogStep, "hog-step", "allocate -hog in steps of `BYTES`")
	fs.IntVar(&o.fork, "fork", 0, "try to fork `N` sleeping children")
	fs.StringVar(&o.writeDirect, "write-direct", "", "write to `PATH` with O_DIRECT, fsync and exit")
	fs.Var(&o.writeBytes, "write-bytes", "how many `BYTES` -write-direct writes")
	fs.Var(&o.writeBlock, "write-block", "`BYTES` per write of -write-direct")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	switch o.role {
	case roleWorker, roleChild, roleMiddle:
	default:
		bad = append(bad, fmt.Sprintf("unknown -role %q", o.role))
	}
	if o.exit > 255 {
		bad = append(bad, fmt.Sprintf("-exit %d: want 0 to 255", o.exit))
	}
	if o.exit >= 0 && o.crash != 0 {
		bad = append(bad, "-exit and -crash exclude each other")
	}
	if o.after != 0 && o.exit < 0 && o.crash == 0 {
		bad = append(bad, "-after needs -exit or -crash")
	}
	if o.spawn < 0 || o.spawnSetsid < 0 || o.daemonize < 0 || o.flood < 0 || o.after < 0 || o.termDelay < 0 ||
		o.burnCPU < 0 || o.fork < 0 || o.readyAfter < 0 || o.listenAfter < 0 {
		bad = append(bad, "counts, sizes and durations must not be negative")
	}
	if o.flood > 0 && o.floodForever {
		bad = append(bad, "-flood and -flood-forever exclude each other")
	}
	if o.addrFile != "" && o.httpAddr == "" {
		bad = append(bad, "-addr-file needs -http")
	}
	if (o.grpcAddrFile != "" || len(o.grpcServices) > 0) && o.grpcAddr == "" {
		bad = append(bad, "-grpc-addr-file and -grpc-service need -grpc")
	}
	for _, name := range []string{"ready-after", "listen-after"} {
		if set[name] && o.httpAddr == "" && o.grpcAddr == "" {
			bad = append(bad, "-"+name+" needs -http or -grpc")
		}
	}
	if set["hog-step"] && o.hog == 0 {
		bad = append(bad, "-hog-step needs -hog")
	}
	if o.hogStep <= 0 {
		bad = append(bad, fmt.Sprintf("-hog-step %d: want a positive size", o.hogStep))
	}
	for _, name := range []string{"write-bytes", "write-block"} {
		if set[name] && o.writeDirect == "" {
			bad = append(bad, "-"+name+" needs -write-direct")
		}
	}
	for _, f := range []struct {
		name string
		v    byteSize
	}{{"-write-bytes", o.writeBytes}, {"-write-block", o.writeBlock}} {
		if f.v <= 0 || f.v%directAlign != 0 {
			bad = append(bad, fmt.Sprintf("%s %d: want a positive multiple of %d (O_DIRECT alignment)",
				f.name, f.v, directAlign))
		}
	}
	if o.writeDirect != "" && (o.exit >= 0 || o.crash != 0 || o.floodForever) {
		bad = append(bad, "-write-direct exits when done: it excludes -exit, -crash and -flood-forever")
	}
	if len(bad) > 0 {
		fmt.Fprintln(fs.Output(), "testworker:", strings.Join(bad, "; "))
		fs.Usage()
		return nil, errUsage
	}
	return o, nil
}

// parseSignal accepts SIGSEGV, SEGV (any case) or a number.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || unix.SignalName(syscall.Signal(n)) == "" {
			return 0, fmt.Errorf("unknown signal %d", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// worker is the process the test started (role "").
type worker struct {
	o *options
	// start is when the worker started: -ready-after and -listen-after count from here.
	start time.Time

	// outMu serialises writes to stdout so that a flood never tears a line the signal handler prints.
	outMu sync.Mutex
	// stopping tells the flood to stop; set before the handler takes outMu.
	stopping atomic.Bool
	// exitMu is held for good by the signal handler once it decides to exit, so that the main behaviour cannot
	// exit with another code (or crash) during -term-delay.
	exitMu sync.Mutex
}

func newWorker(o *options) *worker { return &worker{o: o, start: time.Now()} }

func (w *worker) run() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go w.handleSignals(sigs)

	o := w.o
	if o.echo != "" {
		w.print(o.echo + "\n")
	}
	if o.echoStderr != "" {
		fmt.Fprintln(os.Stderr, o.echoStderr)
	}
	if o.printEnv {
		env := os.Environ()
		slices.Sort(env)
		var b strings.Builder
		for _, kv := range env {
			b.WriteString(kv + "\n")
		}
		w.print(b.String())
	}
	if o.printID {
		w.print(identity())
	}
	for _, p := range o.open {
		f, err := os.Open(p)
		if err != nil {
			var errno syscall.Errno
			msg := err.Error()
			if errors.As(err, &errno) {
				msg = errno.Error()
			}
			w.print("open " + p + ": " + msg + "\n")
			continue
		}
		f.Close()
		w.print("open " + p + ": ok\n")
	}
	if o.pidfile != "" {
		if err := appendPid(o.pidfile); err != nil {
			fatal(err)
		}
	}
	w.spawnAll()
	if o.httpAddr != "" || o.grpcAddr != "" {
		w.serveProbes()
	}
	if o.burnCPU > 0 {
		w.burnCPU(o.burnCPU)
	}
	if o.hog > 0 {
		w.hog(int64(o.hog), int64(o.hogStep))
	}
	if o.fork > 0 {
		w.fork(o.fork)
	}
	if o.flood > 0 || o.floodForever {
		w.flood(o.flood, o.floodForever)
	}
	if o.writeDirect != "" {
		w.writeDirect(o.writeDirect, int64(o.writeBytes), int64(o.writeBlock))
	}
	w.mainBehaviour()
}

func (w *worker) handleSignals(sigs <-chan os.Signal) {
	for sig := range sigs {
		name := unix.SignalName(sig.(syscall.Signal))
		if w.o.ignoreTerm {
			w.print("ignoring " + name + "\n")
			continue
		}
		w.exitMu.Lock() // never unlocked: this goroutine ends the process
		w.stopping.Store(true)
		w.print("got " + name + "\n")
		time.Sleep(w.o.termDelay)
		os.Exit(0)
	}
}

func (w *worker) print(s string) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	if _, err := io.WriteString(os.Stdout, s); err != nil {
		fmt.Fprintln(os.Stderr, "testworker: write stdout:", err)
	}
}

func (w *worker) mainBehaviour() {
	o := w.o
	if o.exit < 0 && o.crash == 0 {
		sleepForever()
	}
	time.Sleep(o.after)
	w.exitMu.Lock() // blocks forever if a signal is already ending the process
	if o.crash != 0 {
		crash(o.crash)
	}
	os.Exit(o.exit)
}

// flood writes n bytes of floodLine, or without end, unless a signal stops it.
func (w *worker) flood(n int64, forever bool) {
	buf := bytes.Repeat([]byte(floodLine), floodLines)
	for forever || n > 0 {
		chunk := buf
		if !forever && int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		w.outMu.Lock()
		if w.stopping.Load() {
			w.outMu.Unlock()
			return
		}
		_, err := os.Stdout.Write(chunk)
		w.outMu.Unlock()
		if err != nil {
			fmt.Fprintln(os.Stderr, "testworker: flood stdout:", err)
			return
		}
		n -= int64(len(chunk))
	}
}

// childArgs are the arguments of a child of -spawn, -spawn-setsid and -fork.
func (w *worker) childArgs() []string {
	args := []string{"-role=" + roleChild}
	if w.o.childrenFile != "" {
		args = append(args, "-pidfile="+w.o.childrenFile)
	}
	if w.o.childrenIgnoreTerm {
		args = append(args, "-ignore-term")
	}
	return args
}

func (w *worker) spawnAll() {
	o := w.o
	childArgs := w.childArgs()
	for i := 0; i < o.spawn+o.spawnSetsid; i++ {
		cmd, err := startSelf(childArgs, i >= o.spawn)
		if err != nil {
			fatal(err)
		}
		// Reaped here, so that a child killed by a test does not stay a zombie while the worker sleeps.
		go func() { _ = cmd.Wait() }()
	}

	middleArgs := []string{"-role=" + roleMiddle}
	if o.childrenFile != "" {
		middleArgs = append(middleArgs, "-children-file="+o.childrenFile)
	}
	if o.childrenIgnoreTerm {
		middleArgs = append(middleArgs, "-children-ignore-term")
	}
	for range o.daemonize {
		cmd, err := startSelf(middleArgs, false)
		if err != nil {
			fatal(err)
		}
		// Waiting for the middle child is what makes its child an orphan before the worker goes on.
		if err := cmd.Wait(); err != nil {
			fatal(fmt.Errorf("daemonize: middle process %d: %w", cmd.Process.Pid, err))
		}
	}
}

// runMiddle is the first fork of -daemonize: it starts the grandchild in a new session and exits without waiting.
func runMiddle(o *options) {
	args := []string{"-role=" + roleChild}
	if o.childrenFile != "" {
		args = append(args, "-pidfile="+o.childrenFile)
	}
	if o.childrenIgnoreTerm {
		args = append(args, "-ignore-term")
	}
	if _, err := startSelf(args, true); err != nil {
		fatal(err)
	}
	os.Exit(0)
}

// runChild is every descendant that stays: it records its pid and sleeps until a signal.
func runChild(o *options) {
	sigs := make(chan os.Signal, 1)
	if o.ignoreTerm {
		// A real SIG_IGN, unlike the worker's, so that a test can see it in /proc/<pid>/status.
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	} else {
		// Notify rather than the default action: a SIGINT ignored by whoever started us would stay ignored.
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}
	if o.pidfile != "" {
		if err := appendPid(o.pidfile); err != nil {
			fatal(err)
		}
	}
	if o.ignoreTerm {
		sleepForever()
	}
	<-sigs
	os.Exit(0)
}

// startSelf starts this binary again with args, in a new session if setsid; stdio and environment are inherited.
func startSelf(args []string, setsid bool) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable to spawn a child: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child %s: %w", exe, err)
	}
	return cmd, nil
}

// identity is the -print-id line.
func identity() string {
	mask := unix.Umask(0)
	unix.Umask(mask)
	groups, err := os.Getgroups()
	if err != nil {
		fatal(fmt.Errorf("read supplementary groups: %w", err))
	}
	gs := make([]string, len(groups))
	for i, g := range groups {
		gs[i] = strconv.Itoa(g)
	}
	wd, err := os.Getwd()
	if err != nil {
		fatal(fmt.Errorf("read working directory: %w", err))
	}
	return fmt.Sprintf("uid=%d gid=%d groups=%s umask=%04o cwd=%s\n",
		os.Getuid(), os.Getgid(), strings.Join(gs, ","), mask, wd)
}

// appendPid appends "<pid>\n" in one write, which O_APPEND keeps whole when several processes share the file.
func appendPid(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open pid file: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d\n", os.Getpid())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a polling reader never sees half a file.
func writeFileAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".testworker-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.WriteString(content)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// sleepForever blocks with a timer pending, so the runtime never reports a deadlock.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// crash makes the process die of sig, as a real crash would: no Go handler, no core file.
func crash(sig syscall.Signal) {
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	signal.Reset(sig)
	resetSignal(sig)
	if err := unix.Kill(os.Getpid(), sig); err != nil {
		fatal(fmt.Errorf("kill self with %v: %w", sig, err))
	}
	// Signals whose default action is not to terminate (SIGCHLD, SIGSTOP) leave the process here.
	sleepForever()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "testworker:", err)
	os.Exit(1)
}

package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Two-process runs re-execute this binary (os.Executable) with roleEnv
// set; Child, called first in main (or TestMain), then plays that role
// instead of running the program. Parent and child talk over the child's
// stdin and stdout, one line per message:
//
//	parent → child: the childConfig as JSON (first line); then "S"
//	  (about to start: take the allocation counters); for a subscriber
//	  "E n" (n messages were published: report when they are in, or when
//	  nothing arrived for the quiet period), for a server "A" (report the
//	  allocations since "S"); EOF: stop and exit.
//	child → parent: "ready [address]" when set up, "S"; for a subscriber
//	  "W" (a warm-up message arrived), "P n" (n messages so far, every
//	  step messages) and "D {childReport}"; for a server "A mallocs bytes".
//	  A bridge child answers "B" with "B {bridgeDrops}".
//
// A child exits when its stdin closes (the parent closed it or died), when
// its own time bound (childConfig.Limit) passes, and on Linux when its
// parent dies (Pdeathsig); a parent kills a child that has not exited a
// few seconds after being told to.
const roleEnv = "COLUGO_BENCH_ROLE"

// The roles of a child process.
const (
	roleSub    = "sub"    // a pub/sub workload's subscriber
	roleServer = "server" // a request workload's server
	roleNATS   = "nats"   // a nats-server on 127.0.0.1
	// roleBridge (sys_bridge.go): a colugo site's bridge to NATS
)

// childConfig tells a child what to run.
type childConfig struct {
	Sys  System
	W    Workload
	Dir  string // colugo: the shared host-local registry directory
	URL  string // nats: the server's URL
	Addr string // zmq4 subscriber: the PUB socket's address
	// Base is the origin of the payloads' send stamps (Unix ns): both
	// processes read the same wall clock.
	Base int64
	Step int // subscriber: report progress every Step messages
	// Bridge: a bridge child's site and what it carries.
	Bridge *bridgeRole `json:",omitempty"`
	// Limit bounds the child's life.
	Limit time.Duration
}

// childReport is a subscriber's account of a run.
type childReport struct {
	Got            int64
	Last           int64 // when the latest message arrived, Unix ns
	P50, P99, P999 time.Duration
	Mallocs, Bytes uint64 // allocated between "S" and the report
	Drops          Drops
}

// Child runs this process as the other side of a two-process workload
// when the bench started it as one, and then exits; otherwise it returns
// at once. Programs that run two-process workloads (cmd/compare, the
// package's tests) call it first thing in main or TestMain.
func Child() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	if err := runChild(role, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench child %s (pid %d): %v\n", role, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// profileEnv, when set to a directory, has every child write a CPU
// profile of its life there (cpu-ROLE-PID.pprof): where a multi-process
// run's time goes, which cmd/compare's -cpuprofile (this process only)
// does not show.
const profileEnv = "COLUGO_BENCH_CHILD_CPUPROFILE"

func startProfile(dir, role string) (stop func(), err error) {
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%s-%d.pprof", role, os.Getpid())))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

func runChild(role string, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewScanner(stdin)
	if !in.Scan() {
		return errors.New("no configuration on stdin")
	}
	var cfg childConfig
	if err := json.Unmarshal(in.Bytes(), &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if cfg.Limit <= 0 {
		cfg.Limit = time.Minute
	}
	time.AfterFunc(cfg.Limit, func() {
		fmt.Fprintf(os.Stderr, "bench child %s (pid %d): over its %v bound, exiting\n", role, os.Getpid(), cfg.Limit)
		os.Exit(3)
	})
	if dir := os.Getenv(profileEnv); dir != "" {
		stop, err := startProfile(dir, role)
		if err != nil {
			return err
		}
		defer stop()
	}
	// The rest of stdin, line by line; closed at EOF.
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		for in.Scan() {
			lines <- in.Text()
		}
	}()
	out := &lineWriter{w: stdout}
	switch role {
	case roleNATS:
		var store string
		if cfg.W.JetStream {
			var err error
			if store, err = os.MkdirTemp("", "colugo-bench-js-*"); err != nil {
				return err
			}
			defer os.RemoveAll(store)
		}
		srv, err := natsServer(store)
		if err != nil {
			return err
		}
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		out.printf("ready %s", srv.ClientURL())
	case roleServer:
		closeFn, addr, err := serveHalf(cfg)
		if err != nil {
			return err
		}
		defer closeFn()
		out.printf("ready %s", addr)
		var m0, b0 uint64
		for line := range lines {
			switch line {
			case "S":
				m0, b0 = memSnap()
				out.printf("S")
			case "A":
				m1, b1 := memSnap()
				out.printf("A %d %d", m1-m0, b1-b0)
			}
		}
	case roleSub:
		return subChild(cfg, lines, out)
	case roleBridge:
		return bridgeChild(cfg, lines, out)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	for range lines { // until the parent closes stdin
	}
	return nil
}

// lineWriter writes whole lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

// subChild is the subscriber of a two-process pub/sub run (one stream).
func subChild(cfg childConfig, lines <-chan string, out *lineWriter) error {
	var (
		got, last atomic.Int64
		warm      atomic.Bool
		mu        sync.Mutex // lat: appended by the receiving goroutine, read at "E"
		lat       = make([]time.Duration, 0, 1<<16)
		step      = int64(max(cfg.Step, 1))
	)
	recv := func(_ int, p []byte) {
		if len(p) < 10 {
			return
		}
		if p[9]&flagWarm != 0 {
			if !warm.Swap(true) {
				out.printf("W")
			}
			return
		}
		now := time.Now().UnixNano()
		if t := stampOf(p); t != 0 {
			mu.Lock()
			if len(lat) < cap(lat) {
				lat = append(lat, time.Duration(now-cfg.Base-t))
			}
			mu.Unlock()
		}
		last.Store(now)
		if n := got.Add(1); n%step == 0 {
			out.printf("P %d", n)
		}
	}
	rig, err := newPubSubRig(cfg.Sys, cfg.W, recv, half{subs: true, dir: cfg.Dir, url: cfg.URL, addr: cfg.Addr})
	if err != nil {
		return err
	}
	defer rig.Close()
	out.printf("ready")
	var m0, b0 uint64
	for line := range lines {
		switch cmd, arg, _ := strings.Cut(line, " "); cmd {
		case "S":
			m0, b0 = memSnap()
			out.printf("S")
		case "E":
			want, err := strconv.ParseInt(arg, 10, 64)
			if err != nil {
				return fmt.Errorf("bad line %q", line)
			}
			n := waitFor(want, got.Load, cfg.W.Burst > 0)
			m1, b1 := memSnap()
			rep := childReport{Got: n, Last: last.Load(), Mallocs: m1 - m0, Bytes: b1 - b0, Drops: rig.Drops()}
			mu.Lock()
			sample := append([]time.Duration(nil), lat...)
			mu.Unlock()
			rep.P50, rep.P99, rep.P999 = percentiles(sample)
			b, err := json.Marshal(rep)
			if err != nil {
				return err
			}
			out.printf("D %s", b)
		}
	}
	return nil
}

// child is a running child process, seen from its parent.
type child struct {
	role     string
	cmd      *exec.Cmd
	in       io.WriteCloser
	lines    chan string   // its stdout, "P" lines excepted; closed at EOF
	progress atomic.Int64  // the latest "P n"
	notify   chan struct{} // a "P" line arrived (capacity 1)
	readDone chan struct{}
	once     sync.Once
}

// spawn starts this binary as a child in role with cfg, and waits for its
// "ready" line: it returns the rest of that line (an address, or "").
func spawn(role string, cfg childConfig) (*child, string, error) {
	if os.Getenv(roleEnv) != "" {
		// A child that did not dispatch to Child would run the program
		// again, and spawn again.
		return nil, "", errors.New("a bench child cannot start children (does main call bench.Child first?)")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "COLUGO_DISCOVERY=local")
	cmd.Stderr = os.Stderr
	setDeathSignal(cmd)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	c := &child{role: role, cmd: cmd, in: in, lines: make(chan string, 64),
		notify: make(chan struct{}, 1), readDone: make(chan struct{})}
	go c.read(outp)
	if _, err := fmt.Fprintf(in, "%s\n", b); err != nil {
		c.Close()
		return nil, "", err
	}
	line, err := c.expect("ready", setupTimeout)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	return c, strings.TrimSpace(strings.TrimPrefix(line, "ready")), nil
}

func (c *child) read(r io.Reader) {
	defer close(c.readDone)
	defer close(c.lines)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "P "); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil {
				c.progress.Store(v)
				select {
				case c.notify <- struct{}{}:
				default:
				}
			}
			continue
		}
		c.lines <- line
	}
}

// send writes one line to the child.
func (c *child) send(format string, args ...any) error {
	_, err := fmt.Fprintf(c.in, format+"\n", args...)
	return err
}

// expect waits up to d for a line starting with prefix, skipping others.
func (c *child) expect(prefix string, d time.Duration) (string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("%w: %s (pid %d), before %q", errChildExited, c.role, c.cmd.Process.Pid, prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line, nil
			}
		case <-t.C:
			return "", fmt.Errorf("child %s (pid %d): no %q within %v", c.role, c.cmd.Process.Pid, prefix, d)
		}
	}
}

var errChildExited = errors.New("child exited")

// childExitWait is how long a child has to exit once its stdin is closed
// (a variable for the tests).
var childExitWait = 5 * time.Second

// Close tells the child to exit (closes its stdin), kills it by its PID
// if it has not within childExitWait, and reaps it.
func (c *child) Close() {
	c.once.Do(func() {
		_ = c.in.Close()
		t := time.NewTimer(childExitWait)
		defer t.Stop()
		go func() {
			for range c.lines { // keep the reader moving until EOF
			}
		}()
		select {
		case <-c.readDone:
		case <-t.C:
			_ = c.cmd.Process.Kill()
			<-c.readDone
		}
		_ = c.cmd.Wait()
	})
}

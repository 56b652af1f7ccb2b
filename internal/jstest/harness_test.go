package jstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// bin holds the binaries TestMain built: colugo and the examples.
var bin string

// jsMissing says why the JavaScript side cannot run, "" when it can.
var jsMissing string

func TestMain(m *testing.M) {
	if os.Getenv("COLUGO_DISCOVERY") != "local" {
		// The children are nodes; their default discovery includes mDNS.
		fmt.Fprintln(os.Stderr, "jstest: refusing to run without COLUGO_DISCOVERY=local")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "colugo-jstest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	build := exec.Command("go", "build", "-o", dir+"/", "../../cmd/colugo",
		"../../examples/publisher", "../../examples/subscriber", "../../examples/server", "../../examples/protobuf")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "jstest: building: %v\n%s", err, out)
		os.Exit(1)
	}
	switch _, err := exec.LookPath("node"); {
	case err != nil:
		jsMissing = "no node in PATH"
	default:
		if _, err := os.Stat("node_modules/@foxglove/ws-protocol"); err != nil {
			jsMissing = "no node_modules (run npm ci in internal/jstest)"
		}
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// needJS skips the test when node, its packages or (browser) chromium are
// missing, or fails it when COLUGO_REQUIRE_JS=1.
func needJS(t *testing.T, browser bool) {
	t.Helper()
	why := jsMissing
	if why == "" && browser {
		if _, err := os.Stat(chromium()); err != nil {
			why = "no chromium at " + chromium() + " (apt-get install chromium)"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("COLUGO_REQUIRE_JS") == "1" {
		t.Fatalf("COLUGO_REQUIRE_JS=1 but %s", why)
	}
	t.Skip(why)
}

// chromium is the browser the page tests drive: $CHROMIUM, else Debian's.
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// network is one test's private colugo network: a registry directory that
// every child it starts shares, and no other.
type network struct {
	t   *testing.T
	dir string
}

func newNetwork(t *testing.T) *network {
	return &network{t: t, dir: t.TempDir()}
}

// env is a child's environment: host-local discovery in this network.
func (n *network) env(extra ...string) []string {
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+n.dir, "COLUGO_DISCOVERY=local")
	return append(env, extra...)
}

// proc is a child process, its output kept for the test log.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output is what the process wrote so far, stdout and stderr together.
func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs program (a binary TestMain built, or a path) with args in
// this network until the test ends: then it is interrupted, and killed
// if it has not exited within 5 s.
func (n *network) start(program string, args ...string) *proc {
	n.t.Helper()
	path := program
	if !strings.Contains(program, "/") {
		path = filepath.Join(bin, program)
	}
	p := &proc{name: program, cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.Env = n.env()
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		n.t.Fatalf("starting %s: %v", program, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	n.t.Cleanup(func() {
		p.stop()
		n.t.Logf("%s %s (exit: %v):\n%s", program, strings.Join(args, " "), p.err, p.Output())
	})
	return p
}

// stop interrupts the process and waits for it, killing it after 5 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// web starts `colugo web` on a free loopback port with args and returns
// its address once it serves.
func (n *network) web(args ...string) (addr string, p *proc) {
	n.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.t.Fatal(err)
	}
	addr = ln.Addr().String()
	_ = ln.Close()
	p = n.start("colugo", append([]string{"web", "--listen", addr}, args...)...)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Output(), "serving ") {
		select {
		case <-p.done:
			n.t.Fatalf("colugo web exited: %v\n%s", p.err, p.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("colugo web did not start within 20 s:\n%s", p.Output())
		}
	}
	return addr, p
}

// node runs a Node.js script of this directory with args, bounded by
// limit, and returns its stdout; the test fails if it exits non-zero.
// Its stderr goes to the test log.
func (n *network) node(limit time.Duration, script string, args ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(n.t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Env = n.env("CHROMIUM=" + chromium())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	n.t.Logf("node %s %s:\nstdout:\n%s\nstderr:\n%s", script, strings.Join(args, " "), out.String(), errb.String())
	if err != nil {
		n.t.Fatalf("node %s: %v (limit %v)", script, err, limit)
	}
	return out.String()
}

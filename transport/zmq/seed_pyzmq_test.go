package zmq

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
)

// This file runs the seed's frames against real libzmq peers (pyzmq,
// testdata/seed.py), on 127.0.0.1 only: no discovery, no multicast.

// pyProc is a running testdata/seed.py: its stdout lines and its stdin.
type pyProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr bytes.Buffer
	once   sync.Once
	err    error
}

func startPy(t *testing.T, args ...string) *pyProc {
	t.Helper()
	needPyzmq(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	p := &pyProc{lines: make(chan string, 16)}
	p.cmd = exec.CommandContext(ctx, python, append([]string{"testdata/seed.py"}, args...)...)
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = p.wait()
		cancel()
	})
	return p
}

// line returns python's next line, failing the test after testWait.
func (p *pyProc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("python exited: %v\n%s", p.wait(), p.stderr.String())
		}
		return l
	case <-time.After(testWait):
		t.Fatalf("no line from python within %v\n%s", testWait, p.stderr.String())
		return ""
	}
}

// port reads python's "port P" line and returns "127.0.0.1:P".
func (p *pyProc) port(t *testing.T) string {
	t.Helper()
	l := p.line(t)
	port, ok := strings.CutPrefix(l, "port ")
	if !ok {
		t.Fatalf("python: %q", l)
	}
	return "127.0.0.1:" + port
}

func (p *pyProc) say(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s+"\n"); err != nil {
		t.Fatal(err)
	}
}

// wait closes python's stdin (which ends its serving modes) and waits for
// it to exit.
func (p *pyProc) wait() error {
	p.once.Do(func() {
		_ = p.stdin.Close()
		for range p.lines { // drain, so that the scanner ends
		}
		p.err = p.cmd.Wait()
	})
	return p.err
}

// TestSeedPublisherPyzmq: a pyzmq SUB subscribed to "" (as the seed's
// Subscriber) receives every Go SeedPublisher frame, 1000 of 1000 at full
// rate, as one frame that decodes as UTF-8.
func TestSeedPublisherPyzmq(t *testing.T) {
	t.Parallel()
	const n = 1000
	tr, _ := listen(t, &nopHandler{})
	pub, err := tr.SeedPublisher()
	if err != nil {
		t.Fatal(err)
	}
	py := startPy(t, "sub", "127.0.0.1:"+strconv.Itoa(pub.Port()), strconv.Itoa(n))
	if l := py.line(t); l != "ready" {
		t.Fatalf("python: %q", l)
	}
	// The SUB subscribes asynchronously: publish until it has seen one.
	for warm := false; !warm; {
		if _, _, err := pub.Publish([]byte("warm")); err != nil {
			t.Fatal(err)
		}
		select {
		case l := <-py.lines:
			if l != "warm" {
				t.Fatalf("python: %q\n%s", l, py.stderr.String())
			}
			warm = true
		case <-time.After(time.Millisecond):
		}
	}
	if got := pub.Subscribers(); got != 1 {
		t.Errorf("Subscribers() = %d, want 1", got)
	}
	start := time.Now()
	for i := range n {
		sent, dropped, err := pub.Publish(fmt.Appendf(nil, "m %d", i))
		if err != nil || sent != 1 || dropped != 0 {
			t.Fatalf("Publish %d: sent %d, dropped %d, %v", i, sent, dropped, err)
		}
	}
	pubTime := time.Since(start)
	l := py.line(t)
	if !strings.HasPrefix(l, fmt.Sprintf("sub ok %d/%d", n, n)) {
		t.Fatalf("python: %q\n%s", l, py.stderr.String())
	}
	if err := py.wait(); err != nil {
		t.Fatalf("python: %v\n%s", err, py.stderr.String())
	}
	t.Logf("Go published %d in %v (%.0f msg/s); python: %s", n, pubTime, n/pubTime.Seconds(), l)
	if st := tr.Stats(); st.SeedSendDropped != 0 || st.SeedNotUTF8 != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// seedFeed runs a pyzmq PUB of the given kind and a Go SeedSubscribe to it;
// it returns the transport and the payloads delivered after python's
// warm-up, in order, once python has sent n and want(payloads) holds.
func seedFeed(t *testing.T, kind string, n int, want func([][]byte) bool) (*node, [][]byte) {
	t.Helper()
	tr, _ := listen(t, &nopHandler{})
	py := startPy(t, "pub", kind, strconv.Itoa(n))
	addr := py.port(t)
	var mu sync.Mutex
	var got [][]byte
	warm := make(chan struct{})
	var warmOnce sync.Once
	stop, err := tr.SeedSubscribe(addr, func(p []byte) {
		if string(p) == "warm" {
			warmOnce.Do(func() { close(warm) })
			return
		}
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	select {
	case <-warm:
	case <-time.After(testWait):
		t.Fatalf("no warm-up frame from python in %v\n%s", testWait, py.stderr.String())
	}
	start := time.Now()
	py.say(t, "go")
	if l := py.line(t); l != fmt.Sprintf("sent %d", n) {
		t.Fatalf("python: %q", l)
	}
	if !testwait.For(testWait, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return want(got)
	}) {
		mu.Lock()
		k, _ := numbered(got, n)
		seen := map[string]bool{}
		for _, p := range got {
			seen[string(p)] = true
		}
		var missing []int
		for i := range n {
			if !seen[fmt.Sprintf("m %d", i)] {
				missing = append(missing, i)
			}
		}
		t.Fatalf("%d payloads after %v, %d numbered in order, missing %v; stats %+v", len(got), testWait, k, missing, tr.Stats())
	}
	el := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%s: %d payloads in %v (%.0f/s)", kind, len(got), el, float64(len(got))/el.Seconds())
	return tr, append([][]byte(nil), got...)
}

// numbered reports whether got holds "m 0" … "m n-1" in order, and
// counts them.
func numbered(got [][]byte, n int) (int, bool) {
	k := 0
	for _, p := range got {
		if bytes.HasPrefix(p, []byte("m ")) {
			if string(p) != fmt.Sprintf("m %d", k) {
				return k, false
			}
			k++
		}
	}
	return k, k == n
}

// TestSeedSubscribePyzmq: a Go SeedSubscribe receives every frame of a
// pyzmq PUB (as the seed's Publisher sends them), 1000 of 1000 in order;
// 3-frame messages are dropped and counted; non-UTF-8 frames are
// delivered as they are (the node decides what to do with them).
func TestSeedSubscribePyzmq(t *testing.T) {
	t.Parallel()
	const n = 1000
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		tr, got := seedFeed(t, "plain", n, func(got [][]byte) bool { return len(got) >= n })
		if k, ok := numbered(got, n); !ok || len(got) != n {
			t.Fatalf("%d payloads, %d in order", len(got), k)
		}
		if st := tr.Stats(); st.SeedRecvDropped != 0 {
			t.Errorf("SeedRecvDropped = %d", st.SeedRecvDropped)
		}
	})
	t.Run("3frames", func(t *testing.T) {
		t.Parallel()
		var tr *node
		tr, got := seedFeed(t, "3frames", n, func(got [][]byte) bool { return len(got) >= n })
		testwait.Until(t, "1000 drops", func() bool { return tr.Stats().SeedRecvDropped >= n })
		if k, ok := numbered(got, n); !ok || len(got) != n {
			t.Fatalf("%d payloads, %d in order", len(got), k)
		}
		if st := tr.Stats(); st.SeedRecvDropped != n || st.PeersLost != 0 {
			t.Errorf("SeedRecvDropped %d, PeersLost %d; want %d, 0: the connection survives", st.SeedRecvDropped, st.PeersLost, n)
		}
	})
	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		_, got := seedFeed(t, "binary", n, func(got [][]byte) bool { return len(got) >= 2*n })
		bin := 0
		for _, p := range got {
			if string(p) == "\xff\xfe" {
				bin++
			}
		}
		if k, ok := numbered(got, n); !ok || bin != n {
			t.Fatalf("%d in order, %d binary, want %d each", k, bin, n)
		}
	})
}

// seedEcho is the SeedServe handler of the pyzmq tests: "fail" fails,
// "slow" overruns (until its context ends), "panic" panics, "bin" replies
// with non-UTF-8, anything else is echoed.
func seedEcho(calls *atomic.Int64) transport.SeedHandler {
	return func(ctx context.Context, p []byte) ([]byte, error) {
		calls.Add(1)
		switch string(p) {
		case "fail":
			return nil, errors.New("handler failed")
		case "slow":
			<-ctx.Done()
			return []byte("too late"), nil
		case "panic":
			panic("handler panicked")
		case "bin":
			return []byte{0xff}, nil
		}
		return append([]byte("echo:"), p...), nil
	}
}

// TestSeedServePyzmq: a pyzmq REQ set up as the seed's RequestClient
// (REQ_CORRELATE, REQ_RELAXED) gets 1000 of 1000 answers at full rate,
// and an answer within its 2 s timer whatever the handler does: an error,
// an overrun (answered at the default 1.5 s budget), a panic, a non-UTF-8
// reply; two pipelined requests are both answered.
func TestSeedServePyzmq(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	tr, _ := listen(t, &nopHandler{})
	srv, err := tr.SeedServe(seedEcho(&calls), transport.SeedServeOptions{ErrorReply: []byte("ERR")})
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(srv.Port())

	t.Run("rate", func(t *testing.T) {
		const n = 1000
		py := startPy(t, "req", addr, strconv.Itoa(n))
		l := py.line(t)
		if !strings.HasPrefix(l, fmt.Sprintf("req ok %d/%d", n, n)) {
			t.Fatalf("python: %q\n%s", l, py.stderr.String())
		}
		t.Log("python:", l)
	})

	t.Run("cases", func(t *testing.T) {
		before := tr.Stats()
		calls.Store(0)
		py := startPy(t, "req-cases", addr)
		for _, c := range []string{"fail", "slow", "panic", "bin", "ok"} {
			l := py.line(t)
			el, ok := strings.CutPrefix(l, "case "+c+" ")
			if !ok {
				t.Fatalf("python: %q\n%s", l, py.stderr.String())
			}
			secs, _ := strconv.ParseFloat(el, 64)
			t.Logf("%s answered after %.3f s", c, secs)
			if c == "slow" && (secs < 1.4 || secs > 1.9) {
				t.Errorf("the overrun was answered after %.3f s, want the 1.5 s budget", secs)
			}
		}
		if l := py.line(t); l != "case pipelined ok" {
			t.Fatalf("python: %q", l)
		}
		if err := py.wait(); err != nil {
			t.Fatalf("python: %v\n%s", err, py.stderr.String())
		}
		st := tr.Stats()
		if d := st.SeedErrorReplies - before.SeedErrorReplies; d != 4 {
			t.Errorf("SeedErrorReplies +%d, want 4 (fail, slow, panic, bin)", d)
		}
		if d := st.SeedNotUTF8 - before.SeedNotUTF8; d != 1 {
			t.Errorf("SeedNotUTF8 +%d, want 1", d)
		}
		if got := calls.Load(); got != 7 {
			t.Errorf("%d handler calls, want 7 (5 cases, 2 pipelined)", got)
		}
	})
}

// TestSeedRequestPyzmq: Go SeedRequest to pyzmq reply servers: 1000 of
// 1000 pipelined requests to a REP; a REP that never answers delays only
// its own callers (their deadlines are kept) while another REP answers
// all; a server that answers twice, or late, has the extra reply dropped
// and counted, and never answers the wrong request.
func TestSeedRequestPyzmq(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})

	t.Run("pipelined", func(t *testing.T) {
		const n, workers = 1000, 16
		py := startPy(t, "rep", "echo")
		addr := py.port(t)
		var ok atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					ctx, cancel := context.WithTimeout(t.Context(), testWait)
					body := fmt.Sprintf("q %d", i)
					r, err := tr.SeedRequest(ctx, addr, []byte(body))
					cancel()
					if err != nil || string(r) != "echo:"+body {
						t.Errorf("request %d: %q, %v", i, r, err)
						return
					}
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		el := time.Since(start)
		if ok.Load() != n {
			t.Fatalf("%d of %d answered", ok.Load(), n)
		}
		t.Logf("%d requests, %d in flight, in %v: %.0f req/s", n, workers, el, n/el.Seconds())
	})

	t.Run("silent", func(t *testing.T) {
		echo := startPy(t, "rep", "echo")
		silent := startPy(t, "rep", "silent")
		echoAddr, silentAddr := echo.port(t), silent.port(t)
		const deadline = 300 * time.Millisecond
		var wg sync.WaitGroup
		var late atomic.Int64
		for i := range 10 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), deadline)
				defer cancel()
				start := time.Now()
				_, err := tr.SeedRequest(ctx, silentAddr, fmt.Appendf(nil, "s %d", i))
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("silent server: %v", err)
				}
				if el := time.Since(start); el > deadline+200*time.Millisecond {
					late.Add(1)
					t.Errorf("the deadline was kept after %v", el)
				}
			})
		}
		for i := range 200 {
			ctx, cancel := context.WithTimeout(t.Context(), testWait)
			r, err := tr.SeedRequest(ctx, echoAddr, fmt.Appendf(nil, "e %d", i))
			cancel()
			if err != nil || string(r) != fmt.Sprintf("echo:e %d", i) {
				t.Fatalf("echo server, request %d: %q, %v", i, r, err)
			}
		}
		wg.Wait()
		// SeedDisconnect fails what waits at the silent server.
		errc := make(chan error, 1)
		go func() {
			_, err := tr.SeedRequest(t.Context(), silentAddr, []byte("x"))
			errc <- err
		}()
		testwait.Until(t, "the request in flight", func() bool {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			d := tr.seedDealers[silentAddr]
			if d == nil {
				return false
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			return len(d.pending) == 1
		})
		tr.SeedDisconnect(silentAddr)
		select {
		case err := <-errc:
			if !errors.Is(err, transport.ErrPeerLost) {
				t.Errorf("after SeedDisconnect: %v, want ErrPeerLost", err)
			}
		case <-time.After(testWait):
			t.Fatal("SeedDisconnect left the request waiting")
		}
	})

	t.Run("twice", func(t *testing.T) {
		py := startPy(t, "rep", "twice")
		addr := py.port(t)
		before := tr.Stats().SeedRecvDropped
		for i := range 10 {
			ctx, cancel := context.WithTimeout(t.Context(), testWait)
			r, err := tr.SeedRequest(ctx, addr, fmt.Appendf(nil, "t %d", i))
			cancel()
			if err != nil || string(r) != fmt.Sprintf("echo:t %d", i) {
				t.Fatalf("request %d: %q, %v", i, r, err)
			}
		}
		testwait.Until(t, "10 duplicates dropped", func() bool { return tr.Stats().SeedRecvDropped-before >= 10 })
		if d := tr.Stats().SeedRecvDropped - before; d != 10 {
			t.Errorf("%d dropped, want 10", d)
		}
	})

	t.Run("late", func(t *testing.T) {
		py := startPy(t, "rep", "late")
		addr := py.port(t)
		before := tr.Stats().SeedRecvDropped
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, err := tr.SeedRequest(ctx, addr, []byte("first"))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first: %v", err)
		}
		r, err := tr.SeedRequest(t.Context(), addr, []byte("second"))
		if err != nil || string(r) != "late:second" {
			t.Fatalf("second: %q, %v (the first's late reply must not answer it)", r, err)
		}
		if d := tr.Stats().SeedRecvDropped - before; d != 1 {
			t.Errorf("%d dropped, want 1 (the late reply)", d)
		}
	})
}

// TestSeedIdlePyzmq: seed connections idle for longer than the peer
// timeout stay up, both ways, because libzmq answers the transport's
// PINGs: a seed REQ keeps its one connection (a reconnect would lose what
// it has in flight) and the connection to a seed REP is not lost.
func TestSeedIdlePyzmq(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{}, WithHeartbeatInterval(50*time.Millisecond), WithPeerTimeout(300*time.Millisecond))
	srv, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := tr.accepted.Load()
	req := startPy(t, "req-idle", seedAddr(srv.Port()))
	rep := startPy(t, "rep", "echo")
	addr := rep.port(t)
	for _, body := range []string{"before", "after"} {
		r, err := tr.SeedRequest(t.Context(), addr, []byte(body))
		if err != nil || string(r) != "echo:"+body {
			t.Fatalf("%s: %q, %v", body, r, err)
		}
		if body == "before" {
			<-time.After(time.Second) // idle: what is tested, not a synchronisation
		}
	}
	if l := req.line(t); l != "idle ok" {
		t.Fatalf("python: %q\n%s", l, req.stderr.String())
	}
	if n := tr.accepted.Load() - before; n != 1 {
		t.Errorf("the seed REQ connected %d times, want 1", n)
	}
	if lost := tr.Stats().PeersLost; lost != 0 {
		t.Errorf("PeersLost = %d: the seed REP's connection was lost while idle", lost)
	}
}

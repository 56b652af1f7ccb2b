package zmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport"
)

// Fuzz modes: which side of the handshake the transport plays, and in
// which role. The fuzzed bytes are what the peer sends.
const (
	fuzzAcceptPub = iota
	fuzzAcceptRouter
	fuzzDialDealer
	fuzzDialSub
	fuzzModes
)

// FuzzHandshake feeds arbitrary peer bytes (greeting, READY, and whatever
// follows) to the real connection code: serveInbound for an accepted
// connection, handshakeOut and the reader for a dialled one, over a pipe.
// A panic fails it (the process would die); so does a panic of zmq4 that
// openZMTP contained, since the guard should have refused its input. Plain
// `go test` runs the corpus in testdata/fuzz/FuzzHandshake.
func FuzzHandshake(f *testing.F) {
	catch := &panicCatcher{}
	tr, err := New(WithUnixSockets(false), WithLogger(slog.New(catch)))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := tr.Listen(&nopHandler{}); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = tr.Close() })
	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		runHandshake(tr, mode%fuzzModes, data)
		if err := catch.take(); err != nil {
			t.Fatalf("zmq4 panicked on input the guard let through: %v", err)
		}
	})
}

// FuzzReady is FuzzHandshake with the framing done for the fuzzer: the
// peer sends a valid greeting, then a READY command whose metadata is meta,
// then rest. It explores property lists, names and Socket-Types far faster
// than mutating whole byte streams, where every length must match.
func FuzzReady(f *testing.F) {
	catch := &panicCatcher{}
	tr, err := New(WithUnixSockets(false), WithLogger(slog.New(catch)))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := tr.Listen(&nopHandler{}); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = tr.Close() })
	f.Fuzz(func(t *testing.T, mode byte, meta, rest []byte) {
		if len(meta) > 1<<12 {
			return // the guard refuses large frames before looking at them
		}
		runHandshake(tr, mode%fuzzModes, readyInput(meta, rest))
		if err := catch.take(); err != nil {
			t.Fatalf("zmq4 panicked on input the guard let through: %v", err)
		}
	})
}

// readyInput is a greeting, a READY with metadata meta, and rest.
func readyInput(meta, rest []byte) []byte {
	return append(append(zmtptest.Greeting(), readyRaw(meta)...), rest...)
}

// runHandshake runs one connection of the given mode against a peer that
// sends data and hangs up, and returns once the connection is torn down:
// whether its handshake succeeded.
func runHandshake(tr *Transport, mode byte, data []byte) bool {
	a := newScriptConn(data)
	switch mode {
	case fuzzAcceptPub, fuzzAcceptRouter:
		r := rolePubIn
		if mode == fuzzAcceptRouter {
			r = roleRouterIn
		}
		accepted := tr.accepted.Load()
		tr.mu.Lock()
		in := tr.pendLocked(a, "pipe", int(mode))
		tr.mu.Unlock()
		tr.serveInbound(in, r)               // returns when the connection has ended
		return tr.accepted.Load() > accepted // serial: FuzzHandshake runs one input at a time
	default:
		r := roleDealer
		if mode == fuzzDialSub {
			r = roleSub
		}
		ctx, cancel := context.WithTimeout(context.Background(), tr.cfg.handshakeTimeout)
		defer cancel()
		c, err := tr.handshakeOut(ctx, a, "pipe", r)
		if err != nil {
			return false
		}
		if r == roleDealer {
			c.dl = &dealer{t: tr, addr: "pipe", ready: make(chan struct{}), pending: make(map[uint64]*call)}
		}
		tr.mu.Lock()
		tr.conns[c] = struct{}{}
		tr.wg.Go(c.writeLoop)
		tr.mu.Unlock()
		c.teardown(c.readLoop())
		return true
	}
}

// panicCatcher is a slog.Handler that keeps the first logged error
// wrapping errPanic.
type panicCatcher struct {
	mu  sync.Mutex
	err error
}

func (*panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicCatcher) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h *panicCatcher) WithGroup(string) slog.Handler          { return h }
func (h *panicCatcher) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && errors.Is(err, errPanic) {
			h.mu.Lock()
			if h.err == nil {
				h.err = err
			}
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *panicCatcher) take() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.err
	h.err = nil
	return err
}

// fuzzSeeds are the seed corpus of FuzzHandshake, kept in
// testdata/fuzz/FuzzHandshake by TestFuzzHandshakeSeeds.
func fuzzSeeds() map[string]struct {
	mode byte
	data []byte
} {
	type seed = struct {
		mode byte
		data []byte
	}
	g := zmtptest.Greeting()
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	msg := func(frames [][]byte) []byte {
		var out []byte
		for i, f := range frames {
			var fl byte
			if i < len(frames)-1 {
				fl = flagMore
			}
			out = append(out, zmtptest.Frame(fl, f)...)
		}
		return out
	}
	ping := zmtptest.Frame(flagCommand, append([]byte{4}, "PING\x00\x0ahb"...))
	reply := request(1, "svc", "r")
	reply[1][1] = byte(transport.KindReply)
	publish := request(0, "news", "p")
	publish[1][1] = byte(transport.KindPublish)
	peer := [fuzzModes]string{"SUB", "DEALER", "ROUTER", "PUB"}
	traffic := [fuzzModes][]byte{
		cat(msg([][]byte{[]byte("\x01news\x00")}), zmtptest.Frame(flagCommand, append([]byte{9}, "SUBSCRIBE"+"a"...)), ping),
		cat(msg(request(7, "svc", "x")), ping, msg(request(8, "svc", "y"))),
		cat(msg(reply), ping),
		cat(msg(publish), ping, msg(publish)),
	}
	seeds := map[string]seed{}
	for mode := range byte(fuzzModes) {
		name := [fuzzModes]string{"accept-pub", "accept-router", "dial-dealer", "dial-sub"}[mode]
		seeds[name+"-valid"] = seed{mode, cat(g, zmtptest.Ready(peer[mode]), traffic[mode])}
		seeds[name+"-greeting-only"] = seed{mode, g}
		seeds[name+"-short-greeting"] = seed{mode, g[:10]}
		seeds[name+"-incompatible"] = seed{mode, cat(g, zmtptest.Ready("PAIR"))}
		seeds[name+"-huge-frame"] = seed{mode, cat(g, []byte{flagCommand | flagLong, 0x40, 0, 0, 0, 0, 0, 0, 0})}
		seeds[name+"-error-cmd"] = seed{mode, cat(g, zmtptest.Frame(flagCommand, append([]byte{5}, "ERROR\x03bad"...)))}
		for _, tc := range badReadies {
			seeds[name+"-"+tc.name] = seed{mode, cat(g, tc.ready)}
		}
	}
	v2 := append([]byte(nil), g...)
	v2[10] = 2
	plain := append([]byte(nil), g...)
	copy(plain[12:32], "PLAIN")
	srv := append([]byte(nil), g...)
	srv[32] = 7
	seeds["greeting-v2"] = seed{fuzzAcceptRouter, v2}
	seeds["greeting-plain"] = seed{fuzzAcceptRouter, cat(plain, zmtptest.Ready("DEALER"))}
	seeds["greeting-bad-server-flag"] = seed{fuzzDialDealer, cat(srv, zmtptest.Ready("ROUTER"))}
	seeds["http"] = seed{fuzzAcceptRouter, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
	return seeds
}

// readySeeds are the seed corpus of FuzzReady: the metadata of every
// READY in fuzzSeeds, on every side, and what follows it there.
func readySeeds() map[string][3][]byte {
	g := len(zmtptest.Greeting())
	seeds := map[string][3][]byte{}
	for name, s := range fuzzSeeds() {
		if len(s.data) < g+2 || s.data[g] != flagCommand || int(s.data[g+1]) > len(s.data)-g-2 {
			continue // no short READY frame after a greeting
		}
		body := s.data[g+2 : g+2+int(s.data[g+1])]
		if len(body) < 6 || string(body[:6]) != "\x05READY" {
			continue
		}
		seeds[name] = [3][]byte{{s.mode}, body[6:], s.data[g+2+len(body):]}
	}
	return seeds
}

// TestFuzzHandshakeSeeds checks that testdata holds the seed corpora of
// FuzzHandshake and FuzzReady; COLUGO_UPDATE_FUZZ_SEEDS=1 writes them.
func TestFuzzHandshakeSeeds(t *testing.T) {
	t.Parallel()
	files := map[string]string{}
	for name, s := range fuzzSeeds() {
		files[filepath.Join("FuzzHandshake", "seed-"+name)] = fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", s.mode, s.data)
	}
	for name, s := range readySeeds() {
		files[filepath.Join("FuzzReady", "seed-"+name)] = fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n[]byte(%q)\n", s[0][0], s[1], s[2])
	}
	update := os.Getenv("COLUGO_UPDATE_FUZZ_SEEDS") == "1"
	for name, want := range files {
		path := filepath.Join("testdata", "fuzz", name)
		if update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s missing or stale (COLUGO_UPDATE_FUZZ_SEEDS=1 rewrites it): %v", path, err)
		}
	}
}

// TestFuzzHandshakeSeedsBehave: the seeds do what their names say, so the
// corpus covers both successful and refused handshakes on every side.
func TestFuzzHandshakeSeedsBehave(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{}, WithUnixSockets(false))
	for name, s := range fuzzSeeds() {
		want := strings.HasSuffix(name, "-valid")
		if got := runHandshake(tr.Transport, s.mode, s.data); got != want {
			t.Errorf("%s: handshake succeeded %v, want %v", name, got, want)
		}
	}
	if n := tr.accepted.Load(); n != 2 {
		t.Errorf("%d accepted, want 2", n)
	}
}

// scriptConn is a net.Conn whose peer sent data and then shut its side
// down: reads return data, then io.EOF; writes are discarded, as a peer
// that still reads would take them. Deadlines are accepted and ignored:
// nothing blocks. Read is for one goroutine; the rest is safe for any.
type scriptConn struct {
	r      *bytes.Reader
	closed atomic.Bool
}

func newScriptConn(data []byte) *scriptConn { return &scriptConn{r: bytes.NewReader(data)} }

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *scriptConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *scriptConn) Close() error                   { c.closed.Store(true); return nil }
func (*scriptConn) LocalAddr() net.Addr              { return scriptAddr{} }
func (*scriptConn) RemoteAddr() net.Addr             { return scriptAddr{} }
func (*scriptConn) SetDeadline(time.Time) error      { return nil }
func (*scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (*scriptConn) SetWriteDeadline(time.Time) error { return nil }

type scriptAddr struct{}

func (scriptAddr) Network() string { return "script" }
func (scriptAddr) String() string  { return "script" }

package zmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport"
)

// This file tests the seed's frames against hand-driven ZMTP peers
// (internal/zmtptest) and Go ↔ Go, on 127.0.0.1 only.

func seedAddr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// seedEchoHandler echoes, prefixed with "echo:".
func seedEchoHandler(_ context.Context, p []byte) ([]byte, error) {
	return append([]byte("echo:"), p...), nil
}

func msgEqual(got [][]byte, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if string(got[i]) != want[i] {
			return false
		}
	}
	return true
}

// TestSeedServeEnvelopes: requests are split at the first empty frame and
// answered with their envelope; a request without one (or with an
// envelope over 1 KiB) is dropped and counted, one whose body is not one
// frame gets the error reply; the connection stays up throughout.
func TestSeedServeEnvelopes(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})
	srv, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{ErrorReply: []byte("ERR")})
	if err != nil {
		t.Fatal(err)
	}
	p := zmtptest.Dial(t, seedAddr(srv.Port()), "DEALER")
	big := bytes.Repeat([]byte("e"), seedMaxEnvelope+1)
	p.Write(t,
		zmtptest.Msg([]byte("abcd"), []byte("no delimiter")),
		zmtptest.Msg(big, nil, []byte("envelope too big")),
		zmtptest.Msg([]byte("id01"), nil, []byte("a"), []byte("b")),
		zmtptest.Msg([]byte("id02"), nil, []byte("hello")),
		zmtptest.Msg(nil, []byte("plain REQ")),
		zmtptest.Msg([]byte("x"), []byte("y"), nil, []byte("two ids")),
	)
	// Handlers run concurrently: replies come in any order.
	want := map[string]bool{
		fmt.Sprintf("%q", []string{"id01", "", "ERR"}):            true,
		fmt.Sprintf("%q", []string{"id02", "", "echo:hello"}):     true,
		fmt.Sprintf("%q", []string{"", "echo:plain REQ"}):         true,
		fmt.Sprintf("%q", []string{"x", "y", "", "echo:two ids"}): true,
	}
	for range len(want) {
		got := p.Msg(t)
		s := make([]string, len(got))
		for i, f := range got {
			s[i] = string(f)
		}
		if k := fmt.Sprintf("%q", s); !want[k] {
			t.Fatalf("reply %s, want one of %v", k, want)
		} else {
			delete(want, k)
		}
	}
	st := tr.Stats()
	if st.SeedRecvDropped != 3 || st.SeedErrorReplies != 1 || st.PeersLost != 0 {
		t.Errorf("SeedRecvDropped %d (want 3), SeedErrorReplies %d (want 1), PeersLost %d", st.SeedRecvDropped, st.SeedErrorReplies, st.PeersLost)
	}
}

// TestSeedServeInFlightBounds: past MaxInFlightPerConn on a connection,
// or MaxInFlight on the server, a request is answered at once with the
// error reply and counted; the others are answered when their handler
// returns.
func TestSeedServeInFlightBounds(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var running atomic.Int64
	h := func(ctx context.Context, p []byte) ([]byte, error) {
		running.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return p, nil
	}
	tr, _ := listen(t, &nopHandler{})
	srv, err := tr.SeedServe(h, transport.SeedServeOptions{ErrorReply: []byte("ERR"), Budget: testWait, MaxInFlight: 6, MaxInFlightPerConn: 4})
	if err != nil {
		t.Fatal(err)
	}
	a := zmtptest.Dial(t, seedAddr(srv.Port()), "DEALER")
	b := zmtptest.Dial(t, seedAddr(srv.Port()), "DEALER")
	for i := range 10 {
		a.Write(t, zmtptest.Msg(fmt.Appendf(nil, "a%d", i), nil, []byte("x")))
	}
	for i := 4; i < 10; i++ { // the first 4 run
		if got := a.Msg(t); !msgEqual(got, fmt.Sprintf("a%d", i), "", "ERR") {
			t.Fatalf("a: %q", got)
		}
	}
	testwait.Until(t, "4 handlers", func() bool { return running.Load() == 4 })
	for i := range 4 {
		b.Write(t, zmtptest.Msg(fmt.Appendf(nil, "b%d", i), nil, []byte("y")))
	}
	for i := 2; i < 4; i++ { // 2 more run: 6 in all
		if got := b.Msg(t); !msgEqual(got, fmt.Sprintf("b%d", i), "", "ERR") {
			t.Fatalf("b: %q", got)
		}
	}
	testwait.Until(t, "6 handlers", func() bool { return running.Load() == 6 })
	if st := tr.Stats(); st.SeedOverload != 8 || st.SeedErrorReplies != 8 {
		t.Errorf("SeedOverload %d, SeedErrorReplies %d; want 8, 8", st.SeedOverload, st.SeedErrorReplies)
	}
	close(release)
	seen := map[string]bool{}
	for range 4 {
		seen[string(a.Msg(t)[0])] = true
	}
	for range 2 {
		seen[string(b.Msg(t)[0])] = true
	}
	for _, id := range []string{"a0", "a1", "a2", "a3", "b0", "b1"} {
		if !seen[id] {
			t.Errorf("no answer to %s: %v", id, seen)
		}
	}
	// With the handlers done, there is room again.
	a.Write(t, zmtptest.Msg([]byte("again"), nil, []byte("z")))
	if got := a.Msg(t); !msgEqual(got, "again", "", "z") {
		t.Errorf("after the flood: %q", got)
	}
}

// TestSeedServeCloseAnswers: SeedServer.Close answers the request in
// flight with the error reply before it closes the connection, at once
// rather than at the budget.
func TestSeedServeCloseAnswers(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	h := func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	tr, _ := listen(t, &nopHandler{})
	srv, err := tr.SeedServe(h, transport.SeedServeOptions{ErrorReply: []byte("ERR"), Budget: testWait})
	if err != nil {
		t.Fatal(err)
	}
	p := zmtptest.Dial(t, seedAddr(srv.Port()), "REQ")
	p.Write(t, zmtptest.Msg([]byte("id"), nil, []byte("q")))
	<-started
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close took %v", el)
	}
	if got := p.Msg(t); !msgEqual(got, "id", "", "ERR") {
		t.Fatalf("reply %q", got)
	}
	p.WaitClosed(t)
	if _, err := net.Dial("tcp", seedAddr(srv.Port())); err == nil {
		t.Error("still listening after Close")
	}
}

// TestSeedServeFlood: 1000 connections at once to a seed server cost a
// bounded number of goroutines (the accepted-connection limits evict the
// idle ones), and a seed client connecting after them is answered.
func TestSeedServeFlood(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})
	srv, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := seedAddr(srv.Port())
	before := runtime.NumGoroutine()
	const n = 1000
	hello := append(zmtptest.Greeting(), zmtptest.Ready("REQ")...)
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 50 {
		wg.Go(func() {
			for i := w; i < n; i += 50 {
				var d net.Dialer
				c, err := d.DialContext(t.Context(), "tcp", addr)
				if err != nil {
					t.Errorf("dial %d: %v", i, err)
					return
				}
				_, _ = c.Write(hello)
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	testwait.Until(t, "the flood's handshakes", func() bool {
		st := tr.Stats()
		return tr.accepted.Load() >= n || tr.accepted.Load()+st.ConnsRefused >= n
	})
	peak := runtime.NumGoroutine() - before
	p := zmtptest.Dial(t, addr, "REQ")
	t0 := time.Now()
	p.Write(t, zmtptest.Msg([]byte("id"), nil, []byte("after the flood")))
	if got := p.Msg(t); !msgEqual(got, "id", "", "echo:after the flood") {
		t.Fatalf("reply %q", got)
	}
	rtt := time.Since(t0)
	st := tr.Stats()
	t.Logf("%d connections in %v: %d handshakes, %d refused or evicted, +%d goroutines; then a request answered in %v",
		n, time.Since(start), tr.accepted.Load(), st.ConnsRefused, peak, rtt)
	tr.mu.Lock()
	inConns := tr.inConns
	tr.mu.Unlock()
	if inConns > DefaultMaxConnsPerListener+1 {
		t.Errorf("%d accepted connections held, limit %d per listener", inConns, DefaultMaxConnsPerListener)
	}
	if limit := 2*(DefaultMaxConnsPerListener+DefaultMaxHandshakes) + 50; peak > limit {
		t.Errorf("+%d goroutines for the flood, want at most %d", peak, limit)
	}
	if rtt > DefaultSeedBudget {
		t.Errorf("the request after the flood took %v, over the budget", rtt)
	}
}

// TestSeedPublisherRefusals: Publish refuses non-UTF-8 (counted); the
// seed listeners check socket types (a DEALER at a seed publisher, a SUB
// at a seed server are refused); a seed publisher ignores subscriptions.
func TestSeedPublisherRefusals(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})
	pub, err := tr.SeedPublisher()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pub.Publish([]byte{'o', 'k', 0xff}); !errors.Is(err, transport.ErrNotUTF8) {
		t.Errorf("Publish of non-UTF-8: %v", err)
	}
	if st := tr.Stats(); st.SeedNotUTF8 != 1 {
		t.Errorf("SeedNotUTF8 = %d", st.SeedNotUTF8)
	}
	srv, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		port int
		st   string
	}{{pub.Port(), "DEALER"}, {pub.Port(), "REQ"}, {srv.Port(), "SUB"}, {srv.Port(), "REP"}} {
		refused := tr.Stats().ConnsRefused
		p := zmtptest.Dial(t, seedAddr(c.port), c.st)
		p.WaitClosed(t)
		testwait.Until(t, "the refusal counted", func() bool { return tr.Stats().ConnsRefused > refused })
	}
	// A SUB with a prefix that matches nothing still gets everything: a
	// seed socket has one topic and the seed subscribes to "".
	p := zmtptest.Dial(t, seedAddr(pub.Port()), "SUB")
	p.Write(t, zmtptest.Msg([]byte("\x01nothing")))
	testwait.Until(t, "the subscriber", func() bool { return pub.Subscribers() == 1 })
	if sent, _, err := pub.Publish([]byte("héllo")); err != nil || sent != 1 {
		t.Fatalf("Publish: %d, %v", sent, err)
	}
	if got := p.Msg(t); !msgEqual(got, "héllo") {
		t.Errorf("got %q", got)
	}
	if _, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{ErrorReply: []byte{0xc3}}); !errors.Is(err, transport.ErrNotUTF8) {
		t.Errorf("SeedServe with a non-UTF-8 error reply: %v", err)
	}
}

// TestSeedSlowSubscriber: a seed subscriber that stops reading loses its
// own messages (counted) once its queue is full; Publish never waits for
// it, and a subscriber that reads gets all of them.
func TestSeedSlowSubscriber(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{}, WithSendQueueBytes(256<<10), WithPeerTimeout(time.Minute))
	pub, err := tr.SeedPublisher()
	if err != nil {
		t.Fatal(err)
	}
	stalled := zmtptest.Dial(t, seedAddr(pub.Port()), "SUB")
	stalled.Write(t, zmtptest.Msg([]byte("\x01")))
	got := make(chan []byte, 1)
	stop, err := tr.SeedSubscribe(seedAddr(pub.Port()), func(p []byte) { got <- p })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	testwait.Until(t, "two subscribers", func() bool { return pub.Subscribers() == 2 })
	const n = 1000
	payload := bytes.Repeat([]byte("x"), 16<<10)
	var dropped, slow int
	var slowest time.Duration
	for i := range n {
		copy(payload, strconv.Itoa(i))
		t0 := time.Now()
		_, d, err := pub.Publish(payload)
		took := time.Since(t0)
		slowest = max(slowest, took)
		if took > 50*time.Millisecond {
			slow++
		}
		if err != nil {
			t.Fatal(err)
		}
		dropped += d
		select {
		case p := <-got:
			if !bytes.HasPrefix(p, []byte(strconv.Itoa(i))) || len(p) != len(payload) {
				t.Fatalf("message %d: %q…", i, p[:10])
			}
		case <-time.After(testWait):
			t.Fatalf("message %d not delivered", i)
		}
	}
	st := tr.Stats()
	t.Logf("%d × 16 KiB: the stalled subscriber missed %d, the slowest Publish took %v", n, dropped, slowest)
	if dropped == 0 || uint64(dropped) != st.SeedSendDropped {
		t.Errorf("dropped %d, SeedSendDropped %d", dropped, st.SeedSendDropped)
	}
	// A Publish that waited for the stalled subscriber would be slow every
	// time once its queue is full (hundreds of times); a loaded machine
	// stalls a few (one took 213 ms under a full race run).
	if slow > 10 {
		t.Errorf("%d Publish calls took over 50 ms (the slowest %v)", slow, slowest)
	}
}

// rawServer listens on 127.0.0.1 for hand-driven peers of socketType.
func rawServer(t *testing.T) (net.Listener, func(socketType string) *zmtptest.Peer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln, func(socketType string) *zmtptest.Peer {
		t.Helper()
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(testWait))
		nc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		p := zmtptest.NewPeer(nc)
		p.Handshake(t, socketType)
		return p
	}
}

// TestSeedSubscribeWire: SeedSubscribe subscribes with the 3.0 message
// "\x01" (what libzmq sends a 3.0 peer), delivers one-frame messages and
// drops others (counted), redials after a loss, and its stop waits for
// deliver to return.
func TestSeedSubscribeWire(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})
	ln, accept := rawServer(t)
	got := make(chan string, 8)
	gate := make(chan struct{})
	openGate := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(openGate) // before the transport's Close, which waits for deliver
	stop, err := tr.SeedSubscribe(ln.Addr().String(), func(p []byte) {
		if string(p) == "block" {
			got <- "blocked"
			<-gate
			return
		}
		got <- string(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	p := accept("PUB")
	if m := p.Msg(t); !msgEqual(m, "\x01") {
		t.Fatalf("subscription %q, want \\x01", m)
	}
	p.Write(t, zmtptest.Msg([]byte("a"), []byte("b"), []byte("c")), zmtptest.Msg([]byte("one")))
	if m := <-got; m != "one" {
		t.Fatalf("got %q", m)
	}
	if d := tr.Stats().SeedRecvDropped; d != 1 {
		t.Errorf("SeedRecvDropped = %d, want 1", d)
	}
	_ = p.Conn.Close() // a lost publisher: redialled
	p = accept("PUB")
	if m := p.Msg(t); !msgEqual(m, "\x01") {
		t.Fatalf("subscription after the redial %q", m)
	}
	p.Write(t, zmtptest.Msg([]byte("two")), zmtptest.Msg([]byte("block")))
	for _, want := range []string{"two", "blocked"} {
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("got %q, want %q", m, want)
			}
		case <-time.After(testWait):
			t.Fatalf("no %q", want)
		}
	}
	if lost := tr.Stats().PeersLost; lost != 1 {
		t.Errorf("PeersLost = %d, want 1", lost)
	}
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("stop returned while deliver was running")
	case <-time.After(50 * time.Millisecond): // a window for a wrong return, not a synchronisation
	}
	openGate()
	select {
	case <-stopped:
	case <-time.After(testWait):
		t.Fatal("stop did not return")
	}
	stop() // idempotent
	p.WaitClosed(t)
}

// TestSeedRequestWire: SeedRequest sends [id8, "", body]; a malformed
// reply is dropped and counted; non-UTF-8 is refused before anything is
// sent; a lost server fails its pending requests with ErrPeerLost and the
// next request dials again.
func TestSeedRequestWire(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})
	ln, accept := rawServer(t)
	addr := ln.Addr().String()
	if _, err := tr.SeedRequest(t.Context(), addr, []byte{0xff}); !errors.Is(err, transport.ErrNotUTF8) {
		t.Errorf("non-UTF-8 request: %v", err)
	}
	type res struct {
		b   []byte
		err error
	}
	rc := make(chan res, 1)
	go func() {
		b, err := tr.SeedRequest(t.Context(), addr, []byte("q"))
		rc <- res{b, err}
	}()
	p := accept("REP")
	m := p.Msg(t)
	if len(m) != 3 || len(m[0]) != 8 || len(m[1]) != 0 || string(m[2]) != "q" {
		t.Fatalf("request %q, want [id8, \"\", q]", m)
	}
	p.Write(t,
		zmtptest.Msg(m[0], []byte("not empty"), []byte("x")),
		zmtptest.Msg(m[0], nil, []byte("a"), []byte("b")),
		zmtptest.Msg(m[0][:4], nil, []byte("x")),
		zmtptest.Msg(m[0], nil, []byte("answer")),
	)
	if r := <-rc; r.err != nil || string(r.b) != "answer" {
		t.Fatalf("reply %q, %v", r.b, r.err)
	}
	if d := tr.Stats().SeedRecvDropped; d != 3 {
		t.Errorf("SeedRecvDropped = %d, want 3", d)
	}
	go func() {
		b, err := tr.SeedRequest(t.Context(), addr, []byte("q2"))
		rc <- res{b, err}
	}()
	_ = p.Msg(t)
	_ = p.Conn.Close()
	if r := <-rc; !errors.Is(r.err, transport.ErrPeerLost) {
		t.Fatalf("after the server's loss: %v", r.err)
	}
	go func() {
		b, err := tr.SeedRequest(t.Context(), addr, []byte("q3"))
		rc <- res{b, err}
	}()
	p = accept("REP")
	m = p.Msg(t)
	p.Write(t, zmtptest.Msg(m[0], nil, []byte("again")))
	if r := <-rc; r.err != nil || string(r.b) != "again" {
		t.Fatalf("after the redial: %q, %v", r.b, r.err)
	}
}

// TestSeedTransportClose: Close ends every seed socket: a pending
// SeedRequest fails with ErrClosed, handlers' contexts end, listeners
// close, SeedSubscribe's loop ends; afterwards every seed method returns
// ErrClosed. goleak (TestMain) checks that nothing is left running.
func TestSeedTransportClose(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})
	pub, err := tr.SeedPublisher()
	if err != nil {
		t.Fatal(err)
	}
	handling := make(chan struct{})
	srv, err := tr.SeedServe(func(ctx context.Context, _ []byte) ([]byte, error) {
		close(handling)
		<-ctx.Done()
		return nil, ctx.Err()
	}, transport.SeedServeOptions{Budget: testWait})
	if err != nil {
		t.Fatal(err)
	}
	req := zmtptest.Dial(t, seedAddr(srv.Port()), "REQ")
	req.Write(t, zmtptest.Msg([]byte("id"), nil, []byte("q")))
	<-handling
	stop, err := tr.SeedSubscribe(seedAddr(pub.Port()), func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	testwait.Until(t, "the subscriber", func() bool { return pub.Subscribers() == 1 })
	ln, accept := rawServer(t)
	errc := make(chan error, 1)
	go func() {
		_, err := tr.SeedRequest(context.Background(), ln.Addr().String(), []byte("q"))
		errc <- err
	}()
	rep := accept("REP")
	_ = rep.Msg(t)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, transport.ErrClosed) {
		t.Errorf("pending SeedRequest: %v", err)
	}
	rep.WaitClosed(t)
	req.WaitClosed(t)
	for _, port := range []int{pub.Port(), srv.Port()} {
		if c, err := net.Dial("tcp", seedAddr(port)); err == nil {
			_ = c.Close()
			t.Errorf("port %d still listening", port)
		}
	}
	if _, _, err := pub.Publish([]byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if _, err := tr.SeedPublisher(); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("SeedPublisher after Close: %v", err)
	}
	if _, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{}); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("SeedServe after Close: %v", err)
	}
	if _, err := tr.SeedSubscribe("127.0.0.1:1", func([]byte) {}); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("SeedSubscribe after Close: %v", err)
	}
	if _, err := tr.SeedRequest(t.Context(), "127.0.0.1:1", []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("SeedRequest after Close: %v", err)
	}
	_ = pub.Close()
	_ = srv.Close()
}

// TestSeedGoToGo: the four roles against each other in one process: a
// SeedSubscribe of a SeedPublisher, a SeedRequest of a SeedServe.
func TestSeedGoToGo(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})
	pub, err := tr.SeedPublisher()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	stop, err := tr.SeedSubscribe(seedAddr(pub.Port()), func(p []byte) {
		select {
		case got <- string(p):
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	testwait.Until(t, "the subscriber", func() bool { return pub.Subscribers() == 1 })
	if _, _, err := pub.Publish([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "hi" {
		t.Errorf("got %q", m)
	}
	r, err := tr.SeedRequest(t.Context(), seedAddr(srv.Port()), []byte("ping"))
	if err != nil || string(r) != "echo:ping" {
		t.Errorf("SeedRequest: %q, %v", r, err)
	}
}

// TestSeedStartOrder: a SeedSubscribe made before its publisher listens
// keeps redialling (with the backoff) and subscribes once it does; a
// SeedRequest to a server not yet listening fails with ErrPeerLost, and
// the next one, once it listens, dials again.
func TestSeedStartOrder(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{})
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	_ = free.Close() // nobody listens there now
	got := make(chan string, 1)
	stop, err := tr.SeedSubscribe(addr, func(p []byte) { got <- string(p) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := tr.SeedRequest(t.Context(), addr, []byte("q")); !errors.Is(err, transport.ErrPeerLost) {
		t.Fatalf("request to nobody: %v, want ErrPeerLost", err)
	}
	<-time.After(300 * time.Millisecond) // let a few dials fail: what is tested, not a synchronisation
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	defer ln.Close()
	accept := func(st string) *zmtptest.Peer {
		t.Helper()
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(testWait))
		nc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		p := zmtptest.NewPeer(nc)
		p.Handshake(t, st)
		return p
	}
	pub := accept("PUB")
	if m := pub.Msg(t); !msgEqual(m, "\x01") {
		t.Fatalf("subscription %q", m)
	}
	pub.Write(t, zmtptest.Msg([]byte("late publisher")))
	if m := <-got; m != "late publisher" {
		t.Fatalf("got %q", m)
	}
	stop() // frees the port's listener for the REP below
	errc := make(chan error, 1)
	go func() {
		r, err := tr.SeedRequest(t.Context(), addr, []byte("q2"))
		if err == nil && string(r) != "a2" {
			err = fmt.Errorf("reply %q", r)
		}
		errc <- err
	}()
	rep := accept("REP")
	m := rep.Msg(t)
	rep.Write(t, zmtptest.Msg(m[0], nil, []byte("a2")))
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestSeedReplyTooLarge: a seed server whose reply exceeds the frame
// limit loses its connection (counted in SeedRecvDropped): the request
// fails with ErrPeerLost at once rather than at its deadline.
func TestSeedReplyTooLarge(t *testing.T) {
	t.Parallel()
	tr, _ := listen(t, &nopHandler{}, WithMaxFrameSize(4096))
	ln, accept := rawServer(t)
	errc := make(chan error, 1)
	go func() {
		_, err := tr.SeedRequest(t.Context(), ln.Addr().String(), []byte("q"))
		errc <- err
	}()
	p := accept("REP")
	m := p.Msg(t)
	p.Write(t, zmtptest.Msg(m[0], nil, bytes.Repeat([]byte("r"), 8192)))
	if err := <-errc; !errors.Is(err, transport.ErrPeerLost) {
		t.Fatalf("oversized reply: %v, want ErrPeerLost", err)
	}
	if st := tr.Stats(); st.SeedRecvDropped != 1 || st.RecvDropped != 0 {
		t.Errorf("SeedRecvDropped %d, RecvDropped %d; want 1, 0", st.SeedRecvDropped, st.RecvDropped)
	}
}

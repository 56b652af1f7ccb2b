package zmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// Tests of the memory bounds (budget.go, issue #11 finding 4). Each attack
// is measured with the Go heap after a collection, which counts what the
// transport allocated for the attackers; they are not parallel, since the
// heap is the process's.

// heapAlloc returns the live heap after a collection.
func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

const mib = 1 << 20

// requestHead is a request's name and header frames and the header of a
// payload frame announcing size bytes: what a trickler sends before it
// stops.
func requestHead(id uint64, size int) []byte {
	f := request(id, "svc", "")
	b := zmtpFrame(flagMore, f[0])
	b = append(b, zmtpFrame(flagMore, f[1])...)
	return appendFrameHeader(b, 0, size)
}

func TestMemoryDefaults(t *testing.T) {
	c := defaultConfig()
	for _, d := range []struct {
		name      string
		got, want int64
	}{
		{"recv budget", c.recvBudget, 128 * mib},
		{"recv per host", c.recvPerHost, 64 * mib},
		{"recv min rate", c.recvMinRate, 1 * mib},
		{"handler budget", c.handlerBudget, 128 * mib},
		{"handler per conn", c.handlerPerConn, 64 * mib},
		{"send budget", c.sendBudget, 128 * mib},
		{"subscriptions per conn", int64(c.maxSubs), 1024},
		{"subscription bytes per conn", int64(c.maxSubBytes), 256 << 10},
		{"subscription budget", c.subBudget, 8 * mib},
	} {
		if d.got != d.want {
			t.Errorf("default %s = %d, the docs say %d", d.name, d.got, d.want)
		}
	}
	// The package doc of the defaults: 392 MiB in all, and one maximum
	// frame fits each budget.
	if sum := c.recvBudget + c.handlerBudget + c.sendBudget + c.subBudget; sum != 392*mib {
		t.Errorf("the budgets add up to %d MiB, the docs say 392", sum/mib)
	}
	if got := c.maxSubs * prefixCost(strings.Repeat("n", 192)); got != c.maxSubBytes {
		t.Errorf("1024 names of 192 bytes cost %d, the docs say they fit %d exactly", got, c.maxSubBytes)
	}
	for _, b := range []int64{c.recvPerHost, c.handlerPerConn, c.sendBudget} {
		if b < c.maxFrame {
			t.Errorf("a bound of %d is below the maximum frame %d", b, c.maxFrame)
		}
	}
	for _, o := range []Option{
		WithRecvBudget(0, 0), WithRecvBudget(1, 2), WithRecvMinRate(0), WithHandlerBudget(10, 11),
		WithHandlerBudget(0, 0), WithSendBudget(0), WithSubscriptionLimits(0, 1, 1),
		WithSubscriptionLimits(1, 0, 1), WithSubscriptionLimits(1, 1, 0),
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%v: err %v, want ErrInvalidOption", o, err)
		}
	}
}

// TestTricklersPinLittle: connections that announce a large payload and
// trickle a few bytes of it cost what they sent, not what they announced,
// and the receive budget holds at most its per-host
// share for them.
func TestTricklersPinLittle(t *testing.T) {
	const (
		conns    = 12
		announce = 32*mib - 1024 // two fit the host's share
		perHost  = 64 * mib
	)
	srv, ep := listen(t, &nopHandler{}, WithRecvBudget(128*mib, perHost))
	before := heapAlloc()
	peers := make([]*rawPeer, conns)
	for i := range peers {
		p := dialRaw(t, ep.Router)
		p.handshake(t, "DEALER")
		p.write(t, requestHead(uint64(i+1), announce), make([]byte, 4096))
		peers[i] = p
	}
	// The first two take the host's share; the others wait for it,
	// reading nothing.
	f := request(1, "svc", "")
	msgBytes := int64(len(f[0]) + len(f[1]) + announce)
	waitFor(t, func() bool { return srv.rbud.inUse() == 2*msgBytes && srv.rbud.waiters() == conns-2 })
	grown := heapAlloc() - before
	t.Logf("%d connections announcing %d MiB each: heap +%.1f MiB, budget in use %d MiB",
		conns, announce/mib, float64(grown)/mib, srv.rbud.inUse()/mib)
	limit := int64(4 * mib) // a growMin buffer each, and the rest
	if grown > limit {
		t.Fatalf("tricklers pinned %.1f MiB of heap, want at most %d MiB", float64(grown)/mib, limit/mib)
	}
	for _, p := range peers {
		_ = p.nc.Close()
	}
	waitFor(t, func() bool { return srv.rbud.inUse() == 0 })
}

// TestTrickleDeadline: a message arriving slower than the minimum rate
// loses its connection and frees its budget, and a healthy message that
// was waiting for the budget then arrives.
func TestTrickleDeadline(t *testing.T) {
	// The slow one (50 B/s) gets the peer timeout (2 s) plus 1 s; the
	// healthy one has as long once it has the budget, for 256 KiB on
	// loopback: a wide margin on a loaded machine.
	const size = 256 << 10
	rec := newRec()
	rec.onRequest = echo
	srv, ep := listen(t, rec, WithRecvBudget(size*3/2, size*3/2), WithRecvMinRate(size))
	cli, _ := listen(t, &nopHandler{})

	slow := dialRaw(t, ep.Router)
	slow.handshake(t, "DEALER")
	slow.write(t, requestHead(1, size))
	waitFor(t, func() bool { return srv.rbud.inUse() >= size })
	// Keep trickling, so the peer is never silent: only the rate can end it.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range 500 { // bounded: 10 s
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := slow.nc.Write([]byte{0}); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)

	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	payload := make([]byte, size)
	reply, err := cli.Request(ctx, ep.Router, &transport.Message{Name: "svc", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Payload) != size {
		t.Fatalf("reply of %d bytes", len(reply.Payload))
	}
	slow.waitCut(t)
	if srv.Stats().RecvDropped == 0 {
		t.Fatal("the slow message was not counted")
	}
}

// TestHandlerBudget: many large requests on one connection to a handler
// that holds them: the transport delivers only what the handler budget
// allows and waits for the rest, instead of allocating them all.
func TestHandlerBudget(t *testing.T) {
	const (
		n       = 30
		size    = 2 * mib
		perConn = 8 * mib
	)
	var (
		mu   sync.Mutex
		held []func()
	)
	rec := &reqFunc{f: func(m *transport.Message, rw transport.ReplyWriter) {
		mu.Lock()
		held = append(held, func() {
			r := transport.Message{Name: m.Name, Header: transport.Header{Kind: transport.KindReply, RequestID: m.Header.RequestID}}
			_ = rw.Reply(&r)
		})
		mu.Unlock()
	}}
	srv, ep := listen(t, rec, WithHandlerBudget(2*perConn, perConn))
	cli, _ := listen(t, &nopHandler{})
	before := heapAlloc()

	payload := make([]byte, size) // shared and not copied: Exclusive, never modified
	errs := make(chan error, n)
	for range n {
		go func() {
			// Longer than testWait: the requests pass a few at a time.
			ctx, cancel := context.WithTimeout(context.Background(), 6*testWait)
			defer cancel()
			_, err := cli.Request(ctx, ep.Router, &transport.Message{Name: "svc", Payload: payload, Exclusive: true})
			errs <- err
		}()
	}
	delivered := func() int { mu.Lock(); defer mu.Unlock(); return len(held) }
	waitFor(t, func() bool { return delivered() == perConn/size })
	// The reader is now waiting for budget: nothing more is delivered.
	waitFor(t, func() bool { return srv.hbud.inUse() == perConn })
	grown := heapAlloc() - before
	t.Logf("%d requests of %d MiB to a handler that holds them: %d delivered, heap +%.1f MiB",
		n, size/mib, delivered(), float64(grown)/mib)
	if d := delivered(); d > perConn/size {
		t.Fatalf("%d requests delivered, the budget allows %d", d, perConn/size)
	}
	if limit := int64(perConn + 4*size + 2*mib); grown > limit { // the held, one being read, buffers
		t.Fatalf("heap grew %.1f MiB, want at most %d MiB", float64(grown)/mib, limit/mib)
	}
	// Replying frees the budget: every request gets through.
	for done := 0; done < n; {
		mu.Lock()
		h := held
		held = nil
		mu.Unlock()
		for _, f := range h {
			f()
		}
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			done++
		case <-time.After(time.Millisecond): // polling interval for newly delivered requests
		}
	}
	waitFor(t, func() bool { return srv.hbud.inUse() == 0 })
}

// TestHandlerBudgetUnanswered: a handler that ends without replying (a
// request refused by the node) frees its share once its payload is
// garbage, so the budget does not leak.
func TestHandlerBudgetUnanswered(t *testing.T) {
	srv, ep := listen(t, &nopHandler{}, WithHandlerBudget(4*mib, 2*mib))
	cli, _ := listen(t, &nopHandler{})
	payload := make([]byte, mib)
	for i := range 8 { // 8 MiB through a 2 MiB share: the GC frees it
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := cli.Request(ctx, ep.Router, &transport.Message{Name: "svc", Payload: payload, Exclusive: true})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	waitFor(t, func() bool { runtime.GC(); return srv.hbud.inUse() == 0 })
}

// TestSubscriptionLimits: a subscriber cannot hold more prefixes than the
// per-connection and transport-wide bounds; the excess is counted.
func TestSubscriptionLimits(t *testing.T) {
	const perConn, total = 100, 120
	cost := prefixCost("t0000") // "t0000\x00" is held as "t0000"
	srv, ep := listen(t, &nopHandler{}, WithSubscriptionLimits(perConn, 1<<20, int64(total*cost)))
	subscribe := func(p *rawPeer, n, from int) {
		var b []byte
		for i := range n {
			b = append(b, zmtpFrame(0, []byte(fmt.Sprintf("\x01t%04d\x00", from+i)))...)
		}
		p.write(t, b)
	}
	a := dialRaw(t, ep.Pub)
	a.handshake(t, "SUB")
	subscribe(a, 3*perConn, 0)
	waitFor(t, func() bool { return srv.Stats().RecvDropped == 2*perConn })
	b := dialRaw(t, ep.Pub)
	b.handshake(t, "SUB")
	subscribe(b, perConn, 1000)
	waitFor(t, func() bool { return srv.Stats().RecvDropped == 2*perConn+(2*perConn-total) })
	if got := srv.Subscribers("t0000"); got != 1 {
		t.Fatalf("Subscribers = %d", got)
	}
	if got := srv.subHeld.Load(); got != int64(total*cost) {
		t.Fatalf("held %d bytes of prefixes, want %d", got, total*cost)
	}
	// Bytes per connection: long prefixes hit the byte bound first.
	_ = a.nc.Close()
	waitFor(t, func() bool { return srv.subHeld.Load() == int64((total-perConn)*cost) })
}

func TestSubscriptionBytesPerConn(t *testing.T) {
	long := strings.Repeat("x", wire.MaxName-4)
	perConn := 10 * prefixCost(long+"0000")
	srv, ep := listen(t, &nopHandler{}, WithSubscriptionLimits(1000, perConn, 1<<30))
	p := dialRaw(t, ep.Pub)
	p.handshake(t, "SUB")
	var b []byte
	for i := range 30 {
		b = append(b, zmtpFrame(0, []byte(fmt.Sprintf("\x01%s%04d", long, i)))...)
	}
	p.write(t, b)
	waitFor(t, func() bool { return srv.Stats().RecvDropped == 20 })
	if got := srv.subHeld.Load(); got != int64(perConn) {
		t.Fatalf("held %d bytes, want %d", got, perConn)
	}
}

// TestSubscriberFramesAreSmall: a subscriber connection sends
// subscriptions only; a large frame on it ends it before any allocation.
func TestSubscriberFramesAreSmall(t *testing.T) {
	srv, ep := listen(t, &nopHandler{})
	p := dialRaw(t, ep.Pub)
	p.handshake(t, "SUB")
	p.write(t, appendFrameHeader(nil, 0, 32*mib))
	p.waitCut(t)
	if srv.Stats().RecvDropped != 1 {
		t.Fatalf("RecvDropped = %d", srv.Stats().RecvDropped)
	}
	if srv.rbud.inUse() != 0 {
		t.Fatal("budget taken for a subscriber's frame")
	}
}

// TestStalledSubscribers: subscribers that never read cost the publisher
// at most the send budget together, plus sendReserve each, however many
// there are; what does not fit is dropped and counted.
func TestStalledSubscribers(t *testing.T) {
	const (
		subs   = 32
		budget = 8 * mib
	)
	pub, ep := listen(t, &nopHandler{}, WithSendBudget(budget), WithPeerTimeout(time.Minute)) // the raw peers send no heartbeats
	peers := make([]*rawPeer, subs)
	for i := range peers {
		p := dialRaw(t, ep.Pub)
		p.handshake(t, "SUB")
		p.write(t, zmtpFrame(0, []byte("\x01")))
		peers[i] = p
	}
	waitFor(t, func() bool { return pub.Subscribers("t") == subs })
	before := heapAlloc()
	// 1 KiB payloads are copied into each queue: the per-subscriber cost.
	msg := &transport.Message{Name: "t", Payload: make([]byte, 1024)}
	for range 40000 { // 40 MiB to each: far more than the kernel buffers take
		if err := publishNow(pub, msg); err != nil {
			t.Fatal(err)
		}
	}
	held := pub.sendHeld.Load()
	grown := heapAlloc() - before
	t.Logf("%d stalled subscribers: send budget in use %.1f MiB, heap +%.1f MiB (%.2f MiB each), %d dropped",
		subs, float64(held)/mib, float64(grown)/mib, float64(grown)/subs/mib, pub.Stats().SendDropped)
	// The documented bound: the budget plus each connection's reserve.
	bound := int64(budget + subs*sendReserve)
	if held > bound+64<<10 {
		t.Fatalf("send budget in use %d, want at most %d", held, bound)
	}
	// The heap holds what is counted plus the slack of buffers grown by
	// append (up to 2×, less for large ones) and each connection's spare.
	if grown > 2*bound+2*mib {
		t.Fatalf("stalled subscribers pinned %.1f MiB, want at most about %d MiB", float64(grown)/mib, 2*bound/mib)
	}
	if pub.Stats().SendDropped == 0 {
		t.Fatal("nothing dropped")
	}
	for _, p := range peers {
		_ = p.nc.Close()
	}
	waitFor(t, func() bool { return pub.sendHeld.Load() == 0 })
}

// TestSharedPayloadCountsOnce: a large publish to many subscribers counts
// once against the send budget.
func TestSharedPayloadCountsOnce(t *testing.T) {
	pub, ep := listen(t, &nopHandler{}, WithPeerTimeout(time.Minute)) // the raw peers send no heartbeats
	const subs = 4
	for range subs {
		p := dialRaw(t, ep.Pub)
		p.handshake(t, "SUB")
		p.write(t, zmtpFrame(0, []byte("\x01")))
	}
	waitFor(t, func() bool { return pub.Subscribers("t") == subs })
	const size = 32 * mib // beyond the kernel buffers: it stays queued
	if err := publishNow(pub, &transport.Message{Name: "t", Payload: make([]byte, size)}); err != nil {
		t.Fatal(err)
	}
	if held := pub.sendHeld.Load(); held < size || held > size+subs*1024 {
		t.Fatalf("send budget in use %d, want %d and the frames' headers", held, size)
	}
}

// waitCut waits until the server ends p's connection, by a close or a
// reset (it may not have read what p sent), skipping what it sends.
func (p *rawPeer) waitCut(t *testing.T) {
	t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(testWait))
	_, err := io.Copy(io.Discard, p.r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("server did not end the connection")
	}
}

// reqFunc hands requests to f and keeps nothing itself (recHandler keeps
// them all, which would be what the heap measures).
type reqFunc struct {
	nopHandler
	f func(*transport.Message, transport.ReplyWriter)
}

func (h *reqFunc) HandleRequest(m *transport.Message, rw transport.ReplyWriter) { h.f(m, rw) }

// TestHandlerBudgetSmall: requests under 32 KiB are not counted (as the
// option's doc says); one of 32 KiB is.
func TestHandlerBudgetSmall(t *testing.T) {
	held := make(chan transport.ReplyWriter, 2)
	srv, ep := listen(t, &reqFunc{f: func(_ *transport.Message, rw transport.ReplyWriter) { held <- rw }})
	cli, _ := listen(t, &nopHandler{})
	for _, size := range []int{32<<10 - 1, 32 << 10} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, _ = cli.Request(ctx, ep.Router, &transport.Message{Name: "svc", Payload: make([]byte, size)})
		}()
		<-held
		if got, want := srv.hbud.inUse(), int64(size/(32<<10)*size); got != want {
			t.Fatalf("request of %d bytes: handler budget in use %d, want %d", size, got, want)
		}
	}
}

// TestBudget: the shares, the exemption for one message when nothing is
// held, waiting until a release, and giving up when done closes.
func TestBudget(t *testing.T) {
	b := newBudget(100, 60)
	never := make(chan struct{})
	if err := b.take("a", 60, never, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.take("b", 40, never, nil); err != nil {
		t.Fatal(err)
	}
	// "a" is at its share and the whole is full: both wait.
	got := make(chan string, 2)
	for _, k := range []string{"a", "c"} {
		go func() {
			if b.take(k, 10, never, nil) == nil {
				got <- k
			}
		}()
	}
	waitFor(t, func() bool { return b.waiters() == 2 })
	b.release("b", 40) // room for "c"; "a" is still at its share
	if k := <-got; k != "c" {
		t.Fatalf("%s got in", k)
	}
	b.release("a", 60)
	if k := <-got; k != "a" {
		t.Fatalf("%s got in", k)
	}
	b.release("a", 10)
	b.release("c", 10)
	if b.inUse() != 0 || len(b.byKey) != 0 {
		t.Fatalf("in use %d, keys %v", b.inUse(), b.byKey)
	}
	// Larger than any bound: let in alone.
	if err := b.take("a", 1000, never, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errc := make(chan error)
	go func() { errc <- b.take("b", 1, done, nil) }()
	waitFor(t, func() bool { return b.waiters() == 1 })
	close(done)
	if err := <-errc; !errors.Is(err, errBudgetClosed) {
		t.Fatalf("err %v", err)
	}
	if b.waiters() != 0 {
		t.Fatal("a waiter left counted")
	}
}

func TestHostOf(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5555":        "127.0.0.1",
		"[::1]:5555":            "::1",
		"unix:@colugo-ab12-pub": "unix",
		"@":                     "unix",
		"":                      "unix",
		"robot.local:1234":      "robot.local",
		"not an address":        "not an address",
	} {
		if got := hostOf(addr); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestSendQueueDefaults: what WithSendQueue and WithSendQueueBytes say of
// their defaults: the byte bound holds the three bursts, a 64-byte publish
// takes about 150 bytes queued, and the count bound is far above what the
// byte bound lets in (twice, for 64-byte messages).
func TestSendQueueDefaults(t *testing.T) {
	c := defaultConfig()
	if c.sendQueue != 1<<20 || c.sendQueueBytes != 64*mib || sendReserve != 128<<10 {
		t.Fatalf("defaults: %d messages, %d bytes, reserve %d; the docs say 1<<20, 64 MiB, 128 KiB", c.sendQueue, c.sendQueueBytes, sendReserve)
	}
	h := wire.Header{Kind: transport.KindPublish, Codec: "raw", Type: "main.Pose", Sender: "robot-1-7f3a9c2e",
		Seq: 1 << 40, SendTime: time.Now().UnixNano()}
	queued := func(size int) int {
		return len(appendPrefix(nil, "robot/pose", &h, transport.KindPublish, size, false)) + size
	}
	if q := queued(64); q < 100 || q > 200 {
		t.Errorf("a 64-byte publish takes %d bytes queued, the docs say about 150", q)
	}
	for _, b := range []struct{ n, size int }{{100_000, 64}, {10_000, 1 << 10}, {1_000, 64 << 10}} {
		if got := b.n * queued(b.size); got > c.sendQueueBytes {
			t.Errorf("a burst of %d × %d B takes %d bytes queued, over the default %d", b.n, b.size, got, c.sendQueueBytes)
		}
	}
	if n := c.sendQueueBytes / queued(64); n*2 > c.sendQueue {
		t.Errorf("the byte bound lets in %d messages of 64 bytes: the count bound %d is not twice that", n, c.sendQueue)
	}
}

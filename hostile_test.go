package colugo_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testkit"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport/wire"
)

// This file attacks a whole Node on the zmq transport (with a private
// host-local registry) from raw TCP, raw zmq4 sockets and pyzmq: malformed
// frames, wrong frame counts, giant lengths, unknown versions, a flood of
// subscriptions, past deadlines, unknown services, stray cancels, garbage
// $describe replies. The node must keep serving a legitimate peer, count
// what it drops, and neither panic nor leak (goleak in TestMain). It also
// proves the README's wire table with pyzmq peers that build every header by
// hand. transport/zmq's own hostile tests cover the transport alone.

// hostileNode creates a zmq node registered in dir, closed at cleanup.
func hostileNode(t *testing.T, name, dir string, opts ...colugo.NodeOption) *colugo.Node {
	t.Helper()
	all := append([]colugo.NodeOption{colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond)))}, opts...)
	n, err := colugo.NewNode(name, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// legit runs a legitimate peer's load against victim until stop is
// called: requests to math/add, and a subscription to the victim's ticks.
type legit struct {
	ok, failed, ticks atomic.Int64
	firstErr          atomic.Value
	stop              func()
}

func startLegit(t *testing.T, victim, good *colugo.Node) *legit {
	t.Helper()
	l := &legit{}
	ticks, err := colugo.Subscribe[int](t.Context(), good, "hostile/ticks", colugo.WithBuffer(1024))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[int](victim, "hostile/ticks")
	if err != nil {
		t.Fatal(err)
	}
	testkit.PublishUntil(t, pub, 0, ticks)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil && i < 1_000_000; i++ { // bounded; ends at stop
			_ = pub.Publish(ctx, i)
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			r, err := colugo.Request[AddReq, AddResp](rctx, good, "math/add", AddReq{A: i, B: 1})
			rcancel()
			switch {
			case ctx.Err() != nil:
			case err != nil || r.Sum != i+1:
				l.failed.Add(1)
				l.firstErr.CompareAndSwap(nil, fmt.Sprintf("request %d: %+v %v", i, r, err))
			default:
				l.ok.Add(1)
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-ticks:
				l.ticks.Add(1)
			case <-ctx.Done():
				return
			}
		}
	})
	l.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(l.stop)
	return l
}

// progress waits until the legitimate peer made n more requests and got
// n more ticks: the node is still serving.
func (l *legit) progress(t *testing.T, n int64) {
	t.Helper()
	ok, ticks := l.ok.Load(), l.ticks.Load()
	testwait.Until(t, "the legitimate peer to progress", func() bool {
		return l.ok.Load() >= ok+n && l.ticks.Load() >= ticks+n
	})
	if f := l.failed.Load(); f != 0 {
		t.Fatalf("legitimate requests failed: %d, first: %v", f, l.firstErr.Load())
	}
}

// TestNodeHostilePeers throws malformed and abusive traffic at a node's
// router and pub ports from raw TCP while a legitimate node keeps calling
// its service and receiving its topic.
func TestNodeHostilePeers(t *testing.T) {
	dir := t.TempDir()
	victim := hostileNode(t, "victim", dir)
	good := hostileNode(t, "good", dir)
	slowStarted := make(chan time.Duration, 16)
	if _, err := colugo.Serve(victim, "math/add", add); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(time.Hour)
		}
		slowStarted <- time.Until(dl)
		<-ctx.Done()
		return 0, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	l := startLegit(t, victim, good)
	ep := victim.Endpoint()
	dropped := func() uint64 { return victim.Stats().Transport.RecvDropped }
	// okOn sends a good request on p and checks its reply: everything p
	// sent before has been read by then (one reader per connection).
	okOn := func(t *testing.T, p *zmtptest.Peer, id uint64) {
		t.Helper()
		p.Write(t, zmtptest.Msg(wire.AppendName(nil, "math/add"), zmtptest.Header(wire.KindRequest, id, int64(time.Second)), []byte(`{"A":2,"B":3}`)))
		h, payload := p.Reply(t)
		if h.RequestID != id || h.Status != 0 || string(payload) != `{"Sum":5}` {
			t.Fatalf("reply %+v %q", h, payload)
		}
	}

	t.Run("TruncatedFrames", func(t *testing.T) {
		for _, cut := range [][]byte{
			zmtptest.Greeting()[:10],                                                                       // greeting cut short
			append(zmtptest.Greeting(), zmtptest.Ready("DEALER")[:5]...),                                   // READY cut short
			append(append(zmtptest.Greeting(), zmtptest.Ready("DEALER")...), zmtptest.More, 200, 'm', 'a'), // frame cut short
		} {
			p := zmtptest.DialRaw(t, ep.Router)
			p.Write(t, cut)
			_ = p.Conn.Close()
		}
		l.progress(t, 5)
	})
	t.Run("WrongFrameCounts", func(t *testing.T) {
		p := zmtptest.Dial(t, ep.Router, "DEALER")
		before := dropped()
		good := [][]byte{wire.AppendName(nil, "math/add"), zmtptest.Header(wire.KindRequest, 1, int64(time.Second)), []byte("{}")}
		p.Write(t, zmtptest.Msg(good[0]), zmtptest.Msg(good[0], good[1]), zmtptest.Msg(append(good, []byte("x"), []byte("y"))...), zmtptest.Msg(append(good, make([][]byte, 40)...)...))
		okOn(t, p, 2)
		if got := dropped() - before; got != 4 {
			t.Fatalf("RecvDropped grew by %d, want 4", got)
		}
	})
	t.Run("UnknownVersionsAndKinds", func(t *testing.T) {
		p := zmtptest.Dial(t, ep.Router, "DEALER")
		before := dropped()
		name := wire.AppendName(nil, "math/add")
		var n uint64
		for _, first := range []byte{0xC0, 0xC2, 0xCF, 0xD1, 0x01, 0x00, 0xFF} {
			h := zmtptest.Header(wire.KindRequest, 1, int64(time.Second))
			h[0] = first
			p.Write(t, zmtptest.Msg(name, h, []byte("{}")))
			n++
		}
		for _, kind := range []byte{0, 1, 3, 6, 99, 255} { // publish and reply are not for a router
			h := zmtptest.Header(wire.KindRequest, 1, int64(time.Second))
			h[1] = kind
			p.Write(t, zmtptest.Msg(name, h, []byte("{}")))
			n++
		}
		h := zmtptest.Header(wire.KindRequest, 1, int64(time.Second))
		for _, bad := range [][][]byte{
			{[]byte("math/add"), h, nil},           // name without NUL
			{[]byte("\xff\xfe\x00"), h, nil},       // name not UTF-8
			{[]byte("\x00"), h, nil},               // empty name
			{name, h[:7], nil},                     // truncated header
			{name, append(bytes.Clone(h), 0), nil}, // trailing byte
			{name, append([]byte{0xC1, 2, 0, 0}, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), nil}, // codec length 2^63
		} {
			p.Write(t, zmtptest.Msg(bad...))
			n++
		}
		okOn(t, p, 3)
		if got := dropped() - before; got != n {
			t.Fatalf("RecvDropped grew by %d, want %d", got, n)
		}
	})
	t.Run("GiantLengths", func(t *testing.T) {
		for _, c := range []struct{ addr, typ string }{{ep.Router, "DEALER"}, {ep.Pub, "SUB"}} {
			before := dropped()
			p := zmtptest.Dial(t, c.addr, c.typ)
			p.Write(t, []byte{zmtptest.Long, 0x40, 0, 0, 0, 0, 0, 0, 0}) // 2^62 bytes announced
			p.WaitClosed(t)
			if dropped() == before {
				t.Errorf("%s: giant frame not counted", c.typ)
			}
			p = zmtptest.DialRaw(t, c.addr) // before the handshake ends
			p.Write(t, zmtptest.Greeting(), []byte{zmtptest.Command | zmtptest.Long, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			p.WaitClosed(t)
		}
		l.progress(t, 5)
	})
	t.Run("PastDeadlines", func(t *testing.T) {
		p := zmtptest.Dial(t, ep.Router, "DEALER")
		// 1 ns left: the handler's ctx is already over, so it answers
		// with status 4 (deadline exceeded) at once.
		p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), zmtptest.Header(wire.KindRequest, 10, 1), []byte("1")))
		h, _ := p.Reply(t)
		if h.RequestID != 10 || colugo.Code(h.Status) != colugo.CodeDeadlineExceeded {
			t.Fatalf("past deadline: %+v", h)
		}
		if d := <-slowStarted; d > 0 {
			t.Fatalf("handler had %v left, want none", d)
		}
		// math/add ignores its ctx: a reply either way, and the node goes on.
		p.Write(t, zmtptest.Msg(wire.AppendName(nil, "math/add"), zmtptest.Header(wire.KindRequest, 11, 1), []byte(`{"A":1,"B":1}`)))
		if h, _ := p.Reply(t); h.RequestID != 11 {
			t.Fatalf("reply %+v", h)
		}
		okOn(t, p, 12)
	})
	t.Run("UnknownServicesAndCancels", func(t *testing.T) {
		p := zmtptest.Dial(t, ep.Router, "DEALER")
		for i, name := range []string{"no/such/service", "$describe2", "$", strings.Repeat("x", 255)} {
			kind := wire.KindRequest
			if name[0] == '$' {
				kind = wire.KindControl
			}
			id := uint64(100 + i)
			p.Write(t, zmtptest.Msg(wire.AppendName(nil, name), zmtptest.Header(kind, id, int64(time.Second)), nil))
			h, _ := p.Reply(t)
			if h.RequestID != id || colugo.Code(h.Status) != colugo.CodeNotServed || h.Error == "" {
				t.Fatalf("%q: %+v", name, h)
			}
		}
		for id := range uint64(1000) { // cancels for ids nobody used: no reply, no effect
			p.Write(t, zmtptest.Msg(wire.AppendName(nil, "math/add"), zmtptest.Header(wire.KindCancel, id, 0), nil))
		}
		okOn(t, p, 5000) // the first message back is this reply, not one per cancel
		l.progress(t, 5)
	})
	t.Run("SubscriptionFlood", func(t *testing.T) {
		took, before, during := subscriptionFlood(t, victim, floodSize())
		t.Logf("%d subscriptions processed in %v; 2000 publishes took %v before, %v with them (x%.1f)",
			floodSize(), took, before, during, float64(during)/float64(before))
		l.progress(t, 5)
	})
	t.Run("RawZmq4Dealer", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		d := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("zmq4-hostile")), zmq4.WithLogger(log.New(io.Discard, "", 0)))
		defer d.Close()
		if err := d.Dial("tcp://" + ep.Router); err != nil {
			t.Fatal(err)
		}
		before := dropped()
		name := wire.AppendName(nil, "math/add")
		badV := zmtptest.Header(wire.KindRequest, 1, int64(time.Second))
		badV[0] = 0xC2
		for _, m := range []zmq4.Msg{
			zmq4.NewMsg(name),
			zmq4.NewMsgFrom(name, zmtptest.Header(wire.KindRequest, 1, int64(time.Second))),
			zmq4.NewMsgFrom(name, badV, []byte("{}")),
			zmq4.NewMsgFrom(name, zmtptest.Header(wire.KindRequest, 1, 0), []byte("{}"), []byte("4th")),
			zmq4.NewMsgFrom(name, zmtptest.Header(wire.KindRequest, 2, int64(time.Second)), []byte(`{"A":40,"B":2}`)),
		} {
			if err := d.SendMulti(m); err != nil {
				t.Fatal(err)
			}
		}
		for {
			m, err := d.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if m.Type == zmq4.CmdMsg {
				continue
			}
			h, err := wire.Decode(m.Frames[1])
			if err != nil || h.RequestID != 2 || string(m.Frames[2]) != `{"Sum":42}` {
				t.Fatalf("zmq4 reply %+v %q: %v", h, m.Frames, err)
			}
			break
		}
		if got := dropped() - before; got != 4 {
			t.Errorf("RecvDropped grew by %d, want 4", got)
		}
	})
	t.Run("Pyzmq", func(t *testing.T) {
		needPython(t)
		before := dropped()
		out := runPython(t, "hostile", ep.Router)
		if !strings.Contains(out, "hostile ok 12") {
			t.Fatalf("python: %s", out)
		}
		if got := dropped() - before; got != 12 {
			t.Errorf("RecvDropped grew by %d, want 12", got)
		}
	})

	l.progress(t, 10)
	l.stop()
	st := victim.Stats()
	t.Logf("legitimate peer: %d requests answered, %d failed, %d ticks; victim: RecvDropped %d, ConnsRefused %d, SendDropped %d",
		l.ok.Load(), l.failed.Load(), l.ticks.Load(), st.Transport.RecvDropped, st.Transport.ConnsRefused, st.Transport.SendDropped)
	if st.Transport.ConnsRefused < 3 {
		t.Errorf("ConnsRefused = %d, want ≥ 3 (the truncated handshakes)", st.Transport.ConnsRefused)
	}
}

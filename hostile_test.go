package colugo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"google.golang.org/protobuf/proto"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/examples/posepb"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport/wire"
	zmqt "github.com/colugo-go/colugo/transport/zmq"
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
	publishUntil(t, pub, 0, ticks)
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

// floodSize is the number of subscriptions of the flood: 1000 by default,
// COLUGO_FLOOD for the 10k of the manual run (each costs O(n) at the node,
// see TestSubscriptionFloodIsLinear, so 10k take seconds under -race).
func floodSize() int {
	if n, err := strconv.Atoi(os.Getenv("COLUGO_FLOOD")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// subscriptionFlood sends n distinct subscriptions, one junk frame and a
// real subscription to victim's pub port from a raw SUB and waits for the
// first message of the real one. It returns how long that took and the time
// of 2000 publishes on another topic before and during the flood.
func subscriptionFlood(t *testing.T, victim *colugo.Node, n int) (took, before, during time.Duration) {
	t.Helper()
	bench := func() time.Duration {
		pub, err := colugo.NewPublisher[int](victim, "hostile/bench")
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		start := time.Now()
		for i := range 2000 {
			_ = pub.Publish(t.Context(), i)
		}
		return time.Since(start)
	}
	before = bench()
	p := zmtptest.Dial(t, victim.Endpoint().Pub, "SUB")
	defer p.Conn.Close()
	var b []byte
	for i := range n {
		b = append(b, zmtptest.Frame(0, fmt.Appendf(nil, "\x01flood/%05d/%s", i, strings.Repeat("p", 40)))...)
	}
	b = append(b, zmtptest.Frame(0, []byte("\x05junk"))...) // not a subscription: dropped
	b = append(b, zmtptest.Frame(0, []byte("\x01hostile/ticks\x00"))...)
	d0 := victim.Stats().Transport.RecvDropped
	start := time.Now()
	p.Write(t, b)
	f := p.Msg(t) // the node read every subscription before this one
	took = time.Since(start)
	if len(f) != 3 || string(f[0]) != "hostile/ticks\x00" {
		t.Fatalf("got %q", f)
	}
	if got := victim.Stats().Transport.RecvDropped - d0; got != 1 {
		t.Errorf("RecvDropped grew by %d, want 1 (the junk)", got)
	}
	during = bench()
	return took, before, during
}

// TestSubscriptionFloodIsLinear: n subscriptions from one peer cost O(n)
// in all (the transport once rebuilt its prefix list on each one: 4000
// took 0.8-1.3 s, 16000 would take about 20 s). The bound is absolute and
// generous, so a loaded machine does not fail it, while the quadratic
// version would; the ratio of two sizes is only logged, since small times
// are noisy.
func TestSubscriptionFloodIsLinear(t *testing.T) {
	dir := t.TempDir()
	// The default subscription limits stop a flood at 1024 prefixes per
	// connection (zmq.WithSubscriptionLimits); this test measures the cost
	// of processing many, so it lifts them.
	tr, err := zmqt.New(zmqt.WithSubscriptionLimits(1<<16, 64<<20, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	victim := hostileNode(t, "victim", dir, colugo.WithTransport(tr))
	good := hostileNode(t, "good", dir)
	_, _ = colugo.Serve(victim, "math/add", add)
	l := startLegit(t, victim, good)
	small, _, _ := subscriptionFlood(t, victim, 1000)
	large, before, during := subscriptionFlood(t, victim, 16000)
	l.progress(t, 5)
	t.Logf("1000 subscriptions: %v, 16000: %v (x%.1f; linear is x16); publishes x%.1f slower with 17000 prefixes",
		small, large, float64(large)/float64(small), float64(during)/float64(before))
	if large > 5*time.Second {
		t.Errorf("16000 subscriptions took %v: not linear", large)
	}
}

// TestCancelFromAnotherConnection: a cancel names a request by its
// sender's node id and request id, both of which any peer can learn
// ($describe, discovery) or guess (ids count up from 1). A cancel from one
// connection must not cancel a request that came on another.
func TestCancelFromAnotherConnection(t *testing.T) {
	dir := t.TempDir()
	victim := hostileNode(t, "victim", dir)
	good := hostileNode(t, "good", dir)
	started := make(chan struct{}, 1)
	handlerDone := make(chan error, 1)
	_, _ = colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		handlerDone <- ctx.Err()
		return 0, ctx.Err()
	})
	_, _ = colugo.Serve(victim, "math/add", add)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := colugo.Request[int, int](ctx, good, "slow", 1); errc <- err }()
	<-started
	p := zmtptest.Dial(t, victim.Endpoint().Router, "DEALER")
	for id := range uint64(300) { // good's request ids so far are small
		h := wire.Header{Kind: wire.KindCancel, Codec: "json", Sender: good.ID(), RequestID: id}
		p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), h.Append(nil), nil))
	}
	p.Write(t, zmtptest.Msg(wire.AppendName(nil, "math/add"), zmtptest.Header(wire.KindRequest, 1, int64(time.Second)), []byte(`{"A":1,"B":1}`)))
	p.Reply(t) // every cancel above has been handled by now
	select {
	case err := <-handlerDone:
		t.Errorf("a stranger's cancel ended good's request: handler ctx %v, good got %v", err, <-errc)
		return
	default:
	}
	cancel()
	<-errc
}

// TestPastDeadlineIsNotNoDeadline: the README's deadline field is the time
// left when sent; a negative value is a deadline already past, not "none":
// the node answers deadline_exceeded without running the handler.
func TestPastDeadlineIsNotNoDeadline(t *testing.T) {
	victim := hostileNode(t, "victim", t.TempDir())
	ran := make(chan struct{}, 1)
	_, _ = colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		ran <- struct{}{}
		<-ctx.Done()
		return 0, ctx.Err()
	})
	p := zmtptest.Dial(t, victim.Endpoint().Router, "DEALER")
	p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), zmtptest.Header(wire.KindRequest, 1, -int64(time.Second)), []byte("1")))
	if h, _ := p.Reply(t); colugo.Code(h.Status) != colugo.CodeDeadlineExceeded {
		t.Fatalf("past deadline answered %+v", h)
	}
	select {
	case <-ran:
		t.Error("the handler ran for a request whose deadline had passed")
	default:
	}
}

// TestRequesterGoneCancelsHandler: requests without a deadline (Deadline 0
// is allowed on the wire) from a requester that then vanishes must not
// hold handler slots for ever, or 1024 of them (WithMaxHandlers default)
// would disable every service. Their handlers end when the connection
// drops, and in any case by the node's default timeout.
func TestRequesterGoneCancelsHandler(t *testing.T) {
	dir := t.TempDir()
	victim := hostileNode(t, "victim", dir, colugo.WithMaxHandlers(8), colugo.WithDefaultTimeout(500*time.Millisecond))
	_, _ = colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	_, _ = colugo.Serve(victim, "math/add", add)
	p := zmtptest.Dial(t, victim.Endpoint().Router, "DEALER")
	for id := range uint64(8) {
		p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), zmtptest.Header(wire.KindRequest, id+1, 0), []byte("1")))
	}
	p.Write(t, zmtptest.Msg(wire.AppendName(nil, "math/add"), zmtptest.Header(wire.KindRequest, 99, int64(time.Second)), []byte(`{"A":1,"B":1}`)))
	if h, _ := p.Reply(t); colugo.Code(h.Status) != colugo.CodeUnavailable {
		t.Fatalf("with 8 handlers busy, math/add answered %+v", h)
	}
	_ = p.Conn.Close()
	good := hostileNode(t, "good", dir)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var last error
	for {
		_, err := colugo.Request[AddReq, AddResp](ctx, good, "math/add", AddReq{A: 1})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("3s after the requester left, math/add still fails: %v", last)
		}
		last = err
	}
}

const python = "/usr/bin/python3" // Debian's, with python3-zmq

func needPython(t *testing.T) {
	t.Helper()
	if err := exec.CommandContext(t.Context(), python, "-c", "import zmq").Run(); err != nil {
		t.Skipf("%s cannot import zmq (install python3-zmq): %v", python, err)
	}
}

// runPython runs testdata/wirespec.py to the end and returns its output.
func runPython(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, append([]string{"testdata/wirespec.py"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python %v: %v\n%s", args, err, out)
	}
	t.Logf("python %s:\n%s", args[0], out)
	return string(out)
}

// wirePose has the field names the Python side checks.
type wirePose struct {
	X, Y float64
	Seq  int
}

// TestReadmeWireSpecPyzmq: a pyzmq SUB receives and decodes a colugo topic,
// and a pyzmq DEALER calls a colugo service, $describe, an unknown service,
// with a past deadline and after a stray cancel, with every header built
// and parsed by hand from the README's table.
func TestReadmeWireSpecPyzmq(t *testing.T) {
	needPython(t)
	node := hostileNode(t, "wirespec", t.TempDir())
	if _, err := colugo.Serve(node, "math/add", add); err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[wirePose](node, "wire/pose")
	if err != nil {
		t.Fatal(err)
	}
	ep := node.Endpoint()

	t.Run("SUB", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, python, "testdata/wirespec.py", "sub", ep.Pub, "wire/pose", node.ID(), "50")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 8)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		if l := <-lines; l != "ready" {
			_ = cmd.Wait()
			t.Fatalf("python: %q", l)
		}
		// Publish until python has its 50: it subscribes asynchronously.
		var last string
		for seq := 1; seq < 1_000_000; seq++ {
			_ = pub.Publish(t.Context(), wirePose{X: float64(seq) / 2, Y: -1, Seq: seq})
			select {
			case l, ok := <-lines:
				last = l
				if !ok {
					last = "(exited)"
				}
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
		if err := cmd.Wait(); err != nil || !strings.HasPrefix(last, "sub ok 50") {
			t.Fatalf("python: %v: %s", err, last)
		}
		t.Log("python:", last)
	})
	t.Run("DEALER", func(t *testing.T) {
		out := runPython(t, "dealer", ep.Router, node.ID())
		for _, want := range []string{`dealer ok math/add {"Sum":42}`, "dealer ok $describe wirespec True", "dealer ok unknown 8", "dealer ok past-deadline", "dealer ok cancel-unknown"} {
			if !strings.Contains(out, want) {
				t.Errorf("python output lacks %q", want)
			}
		}
	})
}

// logCounter is a slog handler that counts messages and keeps error texts.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
	errs []string
}

func newLogCounter() *logCounter { return &logCounter{msgs: map[string]int{}} }

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCounter) WithGroup(string) slog.Handler            { return h }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Message]++
	if r.Message == "describe failed" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				h.errs = append(h.errs, a.Value.String())
			}
			return true
		})
	}
	return nil
}

func (h *logCounter) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

// TestGarbageDescribe registers a fake peer (a raw zmq4 ROUTER) in the
// victim's registry and answers its $describe requests with garbage, one
// kind per request, then with a valid description. The victim must log and
// skip each bad one, never list the fake before the valid one, and list it
// after.
func TestGarbageDescribe(t *testing.T) {
	dir := t.TempDir()
	logs := newLogCounter()
	victim := hostileNode(t, "victim", dir, colugo.WithLogger(slog.New(logs)))
	if _, err := colugo.Serve(victim, "math/add", add); err != nil {
		t.Fatal(err)
	}
	const fakeID = "fakepeer0001"
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	many := make([]colugo.TopicInfo, 10000)
	for i := range many {
		many[i] = colugo.TopicInfo{Name: fmt.Sprintf("t/%d", i), Codec: "json", Type: "int"}
	}
	valid := func(topics []colugo.TopicInfo, router string) []byte {
		b, _ := json.Marshal(colugo.PeerInfo{ID: fakeID, Name: "fake", Version: "9", Router: router, Pub: "127.0.0.1:1",
			Topics: topics, Services: []colugo.TopicInfo{{Name: "fake/svc", Codec: "json"}}})
		return b
	}
	type answer struct {
		status  uint8
		kind    wire.Kind
		payload []byte
	}
	garbage := []answer{
		{payload: nil},
		{payload: []byte("not json")},
		{payload: []byte("{")},
		{payload: []byte("null")},
		{payload: []byte("[]")},
		{payload: []byte(`{"id":""}`)},
		{payload: []byte(`{"id":"x"}`)},
		{payload: []byte(`{"id":5,"router":true}`)},
		{payload: []byte(`{"id":"` + fakeID + `","router":"r","topics":{"a":1}}`)},
		{payload: []byte("{\"id\":\"\xff\xfe\",\"router\":\"\x00\"}")},
		{payload: []byte(deep)},
		{payload: append(bytes.Repeat([]byte(" "), 1<<20), "{}"...)},
		{status: 5, payload: valid(nil, "x")},                // an error status with a good body
		{kind: wire.KindCancel, payload: valid(nil, "x")},    // not a reply: the transport drops it
		{payload: []byte(`{"id":"another","router":"x:1"}`)}, // another node's id at this address
	}
	final := answer{payload: valid(many, "whatever")}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	router := zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity("fake")), zmq4.WithLogger(log.New(io.Discard, "", 0)))
	defer router.Close()
	if err := router.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := router.Addr().String()
	served := make(chan int, len(garbage)+64)
	var serveWG sync.WaitGroup
	defer serveWG.Wait()
	defer router.Close()
	serveWG.Go(func() {
		for i := 0; ; {
			m, err := router.Recv()
			if err != nil {
				return
			}
			if m.Type == zmq4.CmdMsg || len(m.Frames) != 4 {
				continue
			}
			h, err := wire.Decode(m.Frames[2])
			if err != nil || h.Kind != wire.KindControl {
				continue
			}
			a := final
			if i < len(garbage) {
				a = garbage[i]
			}
			kind := a.kind
			if kind == 0 {
				kind = wire.KindReply
			}
			rh := wire.Header{Kind: kind, Status: a.status, Codec: "json", Sender: fakeID, RequestID: h.RequestID, Error: "fake"}
			if err := router.SendMulti(zmq4.NewMsgFrom(m.Frames[0], m.Frames[1], rh.Append(nil), a.payload)); err != nil {
				return
			}
			served <- i
			i++
		}
	})

	reg := local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond))
	events, err := reg.Start(discovery.Peer{ID: fakeID, Name: "fake", Router: addr, Catalog: "c0"})
	if err != nil {
		t.Fatal(err)
	}
	var regWG sync.WaitGroup
	defer regWG.Wait()
	defer reg.Close()
	regWG.Go(func() {
		for range events { // the fake's own view; not needed
		}
	})
	// Each catalog change makes the victim describe the fake again (the
	// periodic refresh also does, every second): one answer per request.
	for i := 0; i < len(garbage); {
		select {
		case j := <-served:
			i = j + 1
			if len(victim.Peers()) != 0 {
				t.Fatalf("after garbage answer %d the victim lists %+v", j, victim.Peers())
			}
			if err := reg.Update(discovery.Peer{ID: fakeID, Name: "fake", Router: addr, Catalog: fmt.Sprint("c", i)}); err != nil {
				t.Fatal(err)
			}
		case <-time.After(wait):
			t.Fatalf("the victim stopped asking after %d answers", i)
		}
	}
	testwait.Until(t, "the valid description", func() bool {
		ps := victim.Peers()
		return len(ps) == 1 && ps[0].ID == fakeID && len(ps[0].Topics) == len(many)
	})
	logs.mu.Lock()
	errs := slicesClone(logs.errs)
	logs.mu.Unlock()
	t.Logf("describe failed %d times; e.g. %q", len(errs), errs[:min(3, len(errs))])
	// Bad JSON, missing fields and the error status fail the describe;
	// the cancel kind is dropped by the transport (the describe then times
	// out); another id and the victim's own id are accepted and set aside.
	if n := logs.count("describe failed"); n < 12 {
		t.Errorf("describe failed logged %d times, want ≥ 12", n)
	}
	if victim.Stats().Transport.RecvDropped == 0 {
		t.Error("the cancel-kind answer was not counted as dropped")
	}
	// The victim still serves and describes itself.
	if r, err := colugo.Request[AddReq, AddResp](t.Context(), victim, "math/add", AddReq{A: 1, B: 2}); err != nil || r.Sum != 3 {
		t.Fatalf("victim after garbage: %+v %v", r, err)
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// FuzzPeerInfoJSON decodes arbitrary bytes as a $describe payload (the node
// decodes it with encoding/json into PeerInfo) and checks that whatever
// decodes re-encodes stably. Seeds are real $describe payloads.
func FuzzPeerInfoJSON(f *testing.F) {
	n := describeSeeds(f)
	for _, b := range n {
		f.Add(b)
	}
	for _, s := range []string{"", "null", "{}", `{"id":"a","router":"b"}`, `{"topics":null}`, `{"topics":[null]}`,
		`{"id":"\ud800","router":"\u0000"}`, "{\"id\":\"\xff\"}", `{"topics":[{"name":1}]}`, `{"ID":"case","Router":"insensitive"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p colugo.PeerInfo
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		once, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		var q colugo.PeerInfo
		if err := json.Unmarshal(once, &q); err != nil {
			t.Fatalf("decode of re-marshalled %s: %v", once, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed the value:\n%+v\n%+v", p, q)
		}
	})
}

// describeSeeds returns real $describe payloads: what json.Marshal
// gives for the PeerInfo of zmq nodes with topics, subscriptions and
// services, read back through Peers().
func describeSeeds(f *testing.F) [][]byte {
	f.Helper()
	dir := f.TempDir()
	mk := func(name string) *colugo.Node {
		n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond))))
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b := mk("seed-a"), mk("seed-🤖")
	_, _ = colugo.NewPublisher[Pose](a, "robot/pose")
	_, _ = colugo.Serve(a, "math/add", add)
	_, _ = colugo.Subscribe[int](f.Context(), a, "sensors/température")
	deadline := time.Now().Add(wait)
	for len(b.Peers()) == 0 || len(b.Peers()[0].Services) == 0 {
		if time.Now().After(deadline) {
			f.Fatal("no peer to take seeds from")
		}
		time.Sleep(time.Millisecond)
	}
	var out [][]byte
	for _, p := range append(b.Peers(), a.Peers()...) {
		j, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

// asCodec sends bytes as they are under another codec's name and type
// name: a peer whose payloads claim to be JSON or protobuf.
type asCodec struct{ name, typ string }

func (c asCodec) Name() string                    { return c.name }
func (c asCodec) Marshal(v any) ([]byte, error)   { return codec.Raw{}.Marshal(v) }
func (c asCodec) Unmarshal(b []byte, v any) error { return codec.Raw{}.Unmarshal(b, v) }
func (c asCodec) TypeName(any) string             { return c.typ }
func (c asCodec) String() string                  { return "as " + c.name }

var _ codec.TypeNamer = asCodec{}

// FuzzSubscribeTyped publishes fuzzed payloads between two colugotest
// nodes under the json, protobuf and raw codec names, and checks what the
// typed subscriptions (Subscribe[Pose], Subscribe[*posepb.Pose],
// Subscribe[string]) do against an oracle, the codec called directly on a
// zero value: the same value is delivered when it decodes (so nothing of an
// earlier message leaks into a later one), else nothing is delivered and
// exactly one decode error is counted. Seeds are real encoded values.
func FuzzSubscribeTyped(f *testing.F) {
	for _, p := range []Pose{{}, {X: 1, Y: -2.5, Seq: 3}, {X: 1e308, Y: -1e-308, Seq: -1 << 62}} {
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	for _, p := range []*posepb.Pose{{}, {X: 1, Y: 2, Theta: 3, Frame: "map"}, {Frame: "base_link/🤖", Theta: -1e300}} {
		b, _ := proto.Marshal(p)
		f.Add(b)
	}
	for _, s := range []string{"", "null", `{"X":"1"}`, `{"Seq":1.5}`, `{"x":1,"X":2}`, "\xff", `{"X":1}trailing`, "\x0a\x02\xff\xfe", "\x80"} {
		f.Add([]byte(s))
	}
	pbName := protobuf.Codec{}.TypeName(&posepb.Pose{})
	net := colugotest.NewNetwork(f)
	a, b := net.NewNode("fuzz-pub"), net.NewNode("fuzz-sub")
	ctx := f.Context()
	jsonCh, err1 := colugo.Subscribe[Pose](ctx, b, "fz/json", colugo.WithBuffer(4))
	pbCh, err2 := colugo.Subscribe[*posepb.Pose](ctx, b, "fz/pb", colugo.WithCodec(protobuf.Codec{}), colugo.WithBuffer(4))
	rawCh, err3 := colugo.Subscribe[string](ctx, b, "fz/raw", colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(4))
	jsonPub, err4 := colugo.NewPublisher[[]byte](a, "fz/json", colugo.WithCodec(asCodec{"json", ""}))
	pbPub, err5 := colugo.NewPublisher[[]byte](a, "fz/pb", colugo.WithCodec(asCodec{"protobuf", pbName}))
	rawPub, err6 := colugo.NewPublisher[[]byte](a, "fz/raw", colugo.WithCodec(codec.Raw{}))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		f.Fatal(err)
	}
	// Connect: publish valid values until each subscription has one.
	deadline := time.Now().Add(wait)
	for _, c := range []struct {
		pub  *colugo.Publisher[[]byte]
		v    []byte
		recv func() bool
	}{
		{jsonPub, []byte("{}"), func() bool { return len(jsonCh) > 0 }},
		{pbPub, nil, func() bool { return len(pbCh) > 0 }},
		{rawPub, nil, func() bool { return len(rawCh) > 0 }},
	} {
		for !c.recv() {
			if time.Now().After(deadline) {
				f.Fatal("fuzz subscriptions never connected")
			}
			_ = c.pub.Publish(ctx, c.v)
			runtime.Gosched()
		}
	}
	// The connecting publishes may still be on their way: send a marker on
	// each topic and read up to it, so that every channel starts empty.
	markerPB, _ := proto.Marshal(&posepb.Pose{Frame: "marker"})
	_ = jsonPub.Publish(ctx, []byte(`{"Seq":-12345}`))
	_ = pbPub.Publish(ctx, markerPB)
	_ = rawPub.Publish(ctx, []byte("marker"))
	for v := (Pose{}); v.Seq != -12345; v = colugotest.Next(f, jsonCh, wait) {
	}
	for v := (*posepb.Pose)(nil); v.GetFrame() != "marker"; v = colugotest.Next(f, pbCh, wait) {
	}
	for v := ""; v != "marker"; v = colugotest.Next(f, rawCh, wait) {
	}
	drain := func() {
		for len(jsonCh)+len(pbCh)+len(rawCh) > 0 {
			select {
			case <-jsonCh:
			case <-pbCh:
			case <-rawCh:
			}
		}
	}
	decodeErrors := func(topic string) uint64 { return b.Stats().Topics[topic].DecodeErrors }
	// await waits for a value on ch or for one more decode error of topic.
	await := func(t *testing.T, topic string, errs0 uint64, n func() int) bool {
		deadline := time.Now().Add(wait)
		for {
			if n() > 0 {
				return true
			}
			if decodeErrors(topic) > errs0 {
				return false
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: neither a value nor a decode error", topic)
			}
			runtime.Gosched()
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		drain()
		je, pe := decodeErrors("fz/json"), decodeErrors("fz/pb")
		for _, p := range []*colugo.Publisher[[]byte]{jsonPub, pbPub, rawPub} {
			if err := p.Publish(ctx, data); err != nil {
				t.Fatal(err)
			}
		}

		var wantJSON Pose
		jerr := codec.JSON{}.Unmarshal(data, &wantJSON)
		if got := await(t, "fz/json", je, func() int { return len(jsonCh) }); got != (jerr == nil) {
			t.Fatalf("json: delivered = %v, but the codec says %v", got, jerr)
		} else if got {
			if v := <-jsonCh; v != wantJSON {
				t.Fatalf("json: delivered %+v, the codec gives %+v", v, wantJSON)
			}
		} else if n := decodeErrors("fz/json") - je; n != 1 {
			t.Fatalf("json: %d decode errors counted, want 1", n)
		}

		var wantPB *posepb.Pose
		perr := protobuf.Codec{}.Unmarshal(data, &wantPB)
		if got := await(t, "fz/pb", pe, func() int { return len(pbCh) }); got != (perr == nil) {
			t.Fatalf("protobuf: delivered = %v, but the codec says %v", got, perr)
		} else if got {
			v := <-pbCh
			opt := proto.MarshalOptions{Deterministic: true}
			gb, _ := opt.Marshal(v)
			wb, _ := opt.Marshal(wantPB)
			if !bytes.Equal(gb, wb) {
				t.Fatalf("protobuf: delivered %v, the codec gives %v", v, wantPB)
			}
		} else if n := decodeErrors("fz/pb") - pe; n != 1 {
			t.Fatalf("protobuf: %d decode errors counted, want 1", n)
		}

		if !await(t, "fz/raw", 0, func() int { return len(rawCh) }) {
			t.Fatal("raw: not delivered")
		}
		if v := <-rawCh; v != string(data) {
			t.Fatalf("raw: delivered %q, published %q", v, data)
		}
	})
}

// TestRequesterGoneCancelsHandlerAtOnce: a requester whose connection
// drops can no longer get the reply, so its handler's ctx ends at once,
// long before the request's own deadline.
func TestRequesterGoneCancelsHandlerAtOnce(t *testing.T) {
	victim := hostileNode(t, "victim", t.TempDir())
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	_, _ = colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return 0, ctx.Err()
	})
	p := zmtptest.Dial(t, victim.Endpoint().Router, "DEALER")
	p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), zmtptest.Header(wire.KindRequest, 1, int64(time.Minute)), []byte("1")))
	<-started
	dropped := time.Now()
	_ = p.Conn.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ctx: %v, want Canceled", err)
		}
		t.Logf("connection drop to handler cancelled: %v", time.Since(dropped))
	case <-time.After(5 * time.Second):
		t.Fatal("handler still running 5s after its requester's connection dropped (its deadline is 1 min)")
	}
}

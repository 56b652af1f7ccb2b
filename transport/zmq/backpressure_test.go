package zmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
)

// bpOf returns the publisher's view of its subscriber connections: topics
// and back-pressure topics, summed.
func bpOf(pub *node) (topics, bp int) {
	for _, s := range pub.Stats().Subscribers {
		topics += s.Topics
		bp += s.BackPressure
	}
	return topics, bp
}

// TestBackPressureMarker: the back-pressure request travels as its own
// subscription, so the publisher knows it per connection and topic;
// subscribing again with other options sends or cancels it, and a redial
// sends it again.
func TestBackPressureMarker(t *testing.T) {
	t.Parallel()
	rec := transporttest.NewRecorder()
	pub, _ := listen(t, &nopHandler{})
	sub, _ := listen(t, rec)
	subscribeLive(t, pub, sub, rec, "t")
	want := func(topics, bp int) {
		t.Helper()
		testwait.Until(t, "", func() bool { a, b := bpOf(pub); return a == topics && b == bp })
	}
	want(1, 0)
	bpOn := transport.SubscribeOptions{BackPressure: true}
	if err := sub.Subscribe(pub.ep.Pub, "t", bpOn); err != nil {
		t.Fatal(err)
	}
	want(1, 1)
	if err := sub.Subscribe(pub.ep.Pub, "t", transport.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	want(1, 0)
	if err := sub.Subscribe(pub.ep.Pub, "t", bpOn); err != nil {
		t.Fatal(err)
	}
	want(1, 1)
	// The marker matches no name: only "t" is delivered, once.
	if err := publishNow(pub, pubMsg("t", 1, nil)); err != nil {
		t.Fatal(err)
	}
	if m := nextReal(t, rec.Publishes); m.Name != "t" || m.Header.Seq != 1 {
		t.Fatalf("got %q seq %d", m.Name, m.Header.Seq)
	}
	// Cut the connection at the publisher: the redial resends both.
	pub.mu.Lock()
	for c := range pub.conns {
		c.close(errors.New("test: cut"), false)
	}
	pub.mu.Unlock()
	testwait.Until(t, "", func() bool {
		return pub.Stats().PeersLost == 0 && len(pub.Stats().Subscribers) == 0 || sub.Stats().PeersLost > 0
	})
	want(1, 1)
	if err := sub.Unsubscribe(pub.ep.Pub, "t"); err != nil {
		t.Fatal(err)
	}
	want(0, 0)
}

// TestBackPressureHostile: subscribers that ask for back-pressure and
// then never read (many of them), and one that reads a message a second,
// cost a publisher one MaxWait per episode, not one per publish: its
// waits stay bounded, a healthy subscriber keeps its rate and misses
// nothing, the send budget holds (plus each connection's reserve), and
// every miss is counted on the connection that missed it.
func TestBackPressureHostile(t *testing.T) {
	const (
		stalled = 50
		budget  = 1 * mib
		maxWait = 200 * time.Millisecond
		n       = 4000
	)
	pub, ep := listen(t, &nopHandler{}, WithSendQueueBytes(256<<10), WithSendBudget(budget),
		WithPeerTimeout(time.Minute)) // the raw peers send no heartbeats
	hostile := func() *zmtptest.Peer {
		p := zmtptest.DialRaw(t, ep.Pub)
		// A small receive buffer: the queues fill after fewer publishes.
		if err := p.Conn.(*net.TCPConn).SetReadBuffer(8 << 10); err != nil {
			t.Fatal(err)
		}
		p.Handshake(t, "SUB")
		subscribeRaw(t, p, bpMarker+"t\x00", true)
		subscribeRaw(t, p, "t\x00", true)
		return p
	}
	for range stalled {
		hostile()
	}
	trickler := hostile()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() { // reads one frame a second: a consumer that barely moves
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			_ = trickler.Conn.SetReadDeadline(time.Now().Add(testWait))
			if _, _, err := zmtptest.ReadFrame(trickler.R); err != nil {
				return
			}
		}
	})
	var got atomic.Int64
	healthy := &tallyHandler{n: &got}
	sub, _ := listen(t, healthy)
	if err := sub.Subscribe(ep.Pub, "t", transport.SubscribeOptions{BackPressure: true}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "", func() bool { return pub.Subscribers("t") == stalled+2 })
	testwait.Until(t, "", func() bool { _, bp := bpOf(pub); return bp == stalled+2 })

	// First 400 of 16 KiB (shared by the queues: cheap), 6.4 MiB to each,
	// more than the socket buffers take; then small ones, copied into
	// each queue (under shareMin): 52 queues of 256 KiB are more than the
	// send budget.
	big, small := make([]byte, 16<<10), make([]byte, 256)
	// One episode per connection at most (they overlap when queues fill
	// together), each MaxWait and a little (timers, a loaded machine):
	// never a wait per publish.
	waitBound := (stalled + 1) * maxWait * 3 / 2
	var longest, waited time.Duration
	start := time.Now()
	for i := uint64(1); i <= n; i++ {
		t0 := time.Now()
		payload := small
		if i <= 400 {
			payload = big
		}
		res, err := pub.Publish(context.Background(), pubMsg("t", i, payload), transport.PublishOptions{MaxWait: maxWait})
		took := time.Since(t0)
		if err != nil || res.Subscribers != stalled+2 {
			t.Fatalf("publish %d: %+v, %v", i, res, err)
		}
		longest = max(longest, took)
		if took > maxWait/2 {
			waited += took
		}
		if waited > waitBound {
			t.Fatalf("after %d publishes, %v spent waiting for %d subscribers that do not read; MaxWait is %v", i, waited, stalled+1, maxWait)
		}
	}
	elapsed := time.Since(start)
	testwait.Until(t, "", func() bool { return got.Load() == n })
	st := pub.Stats()
	held := pub.sendHeld.Load()
	var missed int
	for _, s := range st.Subscribers {
		if s.Dropped > 0 {
			missed++
			if !s.Slow {
				t.Errorf("a connection that missed %d messages is not marked slow: %+v", s.Dropped, s)
			}
		}
	}
	t.Logf("%d publishes in %v: longest %v, %v in waits of over MaxWait/2; send budget in use %.1f MiB; %d connections missed messages, %d drops",
		n, elapsed, longest, waited, float64(held)/mib, missed, st.SendDropped)
	if longest > maxWait+time.Second {
		t.Errorf("one publish took %v, MaxWait is %v", longest, maxWait)
	}
	if waited > waitBound {
		t.Errorf("publishes waited %v in all for %d subscribers that do not read; MaxWait is %v", waited, stalled+1, maxWait)
	}
	if bound := int64(budget + (stalled+2)*sendReserve); held > bound+64<<10 {
		t.Errorf("send budget in use %d, the documented bound is %d", held, bound)
	}
	if missed != stalled+1 {
		t.Errorf("%d connections missed messages, want the %d that do not keep up", missed, stalled+1)
	}
}

// tallyHandler counts publishes and keeps nothing.
type tallyHandler struct {
	nopHandler
	n *atomic.Int64
}

func (h *tallyHandler) HandlePublish(m *transport.Message) {
	if m.Header.Seq != 0 {
		h.n.Add(1)
	}
}

// blockOnce blocks in its first real publish for d.
type blockOnce struct {
	nopHandler
	d       time.Duration
	once    sync.Once
	blocked chan struct{} // closed when the block starts
	got     atomic.Int64
}

func (h *blockOnce) HandlePublish(m *transport.Message) {
	if m.Header.Seq == 0 {
		return
	}
	h.once.Do(func() {
		close(h.blocked)
		time.Sleep(h.d) // a subscription that blocks for its consumer
	})
	h.got.Add(1)
}

// TestBlockingHandlerNotSilent: a reader held in its handler longer than
// the peer timeout (a Block subscription waiting for its consumer) is not
// taken for a silent publisher, nor for a slow sender of large messages,
// and the publisher keeps the subscriber: the messages sent meanwhile
// arrive once it resumes.
func TestBlockingHandlerNotSilent(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1 << 10, 100 << 10} { // under and over recvFree (the minimum-rate deadline)
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			h := &blockOnce{d: DefaultPeerTimeout * 3 / 2, blocked: make(chan struct{})}
			pub, _ := listen(t, &nopHandler{})
			sub, _ := listen(t, h)
			if err := sub.Subscribe(pub.ep.Pub, "t", transport.SubscribeOptions{BackPressure: true}); err != nil {
				t.Fatal(err)
			}
			testwait.Until(t, "", func() bool { return pub.Subscribers("t") == 1 })
			payload := make([]byte, size)
			if err := publishNow(pub, pubMsg("t", 1, payload)); err != nil {
				t.Fatal(err)
			}
			<-h.blocked
			const n = 50
			for i := uint64(2); i <= n; i++ { // while the handler blocks
				if err := publishNow(pub, pubMsg("t", i, payload)); err != nil {
					t.Fatal(err)
				}
			}
			testwait.Until(t, "", func() bool { return h.got.Load() == n })
			if st := sub.Stats(); st.PeersLost != 0 || st.RecvDropped != 0 {
				t.Fatalf("subscriber after a %v block: %+v", h.d, st)
			}
			if st := pub.Stats(); st.SendDropped != 0 || len(st.Subscribers) != 1 || st.Subscribers[0].Dropped != 0 {
				t.Fatalf("publisher after its subscriber's %v block: %+v", h.d, st)
			}
		})
	}
}

package bridge_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// linkCut is how long TestLinkCut cuts the link (the 30 s);
// linkCutShort under -short.
const (
	linkCut      = 30 * time.Second
	linkCutShort = 2 * time.Second
	// recoverWithin is the bound on the time from the link's return to
	// traffic crossing again.
	recoverWithin = 5 * time.Second
)

// localLoad is a site's own traffic, paced, while the link is cut: a
// publisher and a subscriber of a topic, a client and a server of a
// service, all nodes of the site.
type localLoad struct {
	name    string
	stop    chan struct{} // closed by stopLoad
	pubDone chan struct{} // closed by the publisher once it has stopped
	got     chan int      // the subscriber's count, once the publisher has stopped
	done    sync.WaitGroup

	// The publisher's, read after pubDone.
	sent      int
	reqs      int
	errs      []error
	latencies []time.Duration
}

// startLocalLoad publishes on topic and requests service on net every
// 5 ms until stopLoad; subs is how many subscribers topic has on the site
// with the load's own (the exporting bridge is one).
func startLocalLoad(t *testing.T, net *colugotest.Network, name, topic, service string, subs int) *localLoad {
	t.Helper()
	ctx := t.Context()
	l := &localLoad{name: name, stop: make(chan struct{}), pubDone: make(chan struct{}), got: make(chan int, 1)}
	if _, err := colugo.Serve(net.NewNode(name+"-server"), service, func(_ context.Context, r int) (int, error) { return r + 1, nil }); err != nil {
		t.Fatal(err)
	}
	cli := net.NewNode(name + "-client")
	sub, err := colugo.Subscribe[int](ctx, net.NewNode(name+"-sub"), topic, colugo.WithBuffer(8192))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[int](net.NewNode(name+"-pub"), topic)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := pub.WaitSubscribers(wctx, subs); err != nil {
		t.Fatal(err)
	}
	if err := cli.WaitServers(wctx, service, 1); err != nil {
		t.Fatal(err)
	}
	// The subscriber counts the load's values (1 up; the test's own are
	// not positive) until it has all that were sent.
	l.done.Go(func() {
		n := 0
		for {
			select {
			case v := <-sub:
				if v > 0 {
					n++
				}
			case <-l.pubDone:
				deadline := time.After(wait)
				for n < l.sent {
					select {
					case v := <-sub:
						if v > 0 {
							n++
						}
					case <-deadline:
						l.got <- n
						return
					}
				}
				l.got <- n
				return
			}
		}
	})
	l.done.Go(func() {
		defer close(l.pubDone)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			if err := pub.Publish(ctx, i); err != nil {
				l.errs = append(l.errs, fmt.Errorf("publish %d: %w", i, err))
			}
			l.sent = i
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			start := time.Now()
			got, err := colugo.Request[int, int](rctx, cli, service, i)
			l.latencies = append(l.latencies, time.Since(start))
			cancel()
			l.reqs++
			if err != nil || got != i+1 {
				l.errs = append(l.errs, fmt.Errorf("request %d: %d, %v", i, got, err))
			}
		}
	})
	return l
}

// stopLoad ends the load and checks that the site had all of its own
// traffic: every local message arrived, every local request was answered.
func (l *localLoad) stopLoad(t *testing.T) {
	t.Helper()
	close(l.stop)
	got := <-l.got
	l.done.Wait()
	if got != l.sent || l.sent == 0 {
		t.Errorf("site %s during the cut: %d of %d local messages arrived", l.name, got, l.sent)
	}
	if len(l.errs) > 0 {
		t.Errorf("site %s during the cut: %d failures in %d local publishes and %d requests, first: %v", l.name, len(l.errs), l.sent, l.reqs, l.errs[0])
	}
	slices.Sort(l.latencies)
	if n := len(l.latencies); n > 0 {
		t.Logf("site %s during the cut: %d of %d local messages, %d local requests, round trip p50 %v p99 %v max %v",
			l.name, got, l.sent, l.reqs, l.latencies[n/2], l.latencies[n*99/100], l.latencies[n-1])
	}
}

// echoAcross serves a/echo on robot and returns a request to it from a
// node of site b, once site b sees it: err unless it answers within 500 ms.
func echoAcross(t *testing.T, robot *colugo.Node, b *colugotest.Network) func(v int) error {
	t.Helper()
	ctx := t.Context()
	if _, err := colugo.Serve(robot, "a/echo", func(_ context.Context, r int) (int, error) { return -r, nil }); err != nil {
		t.Fatal(err)
	}
	caller := b.NewNode("caller")
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := caller.WaitServers(wctx, "a/echo", 1); err != nil {
		t.Fatal(err)
	}
	return func(v int) error {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		got, err := colugo.Request[int, int](rctx, caller, "a/echo", v)
		if err == nil && got != -v {
			err = fmt.Errorf("a/echo(%d) = %d", v, got)
		}
		return err
	}
}

// TestLinkCut: both bridges' NATS connections go through a proxy that cuts
// them (drops the connections, refuses new ones) for linkCut. Meanwhile
// each site's own traffic goes on untouched (a local topic, the exported
// one on site a, and a local service), the bridges say the link is down
// and count what they could not send; once the link returns, the same
// bridges (no restart) carry topics and requests again within
// recoverWithin.
func TestLinkCut(t *testing.T) {
	cutFor := linkCut
	if testing.Short() {
		cutFor = linkCutShort
	}
	srv := natsServer(t, 0)
	px := newCutProxy(t, srv.Addr().String())
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{px.URL()},
		ReconnectBuffer: -1,          // drop at once while down: countable
		ReconnectWait:   time.Second, // the default, as deployed
	}}
	ca.Export = bridge.Lists{Topics: []bridge.Topic{{Name: "pose"}}, Services: []bridge.Service{{Name: "a/echo"}}}
	ba, _ := runBridge(t, a, ca)
	cb := bridge.Config{Site: "b", NATS: bridge.NATS{URLs: []string{px.URL()}, ReconnectWait: time.Second}}
	cb.Import = ca.Export
	bb, _ := runBridge(t, b, cb)
	ctx := t.Context()

	// Across: a/pose to site b, a/echo from site b.
	remote, _ := colugo.Subscribe[int](ctx, b.NewNode("viewer"), "pose", colugo.WithBuffer(8192))
	robot := a.NewNode("robot")
	pub, _ := colugo.NewPublisher[int](robot, "pose")
	bridged := echoAcross(t, robot, b)
	until(t, "pose before the cut", func() { _ = pub.Publish(ctx, -1) }, recv(remote, func(v int) bool { return v == -1 }))
	testwait.Until(t, "a/echo before the cut", func() bool { return bridged(1) == nil })

	loadA := startLocalLoad(t, a, "a", "pose", "a/local", 2) // pose is exported: the bridge tries to send it
	loadB := startLocalLoad(t, b, "b", "b/local", "b/svc", 1)
	px.Cut()
	cutAt := time.Now()
	testwait.Until(t, "link down on both bridges", func() bool {
		return ba.Stats().Link == bridge.LinkDown && bb.Stats().Link == bridge.LinkDown
	})
	t.Logf("link down on both bridges %v after the cut", time.Since(cutAt))
	// A bridged request fails within its deadline instead of hanging.
	start := time.Now()
	if err := bridged(2); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("bridged request during the cut: %v after %v; want an error within its 500ms", err, time.Since(start))
	}
	testwait.Until(t, "export drops counted", func() bool { return ba.Stats().Export.Drops.Link > 0 })
	time.Sleep(time.Until(cutAt.Add(cutFor))) // the cut's length itself, not a synchronisation
	if st := ba.Stats(); st.Link != bridge.LinkDown {
		t.Errorf("site a's link at the end of the cut: %s", st.Link)
	}
	loadA.stopLoad(t)
	loadB.stopLoad(t)
	stA, stB := ba.Stats(), bb.Stats()
	t.Logf("after %v cut: site a %+v; site b link %s, disconnects %d", cutFor, stA.Export, stB.Link, stB.Disconnects)
	if stA.Export.Drops.Link == 0 || stA.Disconnects == 0 || stB.Disconnects == 0 {
		t.Errorf("drops %d, disconnects a %d b %d: want all counted", stA.Export.Drops.Link, stA.Disconnects, stB.Disconnects)
	}

	px.Restore()
	back := time.Now()
	const mark = 1 << 20 // values published after the link's return
	i := mark
	until(t, "pose after the cut", func() { i++; _ = pub.Publish(ctx, i) }, recv(remote, func(v int) bool { return v > mark }))
	topicBack := time.Since(back)
	testwait.Until(t, "a/echo after the cut", func() bool { return bridged(3) == nil })
	reqBack := time.Since(back)
	t.Logf("after the link's return: a topic crosses in %v, a bridged request in %v", topicBack, reqBack)
	if topicBack > recoverWithin || reqBack > recoverWithin {
		t.Errorf("recovery: topic %v, request %v; want both within %v", topicBack, reqBack, recoverWithin)
	}
	if stA, stB := ba.Stats(), bb.Stats(); stA.Link != bridge.LinkUp || stB.Link != bridge.LinkUp || stA.Reconnects == 0 || stB.Reconnects == 0 {
		t.Errorf("after the cut: a %s (%d reconnects), b %s (%d reconnects)", stA.Link, stA.Reconnects, stB.Link, stB.Reconnects)
	}
}

// stallDetect bounds the time from a link going silent to both bridges
// saying it is down: two unanswered pings at the default PingInterval
// (5 s), and the interval before the first.
const stallDetect = 20 * time.Second

// TestLinkStall: the link goes silent rather than failing (the proxy
// passes no byte either way and closes nothing, as a radio out of range or
// a middlebox dropping packets), while site a exports a bulky topic that
// fills the socket buffers. Each site's own traffic goes on untouched, a
// bridged request fails within its deadline, both bridges say the link is
// down within stallDetect (with nats.go's defaults they said up for
// minutes, each write blocked for up to a minute), and once bytes pass
// again the same bridges carry topics and requests within recoverWithin.
func TestLinkStall(t *testing.T) {
	srv := natsServer(t, 0)
	px := newCutProxy(t, srv.Addr().String())
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{px.URL()}}}
	ca.Export = bridge.Lists{Topics: []bridge.Topic{{Name: "pose"}, {Name: "scan"}}, Services: []bridge.Service{{Name: "a/echo"}}}
	ba, _ := runBridge(t, a, ca)
	cb := bridge.Config{Site: "b", NATS: bridge.NATS{URLs: []string{px.URL()}}}
	cb.Import = ca.Export
	bb, _ := runBridge(t, b, cb)
	ctx := t.Context()

	viewer := b.NewNode("viewer")
	remote, _ := colugo.Subscribe[int](ctx, viewer, "pose", colugo.WithBuffer(8192))
	scans, _ := colugo.Subscribe[[]byte](ctx, viewer, "scan")
	robot := a.NewNode("robot")
	pub, _ := colugo.NewPublisher[int](robot, "pose")
	scanPub, _ := colugo.NewPublisher[[]byte](robot, "scan")
	bridged := echoAcross(t, robot, b)
	until(t, "pose before the stall", func() { _ = pub.Publish(ctx, -1) }, recv(remote, func(v int) bool { return v == -1 }))
	until(t, "scan before the stall", func() { _ = scanPub.Publish(ctx, []byte{1}) }, recv(scans, func([]byte) bool { return true }))
	testwait.Until(t, "a/echo before the stall", func() bool { return bridged(1) == nil })

	loadA := startLocalLoad(t, a, "a", "pose", "a/local", 2)
	loadB := startLocalLoad(t, b, "b", "b/local", "b/svc", 1)
	// 64 KiB scans at 200 Hz (12.5 MiB/s) for the bridge to send: more
	// than the socket buffers hold within a second or two.
	scanStop, scanDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(scanDone)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		scan := make([]byte, 64<<10)
		for {
			select {
			case <-scanStop:
				return
			case <-tick.C:
				_ = scanPub.Publish(ctx, scan)
			}
		}
	}()
	px.Stall()
	stallAt := time.Now()
	// A bridged request fails within its deadline instead of hanging,
	// before and after the bridges see the stall.
	for i := range 3 {
		start := time.Now()
		if err := bridged(10 + i); err == nil || time.Since(start) > 2*time.Second {
			t.Errorf("bridged request %d during the stall: %v after %v; want an error within its 500ms", i, err, time.Since(start))
		}
	}
	// Stats and Status (the node's $describe) answer at once throughout,
	// also while a write to the silent link blocks.
	var downA, downB, slowest time.Duration
	deadline := stallAt.Add(stallDetect)
	for (downA == 0 || downB == 0) && time.Now().Before(deadline) {
		start := time.Now()
		linkA, linkB := ba.Stats().Link, bb.Stats().Link
		_, _ = ba.Status(), bb.Status()
		slowest = max(slowest, time.Since(start))
		if downA == 0 && linkA != bridge.LinkUp {
			downA = time.Since(stallAt)
		}
		if downB == 0 && linkB != bridge.LinkUp {
			downB = time.Since(stallAt)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	if slowest > time.Second {
		t.Errorf("Stats and Status of both bridges took up to %v during the stall; want them at once", slowest)
	}
	t.Logf("link down after the stall: site a %v, site b %v (0: not within %v)", downA, downB, stallDetect)
	if downA == 0 || downB == 0 {
		t.Errorf("a silent link: site a's bridge says %s, site b's %s, %v after it went silent; want both down within %v",
			ba.Stats().Link, bb.Stats().Link, time.Since(stallAt), stallDetect)
	}
	if err := bridged(20); err == nil {
		t.Error("bridged request with the link down: no error")
	}
	close(scanStop)
	<-scanDone
	loadA.stopLoad(t)
	loadB.stopLoad(t)
	stA := ba.Stats()
	t.Logf("after the stall: site a export %+v, disconnects %d; site b disconnects %d", stA.Export, stA.Disconnects, bb.Stats().Disconnects)
	if d := stA.Export.Drops; d.Queue+d.Link == 0 {
		t.Errorf("site a's export drops during the stall: %+v; want the scans it could not send counted", d)
	}

	px.Restore()
	back := time.Now()
	const mark = 1 << 20
	i := mark
	until(t, "pose after the stall", func() { i++; _ = pub.Publish(ctx, i) }, recv(remote, func(v int) bool { return v > mark }))
	topicBack := time.Since(back)
	testwait.Until(t, "a/echo after the stall", func() bool { return bridged(3) == nil })
	reqBack := time.Since(back)
	t.Logf("after the link's return: a topic crosses in %v, a bridged request in %v", topicBack, reqBack)
	if topicBack > recoverWithin || reqBack > recoverWithin {
		t.Errorf("recovery: topic %v, request %v; want both within %v", topicBack, reqBack, recoverWithin)
	}
}

// TestCloseOnSilentLink: a bridge closed while its link is silent and its
// writes blocked (a radio gone out of range mid-burst) returns within a
// few seconds, not after NATS.WriteTimeout for each write its shutdown
// makes (unsubscribes, the final flush), and leaves no goroutine behind.
func TestCloseOnSilentLink(t *testing.T) {
	srv := natsServer(t, 0)
	px := newCutProxy(t, srv.Addr().String())
	a := colugotest.NewNetwork(t)
	ca := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{px.URL()},
		WriteTimeout: time.Minute, PingInterval: time.Minute}} // neither ends the wait
	ca.Export = bridge.Lists{Topics: []bridge.Topic{{Name: "scan"}}}
	node := a.NewNode("bridge-a")
	ba, err := bridge.New(node, ca)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- ba.Run(context.Background()) }()
	ctx := t.Context()
	pub, _ := colugo.NewPublisher[[]byte](a.NewNode("robot"), "scan")
	if err := pub.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the link up", func() bool { return ba.Stats().Link == bridge.LinkUp })
	px.Stall()
	// Scans until the bridge's writes block: its queue then fills.
	scan := make([]byte, 64<<10)
	testwait.Until(t, "the bridge's writes blocked", func() bool {
		for range 16 {
			_ = pub.Publish(ctx, scan)
		}
		return ba.Stats().Queued > 1<<20
	})
	start := time.Now()
	if err := ba.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Close took %v on a silent link; want a few seconds", took)
	} else {
		t.Logf("Close took %v", took)
	}
	if err := <-ran; err != nil {
		t.Errorf("Run: %v", err)
	}
	px.Restore()
}

package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testkit"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport/zmq"
)

// Chaos under load, bounded in count and time, on loopback: repliers and a
// publisher in child processes killed with SIGKILL and restarted, and
// subscribers that stop reading. Each test logs its figures.

const (
	chaosRoleEnv = "COLUGO_CHAOS_ROLE"
	chaosDirEnv  = "COLUGO_CHAOS_DIR"
	chaosNameEnv = "COLUGO_CHAOS_NAME"
)

// chaosRole is a child process of the chaos tests, a node that serves
// chaos/work ("replier") or publishes chaos/ticks every millisecond
// ("publisher") until its stdin closes or 30 s pass.
func chaosRole(t *testing.T) {
	role, dir, name := os.Getenv(chaosRoleEnv), os.Getenv(chaosDirEnv), os.Getenv(chaosNameEnv)
	node, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond))))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	me := fmt.Sprintf("%s/%d", name, os.Getpid())
	var pub *colugo.Publisher[int]
	switch role {
	case "replier":
		if _, err := colugo.Serve(node, "chaos/work", func(ctx context.Context, n int) (string, error) { return me, nil }); err != nil {
			t.Fatal(err)
		}
	case "publisher":
		if pub, err = colugo.NewPublisher[int](node, "chaos/ticks"); err != nil {
			t.Fatal(err)
		}
	}
	stdinClosed := make(chan struct{})
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n'); close(stdinClosed) }()
	os.Stdout.WriteString("ready " + me + "\n")
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(30 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-stdinClosed:
			return
		case <-timeout:
			return
		case <-tick.C:
			if pub != nil {
				_ = pub.Publish(t.Context(), i)
			}
		}
	}
}

// startChaos runs chaosRole as role, registered in dir as name.
func startChaos(t *testing.T, dir, role, name string) *child {
	t.Helper()
	c := spawn(t, "chaos", chaosRoleEnv+"="+role, chaosDirEnv+"="+dir, chaosNameEnv+"="+name)
	c.router = strings.TrimSpace(strings.TrimPrefix(c.expect(t, "ready"), "ready")) // here: name/pid
	return c
}

func chaosNode(t *testing.T, name, dir string, opts ...colugo.NodeOption) *colugo.Node {
	t.Helper()
	n, err := colugo.NewNode(name, append([]colugo.NodeOption{colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

var rawCodec = codec.Raw{}

type outcome struct {
	start, end time.Time
	who        string
	err        error
}

// TestChaosReplierKill: two repliers in child processes serve a steady
// load from four callers; one is killed with SIGKILL, then restarted.
// No request may outlive its deadline, every error must be ErrPeerLost,
// the load must move to the survivor within the liveness window, and the
// restarted replier must get requests again.
func TestChaosReplierKill(t *testing.T) {
	dir := t.TempDir()
	a := startChaos(t, dir, "replier", "rep-a")
	b := startChaos(t, dir, "replier", "rep-b")
	node := chaosNode(t, "caller", dir)
	events := node.Events(t.Context())
	wctx, wcancel := context.WithTimeout(t.Context(), wait)
	if err := node.WaitServers(wctx, "chaos/work", 2); err != nil {
		t.Fatalf("both repliers: %v", err)
	}
	wcancel()

	const workers, perRequest = 4, time.Second
	var mu sync.Mutex
	var results []outcome
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := 0; i < 20_000; i++ { // bounded; ends at stop
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(t.Context(), perRequest)
				o := outcome{start: time.Now()}
				o.who, o.err = colugo.Request[int, string](ctx, node, "chaos/work", i)
				o.end = time.Now()
				cancel()
				mu.Lock()
				results = append(results, o)
				mu.Unlock()
			}
		})
	}
	answeredBy := func(who string, after time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range results {
			if o.err == nil && o.who == who && o.start.After(after) {
				n++
			}
		}
		return n
	}
	start := time.Now()
	testwait.Until(t, "both repliers to answer", func() bool { return answeredBy(a.router, start) > 300 && answeredBy(b.router, start) > 300 })

	killed := time.Now()
	a.kill(t)
	left := nextEvent(t, events, discovery.Left, 3*time.Second)
	leftAt := time.Since(killed)
	if left.Peer.Name != "rep-a" {
		t.Fatalf("left: %+v", left.Peer)
	}
	testwait.Until(t, "the survivor to carry the load", func() bool { return answeredBy(b.router, killed.Add(leftAt)) > 600 })

	a2 := startChaos(t, dir, "replier", "rep-a")
	restarted := time.Now()
	for ev := nextEvent(t, events, discovery.Joined, wait); ev.Peer.Name != "rep-a"; ev = nextEvent(t, events, discovery.Joined, wait) {
	}
	joinedAt := time.Since(restarted)
	testwait.Until(t, "the restarted replier to answer", func() bool { return answeredBy(a2.router, restarted) > 200 })
	close(stop)
	wg.Wait()

	// Figures.
	var answered, hung, lost, other int
	var lastFail, lastA time.Time
	by := map[string]int{}
	var otherErrs []string
	for _, o := range results {
		if d := o.end.Sub(o.start); d > perRequest+500*time.Millisecond {
			hung++
		}
		switch {
		case o.err == nil:
			answered++
			by[strings.Split(o.who, "/")[0]]++
			if o.who == a.router && o.end.After(lastA) {
				lastA = o.end
			}
		case errors.Is(o.err, colugo.ErrPeerLost):
			lost++
			if o.end.After(lastFail) {
				lastFail = o.end
			}
		default:
			other++
			if len(otherErrs) < 5 {
				otherErrs = append(otherErrs, o.err.Error())
			}
		}
	}
	latest := lastFail
	if lastA.After(latest) {
		latest = lastA
	}
	reroute := latest.Sub(killed)
	t.Logf("load: %d callers, %.0f requests/s", workers, float64(len(results))/results[len(results)-1].end.Sub(results[0].start).Seconds())
	t.Logf("requests sent %d, answered %d (%v), failed ErrPeerLost %d, failed otherwise %d, hung %d", len(results), answered, by, lost, other, hung)
	t.Logf("SIGKILL → Left %v; SIGKILL → last request to the dead replier ended %v; restart → Joined %v", leftAt, reroute, joinedAt)
	if hung != 0 {
		t.Errorf("%d requests outlived their deadline", hung)
	}
	if other != 0 {
		t.Errorf("%d requests failed with an error other than ErrPeerLost: %q", other, otherErrs)
	}
	if reroute > 3*time.Second {
		t.Errorf("requests still went to the dead replier %v after the kill", reroute)
	}
}

// TestChaosPublisherRestart: a publisher in a child process is killed and
// restarted under the same name; the subscriber resumes with no action.
func TestChaosPublisherRestart(t *testing.T) {
	dir := t.TempDir()
	p1 := startChaos(t, dir, "publisher", "pub")
	node := chaosNode(t, "sub", dir)
	ticks, err := colugo.Subscribe[int](t.Context(), node, "chaos/ticks", colugo.WithBuffer(4096))
	if err != nil {
		t.Fatal(err)
	}
	events := node.Events(t.Context())
	first := colugotestNext(t, ticks)
	last := first
	for range 100 {
		v := colugotestNext(t, ticks)
		if v != last+1 {
			t.Fatalf("tick %d after %d", v, last)
		}
		last = v
	}
	killed := time.Now()
	p1.kill(t)
	nextEvent(t, events, discovery.Left, 3*time.Second)
	// Drain what arrived before the kill: the new publisher counts from 0.
	for drained := false; !drained; {
		select {
		case v := <-ticks:
			last = v
		default:
			drained = true
		}
	}
	startChaos(t, dir, "publisher", "pub")
	restarted := time.Now()
	v := colugotestNext(t, ticks)
	resumed := time.Since(restarted)
	if v >= last && v > 1000 {
		t.Fatalf("first tick after the restart is %d, the old publisher's last was %d", v, last)
	}
	prev := v
	for range 100 {
		w := colugotestNext(t, ticks)
		if w != prev+1 {
			t.Fatalf("tick %d after %d from the restarted publisher", w, prev)
		}
		prev = w
	}
	st := node.Stats().Topics["chaos/ticks"]
	t.Logf("old publisher: ticks %d..%d received; killed; restarted publisher's first tick to arrive: %d (published before the subscription reached it: lost, no history), %v after its start (%v after the kill); stats: received %d, gaps %d, dropped %d",
		first, last, v, resumed, time.Since(killed), st.Received, st.Gaps, st.Dropped)
	if st.Dropped != 0 || st.DecodeErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// stalledSub connects a raw SUB to addr that subscribes to topic and never
// reads, with a small receive buffer so the publisher's queue fills fast.
func stalledSub(t *testing.T, addr, topic string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	nc, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	p := zmtptest.NewPeer(nc)
	p.Write(t, zmtptest.Greeting(), zmtptest.Ready("SUB"))
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	if _, err := p.R.Discard(64); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Frame(); err != nil {
		t.Fatal(err)
	}
	p.Write(t, zmtptest.Frame(0, []byte("\x01"+topic+"\x00")))
	return nc
}

// TestChaosSlowSubscriber: two fast subscribers, then a subscriber whose
// channel is never read and a raw one whose socket is never read. The
// publisher and the fast subscribers must keep their rate, drops are
// counted on the slow ones only, and memory stays bounded.
func TestChaosSlowSubscriber(t *testing.T) {
	dir := t.TempDir()
	// A 1 MiB send queue: the stalled socket's fills within a phase (8 MiB
	// sent); the default 64 MiB would absorb it all.
	tr, err := zmq.New(zmq.WithSendQueueBytes(1 << 20))
	if err != nil {
		t.Fatal(err)
	}
	pubNode := chaosNode(t, "pub", dir, colugo.WithTransport(tr))
	fast := []*colugo.Node{chaosNode(t, "fast1", dir), chaosNode(t, "fast2", dir)}
	slowNode := chaosNode(t, "slow", dir)
	const topic = "chaos/flood"
	pub, err := colugo.NewPublisher[[]byte](pubNode, topic, colugo.WithCodec(rawCodec))
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 4096)
	var counts [2]atomic.Int64
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, n := range fast {
		ch, err := colugo.Subscribe[[]byte](ctx, n, topic, colugo.WithCodec(rawCodec), colugo.WithBuffer(1024))
		if err != nil {
			t.Fatal(err)
		}
		testkit.PublishUntil(t, pub, payload, ch)
		wg.Go(func() {
			for range ch {
				counts[i].Add(1)
			}
		})
	}

	// phase publishes at rate for d and returns what each fast subscriber
	// received per second, and the mean time of a Publish call in µs.
	const rate, d = 2000, time.Second
	phase := func() (got [2]float64, publishUS float64) {
		var c0 [2]int64
		for i := range counts {
			c0[i] = counts[i].Load()
		}
		tick := time.NewTicker(time.Millisecond) // pacing, not synchronisation
		defer tick.Stop()
		start := time.Now()
		sent, inPublish := 0, time.Duration(0)
		for time.Since(start) < d {
			<-tick.C
			for want := int(float64(rate) * time.Since(start).Seconds()); sent < want; sent++ {
				s := time.Now()
				if err := pub.Publish(ctx, payload); err != nil {
					t.Fatal(err)
				}
				inPublish += time.Since(s)
			}
		}
		// Everything sent must arrive at the fast ones.
		testwait.Until(t, "the fast subscribers to catch up", func() bool {
			return counts[0].Load()-c0[0] >= int64(sent) && counts[1].Load()-c0[1] >= int64(sent)
		})
		el := time.Since(start).Seconds()
		for i := range counts {
			got[i] = float64(counts[i].Load()-c0[i]) / el
		}
		return got, inPublish.Seconds() * 1e6 / float64(sent)
	}
	var ms runtime.MemStats
	before, fullBefore := phase()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapInuse

	// The slow ones: a node whose channel nobody reads, and a raw socket
	// nobody reads.
	if _, err := colugo.Subscribe[[]byte](ctx, slowNode, topic, colugo.WithCodec(rawCodec), colugo.WithBuffer(16), colugo.WithQueueBytes(64<<10)); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the slow node to be subscribed", func() bool {
		_ = pub.Publish(ctx, payload)
		return slowNode.Stats().Topics[topic].Received > 0
	})
	stalledSub(t, pubNode.Endpoint().Pub, topic)
	sendDropped0 := pubNode.Stats().Transport.SendDropped
	// Up to 3 phases with the slow ones: a slowdown they cause lasts, one
	// a loaded machine causes (once, in a full race run) passes.
	kept := func(during [2]float64) bool { return during[0] >= 0.8*before[0] && during[1] >= 0.8*before[1] }
	during, fullDuring := phase()
	for try := 1; try < 3 && !kept(during); try++ {
		t.Logf("fast subscribers msg/s during %.0f, %.0f (before %.0f, %.0f): again", during[0], during[1], before[0], before[1])
		during, fullDuring = phase()
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapGrowth := int64(ms.HeapInuse) - int64(heap0)

	slowSt := slowNode.Stats().Topics[topic]
	sendDropped := pubNode.Stats().Transport.SendDropped - sendDropped0
	t.Logf("fast subscribers msg/s before %.0f, %.0f; during %.0f, %.0f (paced at %d/s, 4 KiB); Publish call %.1f µs before, %.1f µs during",
		before[0], before[1], during[0], during[1], rate, fullBefore, fullDuring)
	t.Logf("slow node: received %d, dropped %d (buffer 16); stalled socket: publisher SendDropped %d; heap growth %d KiB",
		slowSt.Received, slowSt.Dropped, sendDropped, heapGrowth>>10)
	for i, n := range fast {
		if st := n.Stats().Topics[topic]; st.Dropped != 0 || st.Gaps != 0 {
			t.Errorf("fast subscriber %d: %+v", i, st)
		}
		if during[i] < 0.8*before[i] {
			t.Errorf("fast subscriber %d slowed from %.0f to %.0f msg/s", i, before[i], during[i])
		}
	}
	if slowSt.Dropped == 0 {
		t.Error("the slow node dropped nothing")
	}
	if sendDropped == 0 {
		t.Error("the stalled socket cost the publisher no drop: its queue is not bounded?")
	}
	if heapGrowth > 64<<20 {
		t.Errorf("heap grew by %d MiB with a stalled subscriber", heapGrowth>>20)
	}
}

package colugo_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testkit"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport/inproc"
	"github.com/colugo-go/colugo/transport/zmq"
)

// flowPair returns a publishing and a subscribing node: the same node, two
// inproc nodes, or two zmq nodes (registry in a temporary directory; pubTr
// is the publisher's transport options).
func flowPair(t *testing.T, kind string, pubOpts []colugo.NodeOption, pubTr ...zmq.Option) (pub, sub *colugo.Node) {
	t.Helper()
	switch kind {
	case "same":
		n := colugotest.NewNode(t, "n", pubOpts...)
		return n, n
	case "inproc":
		net := colugotest.NewNetwork(t)
		return net.NewNode("pub", pubOpts...), net.NewNode("sub")
	}
	dir := t.TempDir()
	mk := func(name string, opts []colugo.NodeOption, tro []zmq.Option) *colugo.Node {
		return zmqFlowNode(t, dir, name, opts, tro...)
	}
	return mk("pub", pubOpts, pubTr), mk("sub", nil, nil)
}

// TestBurstDelivered: with the default options, one healthy subscriber
// (a reader that does nothing else) receives all of a burst published as
// fast as Publish returns, in order, on the same node and on another one,
// with the Raw and the JSON codec. (Before the subscription queue, a
// 64-value channel lost most of such a burst.)
func TestBurstDelivered(t *testing.T) {
	bursts := []struct{ count, size int }{{100_000, 64}, {10_000, 1024}, {1000, 64 << 10}}
	for _, kind := range []string{"same", "inproc", "zmq"} {
		for _, c := range []codec.Codec{codec.Raw{}, codec.JSON{}} {
			for _, b := range bursts {
				t.Run(fmt.Sprintf("%s/%s/%dx%d", kind, c.Name(), b.count, b.size), func(t *testing.T) {
					if kind != "same" {
					}
					count, size := b.count, b.size
					if c.Name() == "json" {
						size = size * 3 / 4 // a []byte is base64 in JSON: the message is b.size bytes
					}
					if testkit.RaceOn() {
						count /= 10 // the race detector makes it 10 times slower, not different
					}
					pn, sn := flowPair(t, kind, nil)
					const topic = "burst"
					ch, err := colugo.Subscribe[[]byte](t.Context(), sn, topic, colugo.WithCodec(c))
					if err != nil {
						t.Fatal(err)
					}
					pub, err := colugo.NewPublisher[[]byte](pn, topic, colugo.WithCodec(c))
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithTimeout(t.Context(), wait)
					defer cancel()
					if err := pub.WaitSubscribers(ctx, 1); err != nil {
						t.Fatal(err)
					}
					got := make(chan error, 1)
					go func() {
						for i := range count {
							select {
							case v := <-ch:
								if n := int(binary.BigEndian.Uint32(v)); n != i || len(v) != size {
									got <- fmt.Errorf("value %d: got number %d of %d bytes", i, n, len(v))
									return
								}
							case <-ctx.Done():
								got <- fmt.Errorf("received %d of %d", i, count)
								return
							}
						}
						got <- nil
					}()
					payloads := make([][]byte, 64) // reused: Publish keeps nothing
					for i := range payloads {
						payloads[i] = testkit.Numbered(0, size)
					}
					start := time.Now()
					for i := range count {
						p := payloads[i%len(payloads)]
						binary.BigEndian.PutUint32(p, uint32(i))
						if err := pub.Publish(t.Context(), p); err != nil {
							t.Fatal(err)
						}
					}
					published := time.Since(start)
					if err := <-got; err != nil {
						t.Fatalf("%v; publisher %+v, subscriber %+v", err, pn.Stats().Topics[topic], sn.Stats().Topics[topic])
					}
					t.Logf("published %d in %v, all received in %v", count, published, time.Since(start))
					if st := sn.Stats().Topics[topic]; st.Dropped != 0 || st.Gaps != 0 {
						t.Fatalf("subscriber stats %+v", st)
					}
				})
			}
		}
	}
}

// TestQueueBytes: the drop policies apply at the queue's byte bound
// (payload length + QueueEntryOverhead per value), behind a full channel.
func TestQueueBytes(t *testing.T) {
	const size = 64
	for _, tc := range []struct {
		policy colugo.DropPolicy
		check  func(got []int) bool
		want   string
	}{
		{colugo.DropOldest, func(got []int) bool { return got[0] == 0 && got[3] == 9 && slices.IsSorted(got) }, "0, two of 1..8, 9"},
		{colugo.DropNewest, func(got []int) bool { return slices.Equal(got, []int{0, 1, 2, 3}) }, "0, 1, 2, 3"},
		// Without back-pressure a local publisher does not wait.
		{colugo.Block(time.Minute), func(got []int) bool { return slices.Equal(got, []int{0, 1, 2, 3}) }, "0, 1, 2, 3"},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			var slow atomic.Int64
			n := colugotest.NewNode(t, "n", colugo.WithErrorHandler(func(err error) {
				if errors.Is(err, colugo.ErrSlowConsumer) {
					slow.Add(1)
				}
			}))
			// A channel of 1 and a queue of 3 values.
			ch, err := colugo.Subscribe[[]byte](t.Context(), n, "t", colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(1),
				colugo.WithQueueBytes(3*(size+colugo.QueueEntryOverhead)), colugo.WithDropPolicy(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := colugo.NewPublisher[[]byte](n, "t", colugo.WithCodec(codec.Raw{}))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if err := pub.Publish(t.Context(), testkit.Numbered(i, size)); err != nil {
					t.Fatal(err)
				}
			}
			if d := n.Stats().Topics["t"].Dropped; d != 6 {
				t.Fatalf("dropped %d, want 6", d)
			}
			var got []int
			for range 4 {
				got = append(got, int(binary.BigEndian.Uint32(colugotest.Next(t, ch, wait))))
			}
			if !tc.check(got) {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
			select {
			case v := <-ch:
				t.Fatalf("a fifth value %v: the bound let more in", v[:4])
			default:
			}
			if s := slow.Load(); s != 1 {
				t.Fatalf("%d ErrSlowConsumer reports, want 1", s)
			}
		})
	}
}

// TestBackPressureStream: with WithBackPressure, a Block subscriber whose
// reader is slow gets every message of a stream published as fast as
// Publish returns, and the publisher is slowed to the reader's pace; on
// the same node and on another.
func TestBackPressureStream(t *testing.T) {
	for _, kind := range []string{"same", "inproc", "zmq"} {
		t.Run(kind, func(t *testing.T) {
			if kind != "same" {
			}
			const count, size = 400, 16 << 10
			// The publisher's send queues are small, so that the stream
			// outgrows what sits between publisher and reader.
			pn, sn := flowPair(t, kind, nil, zmq.WithSendQueueBytes(64<<10))
			const topic = "stream"
			ch, err := colugo.Subscribe[[]byte](t.Context(), sn, topic, colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(1),
				colugo.WithQueueBytes(4*size), colugo.WithDropPolicy(colugo.Block(time.Minute)))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := colugo.NewPublisher[[]byte](pn, topic, colugo.WithCodec(codec.Raw{}), colugo.WithBackPressure(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*wait)
			defer cancel()
			if err := pub.WaitSubscribers(ctx, 1); err != nil {
				t.Fatal(err)
			}
			var read atomic.Int64
			got := make(chan error, 1)
			go func() {
				for i := range count {
					select {
					case v := <-ch:
						if n := int(binary.BigEndian.Uint32(v)); n != i {
							got <- fmt.Errorf("value %d: got %d", i, n)
							return
						}
						read.Add(1)
						time.Sleep(200 * time.Microsecond) // the slow consumer (not synchronisation)
					case <-ctx.Done():
						got <- fmt.Errorf("received %d of %d", i, count)
						return
					}
				}
				got <- nil
			}()
			for i := range count {
				if err := pub.Publish(ctx, testkit.Numbered(i, size)); err != nil {
					t.Fatal(err)
				}
			}
			behind := count - int(read.Load())
			if err := <-got; err != nil {
				t.Fatalf("%v; publisher %+v, subscriber %+v", err, pn.Stats().Topics[topic], sn.Stats().Topics[topic])
			}
			if st := sn.Stats().Topics[topic]; st.Dropped != 0 || st.Gaps != 0 {
				t.Fatalf("subscriber stats %+v", st)
			}
			if st := pn.Stats().Topics[topic]; st.Missed != 0 {
				t.Fatalf("publisher stats %+v", st)
			}
			// On one node nothing but the channel and the queue is in
			// between: the publisher was at most that far ahead.
			if kind == "same" && behind > 1+4+1 {
				t.Fatalf("the publisher finished %d values ahead of the reader; back-pressure allows 6", behind)
			}
			t.Logf("publisher finished %d values ahead of the reader", behind)
		})
	}
}

// TestBackPressureBounded: bad input for back-pressure. Block subscribers
// that stop reading (many of them) and one that reads slowly cost a
// back-pressured publisher at most its bound per episode: Publish returns
// within it, a healthy subscriber gets every message, and the stalled
// ones' losses are counted and reported once per episode each.
func TestBackPressureBounded(t *testing.T) {
	for _, kind := range []string{"same", "inproc", "zmq"} {
		t.Run(kind, func(t *testing.T) {
			if kind != "same" {
			}
			var slowReports atomic.Int64
			onErr := colugo.WithErrorHandler(func(err error) {
				if errors.Is(err, colugo.ErrSlowConsumer) {
					slowReports.Add(1)
				}
			})
			// On other nodes, the healthy subscriber has a node of its own:
			// Block subscriptions hold up their node's connection.
			pn, sn, hn := flowNodes(t, kind, []colugo.NodeOption{onErr})
			const topic, stalledSubs, count, size = "bp", 8, 200, 1024
			const maxWait = 50 * time.Millisecond
			block := []colugo.SubscribeOption{colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(1), colugo.WithQueueBytes(size),
				colugo.WithDropPolicy(colugo.Block(time.Minute))}
			for range stalledSubs {
				if _, err := colugo.Subscribe[[]byte](t.Context(), sn, topic, block...); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			subCtx, subCancel := context.WithCancel(t.Context())
			defer subCancel() // before wg.Wait: the readers end with their channels
			slowCh, err := colugo.Subscribe[[]byte](subCtx, sn, topic, block...)
			if err != nil {
				t.Fatal(err)
			}
			healthy, err := colugo.Subscribe[[]byte](t.Context(), hn, topic, colugo.WithCodec(codec.Raw{}))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := colugo.NewPublisher[[]byte](pn, topic, colugo.WithCodec(codec.Raw{}), colugo.WithBackPressure(maxWait))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*wait)
			defer cancel()
			want := 2
			if kind == "same" {
				want = stalledSubs + 2
			}
			if err := pub.WaitSubscribers(ctx, want); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { // the slow one: a value every 5 ms
				for range slowCh {
					time.Sleep(5 * time.Millisecond) // the slow consumer (not synchronisation)
				}
			})
			got := make(chan error, 1)
			wg.Go(func() {
				for i := range count {
					select {
					case v := <-healthy:
						if n := int(binary.BigEndian.Uint32(v)); n != i {
							got <- fmt.Errorf("healthy: value %d: got %d", i, n)
							return
						}
					case <-ctx.Done():
						got <- fmt.Errorf("healthy: received %d of %d", i, count)
						return
					}
				}
				got <- nil
			})
			var longest time.Duration
			begin := time.Now()
			for i := range count {
				start := time.Now()
				if err := pub.Publish(ctx, testkit.Numbered(i, size)); err != nil {
					t.Fatal(err)
				}
				longest = max(longest, time.Since(start))
			}
			if err := <-got; err != nil {
				t.Fatalf("%v; publisher %+v %+v, healthy %+v", err, pn.Stats().Topics[topic], pn.Stats().Transport, hn.Stats().Topics[topic])
			}
			t.Logf("longest Publish %v (bound %v); publisher %+v, subscriber %+v", longest, maxWait,
				pn.Stats().Topics[topic], sn.Stats().Topics[topic])
			// Guards, not measurements: the bound holds for the whole
			// call (waiting it out per stalled subscriber would take 9
			// times as long), and a stalled subscriber is waited for once
			// per episode (per message would make every call wait it out).
			if longest > 6*maxWait {
				t.Fatalf("a Publish took %v, bound %v", longest, maxWait)
			}
			if total := time.Since(begin); total > count*maxWait/2 {
				t.Fatalf("%d Publish calls took %v: the stalled subscribers were waited for again and again", count, total)
			}
			st := sn.Stats().Topics[topic]
			if kind == "same" && st.Dropped < stalledSubs*(count-2) {
				t.Fatalf("subscriber dropped %d, want at least %d (the stalled ones)", st.Dropped, stalledSubs*(count-2))
			}
			// (On other nodes the transports' queues may hold it all.)
			if kind == "same" && slowReports.Load() == 0 {
				t.Fatal("no ErrSlowConsumer reported")
			}
		})
	}
}

// TestStalledSubscriberReported: a subscriber node whose reader stalls
// makes the publisher's queue for it overflow. The publisher counts what
// the connection missed (TopicStats.Missed) at once, reports
// ErrSlowConsumer once, and, once the subscriber resumes, its tail marker
// makes the subscriber count the lost tail as gaps: every published
// message is either received or counted, also with a network key.
func TestStalledSubscriberReported(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		kind string
		key  bool
	}{{"inproc", false}, {"inproc", true}, {"zmq", false}, {"zmq", true}} {
		t.Run(fmt.Sprintf("%s/key=%v", tc.kind, tc.key), func(t *testing.T) {
			var slowReports atomic.Int64
			opts := []colugo.NodeOption{colugo.WithErrorHandler(func(err error) {
				if errors.Is(err, colugo.ErrSlowConsumer) {
					slowReports.Add(1)
				}
			})}
			// hn is a healthy subscriber, which gets the tail markers too.
			var pn, sn, hn *colugo.Node
			if tc.key {
				pn, sn, hn = keyedNodes(t, tc.kind, key, opts)
			} else {
				pn, sn, hn = flowNodes(t, tc.kind, opts, zmq.WithSendQueueBytes(64<<10), zmq.WithSendQueue(64))
			}
			const topic, size = "stall", 1024
			count := 20_000 // beyond the send queue and, over TCP, the socket buffers
			if tc.kind == "inproc" {
				count = 2 * inproc.DefaultQueueBytes / size // beyond its byte bound
			}
			resume := make(chan struct{})
			var wg sync.WaitGroup
			defer wg.Wait()
			subCtx, subCancel := context.WithCancel(t.Context())
			defer subCancel() // before wg.Wait: the reader ends with the channel
			ch, err := colugo.Subscribe[[]byte](subCtx, sn, topic, colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(1),
				colugo.WithQueueBytes(1), colugo.WithDropPolicy(colugo.Block(time.Minute)))
			if err != nil {
				t.Fatal(err)
			}
			healthy, err := colugo.Subscribe[[]byte](subCtx, hn, topic, colugo.WithCodec(codec.Raw{}))
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				for range healthy {
				}
			})
			pub, err := colugo.NewPublisher[[]byte](pn, topic, colugo.WithCodec(codec.Raw{}))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*wait)
			defer cancel()
			if err := pub.WaitSubscribers(ctx, 2); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				<-resume // stalled until then
				for range ch {
				}
			})
			defer close(resume)
			p := testkit.Numbered(0, size)
			for range count {
				if err := pub.Publish(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			ps := pn.Stats()
			missed := ps.Topics[topic].Missed
			if missed == 0 {
				t.Fatalf("publisher counted no miss: %+v", ps.Topics[topic])
			}
			// The connection's reader or writer makes room now and then
			// until it stalls, and a publish that gets through ends an
			// episode: a few episodes, not one report per miss.
			if s := slowReports.Load(); s == 0 || s > 10 {
				t.Fatalf("%d ErrSlowConsumer reports for %d misses, want one per episode", s, missed)
			}
			for _, s := range ps.Transport.Subscribers { // when the transport tracks them
				if s.Dropped > 0 {
					t.Logf("subscriber connection %+v", s)
				}
			}
			resume <- struct{}{}
			start := time.Now()
			counted(t, sn, topic, count)
			st := sn.Stats().Topics[topic]
			t.Logf("publisher missed %d; subscriber %+v, complete %v after resuming", missed, st, time.Since(start))
			if st.Gaps == 0 || st.Gaps > missed {
				t.Fatalf("subscriber gaps %d, publisher missed %d", st.Gaps, missed)
			}
			// The healthy one may have missed some of the burst too: what
			// it lacks is counted, and markers it did not need cost nothing.
			counted(t, hn, topic, count)
			for name, n := range map[string]*colugo.Node{"stalled": sn, "healthy": hn} {
				if af := n.Stats().AuthFailures; af != 0 {
					t.Fatalf("%s subscriber: %d auth failures: tail markers must pass the replay guard", name, af)
				}
			}
		})
	}
}

// counted waits until the subscriber node n has received or counted as
// gaps all of the count messages published on topic. A connection lost
// and remade meanwhile (a heavily loaded machine misses heartbeats) may
// lose a tail in transit that nobody can tell: then the test is skipped.
func counted(t *testing.T, n *colugo.Node, topic string, count int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		st := n.Stats()
		if got := st.Topics[topic].Received + st.Topics[topic].Gaps; got == uint64(count) {
			return
		} else if time.Now().After(deadline) {
			if st.Transport.PeersLost > 0 {
				t.Skipf("%s: received + gaps = %d of %d after %d connections were lost and remade (a tail lost in transit is not told)",
					n.Name(), got, count, st.Transport.PeersLost)
			}
			t.Fatalf("%s: received + gaps = %d, published %d: %+v", n.Name(), got, count, st.Topics[topic])
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

// flowNodes is flowPair with a third node, another subscriber.
func flowNodes(t *testing.T, kind string, pubOpts []colugo.NodeOption, pubTr ...zmq.Option) (pub, sub, other *colugo.Node) {
	t.Helper()
	switch kind {
	case "same":
		n := colugotest.NewNode(t, "n", pubOpts...)
		return n, n, n
	case "inproc":
		net := colugotest.NewNetwork(t)
		return net.NewNode("pub", pubOpts...), net.NewNode("sub"), net.NewNode("other")
	}
	dir := t.TempDir()
	mk := func(name string, opts []colugo.NodeOption, tro []zmq.Option) *colugo.Node {
		return zmqFlowNode(t, dir, name, opts, tro...)
	}
	return mk("pub", pubOpts, pubTr), mk("sub", nil, nil), mk("other", nil, nil)
}

// keyedNodes is flowNodes for three nodes with the network key, the
// publisher's zmq send queues small.
func keyedNodes(t *testing.T, kind string, key []byte, pubOpts []colugo.NodeOption) (pub, sub, other *colugo.Node) {
	t.Helper()
	k := colugo.WithKey(key)
	pubOpts, subOpts := append([]colugo.NodeOption{k}, pubOpts...), []colugo.NodeOption{k}
	if kind == "inproc" {
		net := colugotest.NewNetwork(t)
		return net.NewNode("kpub", pubOpts...), net.NewNode("ksub", subOpts...), net.NewNode("kother", subOpts...)
	}
	dir := t.TempDir()
	mk := func(name string, opts []colugo.NodeOption, tro ...zmq.Option) *colugo.Node {
		return zmqFlowNode(t, dir, name, opts, tro...)
	}
	return mk("kpub", pubOpts, zmq.WithSendQueueBytes(64<<10), zmq.WithSendQueue(64)), mk("ksub", subOpts), mk("kother", subOpts)
}

// TestBackPressureDoesNotStallNode: with a network key, a publish waiting
// for a stalled back-pressure subscriber holds its topic's sequence lock;
// a $describe from a node that joins meanwhile must not wait for it under
// the node's lock, which would stall the whole publishing node for up to
// maxWait.
func TestBackPressureDoesNotStallNode(t *testing.T) {
	key := colugo.WithKey([]byte("0123456789abcdef0123456789abcdef"))
	dir := t.TempDir()
	mk := func(name string, tro ...zmq.Option) *colugo.Node {
		tr, err := zmq.New(append([]zmq.Option{zmq.WithHost("127.0.0.1")}, tro...)...)
		if err != nil {
			t.Fatal(err)
		}
		n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir))), colugo.WithTransport(tr), key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	pn, sn := mk("bp-pub", zmq.WithSendQueueBytes(64<<10)), mk("bp-sub")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Nobody reads it: its connection's reader blocks in the Block wait.
	if _, err := colugo.Subscribe[[]byte](ctx, sn, "bp", colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(1),
		colugo.WithQueueBytes(1), colugo.WithDropPolicy(colugo.Block(time.Minute))); err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[[]byte](pn, "bp", colugo.WithCodec(codec.Raw{}), colugo.WithBackPressure(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, wait)
	defer wcancel()
	if err := pub.WaitSubscribers(wctx, 1); err != nil {
		t.Fatal(err)
	}
	published := make(chan struct{})
	go func() {
		defer close(published)
		p := make([]byte, 4096)
		for range 4096 { // 16 MiB: far beyond the queue and the socket buffers
			if pub.Publish(ctx, p) != nil {
				return // ctx ended the wait
			}
		}
	}()
	// A node that joins describes the publisher, whose reply must not wait
	// for the blocked publish; Subscribers takes the node's lock.
	late := mk("bp-late")
	if _, err := colugo.Subscribe[[]byte](ctx, late, "bp", colugo.WithCodec(codec.Raw{})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for pub.Subscribers() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the late subscriber never reached the publisher while a publish waited")
		}
		select {
		case <-published:
			t.Fatal("the publishes all went through: the subscriber never stalled")
		case <-time.After(5 * time.Millisecond): // polling with a deadline
		}
	}
	cancel()
	<-published
}

// zmqFlowNode is a zmq node on 127.0.0.1 with host-local discovery in dir
// (tro: its transport's options), closed at cleanup.
func zmqFlowNode(t *testing.T, dir, name string, opts []colugo.NodeOption, tro ...zmq.Option) *colugo.Node {
	t.Helper()
	tr, err := zmq.New(append([]zmq.Option{zmq.WithHost("127.0.0.1")}, tro...)...)
	if err != nil {
		t.Fatal(err)
	}
	n, err := colugo.NewNode(name, append([]colugo.NodeOption{colugo.WithDiscovery(local.New(local.WithDir(dir))), colugo.WithTransport(tr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// TestQueueBudget: subscriptions sharing a QueueBudget hold no more than
// it together (plus two values each), each dropping its own oldest at the
// bound, and give it all back as they drain and end; a budget below one
// byte is refused.
func TestQueueBudget(t *testing.T) {
	const size, topics, each = 64, 3, 40
	entry := size + colugo.QueueEntryOverhead
	n := colugotest.NewNode(t, "n")
	budget := colugo.NewQueueBudget(10 * entry)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var chans []<-chan []byte
	var pubs []*colugo.Publisher[[]byte]
	for i := range topics {
		name := fmt.Sprint("t", i)
		// Each queue alone could hold every value: the budget is the bound.
		ch, err := colugo.Subscribe[[]byte](ctx, n, name, colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(1),
			colugo.WithQueueBytes(each*entry), colugo.WithQueueBudget(budget))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := colugo.NewPublisher[[]byte](n, name, colugo.WithCodec(codec.Raw{}))
		if err != nil {
			t.Fatal(err)
		}
		chans, pubs = append(chans, ch), append(pubs, pub)
	}
	maxUsed := 0
	for i := range each {
		for _, p := range pubs {
			if err := p.Publish(ctx, testkit.Numbered(i, size)); err != nil {
				t.Fatal(err)
			}
			maxUsed = max(maxUsed, budget.Used())
		}
	}
	if limit := budget.Max() + 2*topics*entry; maxUsed > limit {
		t.Fatalf("the queues held %d bytes together, want at most %d (the budget and two values each: one queued, one being handed over)", maxUsed, limit)
	}
	var dropped uint64
	for i := range topics {
		dropped += n.Stats().Topics[fmt.Sprint("t", i)].Dropped
	}
	if dropped == 0 {
		t.Fatal("nothing dropped at the budget")
	}
	for i, ch := range chans {
		// In order, up to the newest (DropOldest: the newest stay).
		for last := -1; last != each-1; {
			seq := int(binary.BigEndian.Uint32(colugotest.Next(t, ch, wait)))
			if seq <= last {
				t.Fatalf("topic %d: %d after %d", i, seq, last)
			}
			last = seq
		}
	}
	// The feeder lets go of a value's bytes just after handing it over.
	testwait.Until(t, "drained queues to give the budget back", func() bool { return budget.Used() == 0 })
	// Ending subscriptions with values queued gives their bytes back.
	for _, p := range pubs {
		for i := range 5 {
			_ = p.Publish(ctx, testkit.Numbered(i, size))
		}
	}
	if budget.Used() == 0 {
		t.Fatal("nothing queued")
	}
	cancel()
	testwait.Until(t, "the budget given back", func() bool { return budget.Used() == 0 })

	for _, b := range []*colugo.QueueBudget{nil, colugo.NewQueueBudget(0)} {
		if _, err := colugo.Subscribe[int](t.Context(), n, "x", colugo.WithQueueBudget(b)); !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("WithQueueBudget(%v): %v, want ErrInvalidOption", b, err)
		}
	}
}

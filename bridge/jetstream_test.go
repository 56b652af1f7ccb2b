package bridge_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
)

// natsServerJS starts an embedded NATS server with JetStream (its store in
// a temporary directory) on 127.0.0.1, advertising nothing.
func natsServerJS(t testing.TB) *server.Server {
	t.Helper()
	return startNATS(t, &server.Options{JetStream: true, StoreDir: t.TempDir()})
}

// TestJetStreamCatchUp: the links are cut (proxies as in TestLinkCut)
// while site a publishes: first site b's alone, then both. A JetStream
// topic's messages of each cut reach site b once it is back, each once, in
// order (with both cut, from site a's reconnect buffer into the stream); a
// plain topic's, published alongside, are lost while site b is away (the
// control).
func TestJetStreamCatchUp(t *testing.T) {
	srv := natsServerJS(t)
	pxA, pxB := newCutProxy(t, srv.Addr().String()), newCutProxy(t, srv.Addr().String())
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{pxA.URL()}}}
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 10000, MaxAge: time.Hour}}, {Name: "live"}}
	ba, _ := runBridge(t, a, ca)
	cb := bridge.Config{Site: "b", NATS: bridge.NATS{URLs: []string{pxB.URL()}}}
	cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}, {Name: "live"}}
	bb, _ := runBridge(t, b, cb)
	ctx := t.Context()
	const n = 1000
	viewer := b.NewNode("viewer")
	logs, _ := colugo.Subscribe[int](ctx, viewer, "log", colugo.WithBuffer(4*n))
	lives, _ := colugo.Subscribe[int](ctx, viewer, "live", colugo.WithBuffer(4*n))
	robot := a.NewNode("robot")
	logPub, _ := colugo.NewPublisher[int](robot, "log")
	livePub, _ := colugo.NewPublisher[int](robot, "live")
	until(t, "log on site b", func() { _ = logPub.Publish(ctx, -1) }, recv(logs, func(v int) bool { return v == -1 }))
	until(t, "live on site b", func() { _ = livePub.Publish(ctx, -1) }, recv(lives, func(v int) bool { return v == -1 }))

	// phase publishes base+1 to base+n during a cut of the given proxies.
	phase := func(name string, base int, cut ...*cutProxy) {
		for _, px := range cut {
			px.Cut()
		}
		testwait.Until(t, name+": site b's link down", func() bool { return bb.Stats().Link == bridge.LinkDown })
		before := ba.Stats().Export.Messages
		for i := base + 1; i <= base+n; i++ {
			if err := logPub.Publish(ctx, i); err != nil {
				t.Fatal(err)
			}
			if err := livePub.Publish(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		testwait.Until(t, name+": site a exported the cut's messages (or buffered them)", func() bool {
			st := ba.Stats()
			return st.Export.Messages+st.Spooled >= before+2*n
		})
		for _, px := range cut {
			px.Restore()
		}
		back := time.Now()

		// Until the fence, published after the return: before it, each
		// of the cut's log messages once and in order, warm-ups aside.
		got := make([]int, 0, n)
		fence := base + n + 1
		deadline := time.After(wait)
		var caughtUp time.Duration
		for done := false; !done; {
			select {
			case v := <-logs:
				switch {
				case v == fence:
					done = true
				case v > base:
					got = append(got, v)
					if len(got) == n {
						caughtUp = time.Since(back)
						_ = logPub.Publish(ctx, fence)
					}
				}
			case <-deadline:
				t.Fatalf("%s: site b got %d of the cut's %d log messages within %v of the link's return; a %+v; b %+v", name, len(got), n, wait, ba.Stats(), bb.Stats())
			}
		}
		dup, lost, disorder := 0, 0, 0
		seen := map[int]int{}
		for i, v := range got {
			seen[v]++
			if i > 0 && v < got[i-1] {
				disorder++
			}
		}
		for i := base + 1; i <= base+n; i++ {
			switch seen[i] {
			case 0:
				lost++
			case 1:
			default:
				dup++
			}
		}
		if dup != 0 || lost != 0 || disorder != 0 {
			t.Errorf("%s: log across the cut: %d lost, %d duplicated, %d out of order of %d", name, lost, dup, disorder, n)
		}
		live := 0
		for drained := false; !drained; {
			select {
			case v := <-lives:
				if v > base {
					live++
				}
			default:
				drained = true
			}
		}
		t.Logf("%s: the cut's %d log messages reached site b %v after the links' return (%d lost, %d duplicated; redeliveries dropped %d); of live's, %d arrived",
			name, n, caughtUp, lost, dup, bb.Stats().Import.Drops.Duplicate, live)
	}
	phase("site b cut", 0, pxB)
	phase("both cut", 10000, pxA, pxB)
}

// TestJetStreamDuplicates: a message the stream holds twice (published
// twice with different ids, as a redelivery would bring it again) reaches
// the importing site once.
func TestJetStreamDuplicates(t *testing.T) {
	s := newJSLogSites(t, 100)
	srv, a, b, ba, bb := s.srv, s.a, s.b, s.ba, s.bb
	got, _ := colugo.Subscribe[int](t.Context(), b.NewNode("viewer"), "log", colugo.WithBuffer(64))
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "log")
	until(t, "log on site b", func() { _ = pub.Publish(t.Context(), 0) }, recv(got, func(v int) bool { return v == 0 }))
	if st := ba.Stats(); st.JetStreamErrors != 0 {
		t.Logf("site a: %d JetStream errors before the stream was made", st.JetStreamErrors)
	}
	nc := natsClient(t, srv)
	msg := func(seq, id string, v int) *nats.Msg {
		m := nats.NewMsg("colugo.t.log")
		m.Header.Set("Colugo-Codec", "json")
		m.Header.Set("Colugo-Origin", "x")
		m.Header.Set("Colugo-Bridge", "bx")
		m.Header.Set("Colugo-Sender", "sx")
		m.Header.Set("Colugo-Seq", seq)
		m.Header.Set("Nats-Msg-Id", id)
		m.Data = []byte(strconv.Itoa(v))
		return m
	}
	for _, m := range []*nats.Msg{msg("5", "i1", 5), msg("5", "i2", 5), msg("6", "i3", 6), msg("6", "i3", 66) /* one id: the stream keeps the first */, msg("7", "i4", 7)} {
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	var vals []int
	for len(vals) == 0 || vals[len(vals)-1] != 7 {
		if v := colugotest.Next(t, got, wait); v != 0 {
			vals = append(vals, v)
		}
	}
	if !slices.Equal(vals, []int{5, 6, 7}) {
		t.Errorf("site b got %v, want [5 6 7]", vals)
	}
	if d := bb.Stats().Import.Drops.Duplicate; d != 1 {
		t.Errorf("duplicates dropped: %d, want 1", d)
	}
}

// TestJetStreamRestart: a site whose bridge was down (closed, not cut)
// gets, from its new bridge, what was published meanwhile and only that:
// its durable consumer remembers what it had.
func TestJetStreamRestart(t *testing.T) {
	s := newJSLogSites(t, 1000)
	a, b, ba, bb, cb := s.a, s.b, s.ba, s.bb, s.cb
	ctx := t.Context()
	got, _ := colugo.Subscribe[int](ctx, b.NewNode("viewer"), "log", colugo.WithBuffer(1024))
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "log")
	until(t, "log on site b", func() { _ = pub.Publish(ctx, 0) }, recv(got, func(v int) bool { return v == 0 }))
	for i := 1; i <= 10; i++ {
		_ = pub.Publish(ctx, i)
	}
	for v := 0; v != 10; {
		v = colugotest.Next(t, got, wait)
	}
	bb.Close() // site b's bridge goes away
	const n = 100
	before := ba.Stats().Export.Messages
	for i := 11; i <= 10+n; i++ {
		_ = pub.Publish(ctx, i)
	}
	testwait.Until(t, "exported", func() bool { return ba.Stats().Export.Messages >= before+n })
	bb2, _ := runBridge(t, b, cb) // and comes back
	var vals []int
	timeout := time.After(wait + 5*time.Second) // the ack wait's 5 s included
	for len(vals) < n {
		select {
		case v := <-got:
			vals = append(vals, v)
		case <-timeout:
			t.Fatalf("site b's new bridge brought %d values %v; %+v", len(vals), vals, bb2.Stats())
		}
	}
	// Each once; not necessarily in order: what JetStream sent to the
	// old bridge as it went comes again after the ack wait.
	want := make([]int, 0, n)
	for i := 11; i <= 10+n; i++ {
		want = append(want, i)
	}
	slices.Sort(vals)
	if !slices.Equal(vals, want) {
		t.Errorf("site b's new bridge brought %d values %v..., want 11 to %d once each", len(vals), vals[:min(len(vals), 12)], 10+n)
	}
}

// TestJetStreamConsumerDeleted: a durable consumer deleted under a running
// bridge is made again, from the message after the last the site had:
// what follows arrives, once, and nothing before it comes again.
func TestJetStreamConsumerDeleted(t *testing.T) {
	s := newJSLogSites(t, 1000)
	srv, a, b, bb := s.srv, s.a, s.b, s.bb
	ctx := t.Context()
	got, _ := colugo.Subscribe[int](ctx, b.NewNode("viewer"), "log", colugo.WithBuffer(1024))
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "log")
	until(t, "log on site b", func() { _ = pub.Publish(ctx, 0) }, recv(got, func(v int) bool { return v == 0 }))
	for i := 1; i <= 10; i++ {
		_ = pub.Publish(ctx, i)
	}
	for v := 0; v != 10; {
		v = colugotest.Next(t, got, wait)
	}

	js, err := jetstream.New(natsClient(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for name := range js.StreamNames(ctx).Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for c := range s.ConsumerNames(ctx).Name() {
			if err := s.DeleteConsumer(ctx, c); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	if deleted != 1 {
		t.Fatalf("deleted %d consumers, want site b's one", deleted)
	}
	errsBefore := bb.Stats().JetStreamErrors
	testwait.Until(t, "the consumer made again", func() bool {
		for name := range js.StreamNames(ctx).Name() {
			s, _ := js.Stream(ctx, name)
			if s != nil {
				for range s.ConsumerNames(ctx).Name() {
					return true
				}
			}
		}
		return false
	})
	const n = 50
	for i := 11; i <= 10+n; i++ {
		_ = pub.Publish(ctx, i)
	}
	var vals []int
	for len(vals) == 0 || vals[len(vals)-1] != 10+n {
		vals = append(vals, colugotest.Next(t, got, wait))
	}
	want := make([]int, 0, n)
	for i := 11; i <= 10+n; i++ {
		want = append(want, i)
	}
	if !slices.Equal(vals, want) {
		t.Errorf("after the consumer's deletion site b got %v, want 11 to %d once each", vals, 10+n)
	}
	if e := bb.Stats().JetStreamErrors; e == 0 {
		t.Errorf("JetStream errors %d (%d before the deletion): the stopped consumption not counted", e, errsBefore)
	}
}

// noSubscribe is a transport whose subscriptions never connect: its node
// lists them in its catalog and receives nothing.
// With refuse set, only the subscriptions to the publisher at refuse.
type noSubscribe struct {
	transport.Transport
	refuse string
}

func (n noSubscribe) Subscribe(pubAddr, topic string, opts transport.SubscribeOptions) error {
	if n.refuse != "" && pubAddr != n.refuse {
		return n.Transport.Subscribe(pubAddr, topic, opts)
	}
	return nil
}

// InProcess says, as the inproc transport it wraps does, that the node
// reaches no network.
func (noSubscribe) InProcess() bool { return true }

// sees reports whether node's catalog lists a subscription to topic by a
// peer named name.
func sees(node *colugo.Node, name, topic string) bool {
	for _, p := range node.Peers() {
		for _, s := range p.Subscriptions {
			if p.Name == name && s.Name == topic {
				return true
			}
		}
	}
	return false
}

// TestJetStreamGivenBackAtStop: a bridge that stops while a topic's first
// message waits for the site's subscribers to be reached gives it back to
// JetStream, and the site's next bridge delivers it: it was neither
// published to nobody nor acked.
func TestJetStreamGivenBackAtStop(t *testing.T) {
	srv := natsServerJS(t)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	// Site b's nodes on a transport network of the test's, for the one
	// that never connects.
	tb := inproc.NewNetwork()
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 1000}}}
	runBridge(t, a, ca)
	ctx := t.Context()
	ghost := b.NewNode("ghost", colugo.WithTransport(noSubscribe{Transport: tb.New()}))
	if _, err := colugo.Subscribe[int](ctx, ghost, "log"); err != nil {
		t.Fatal(err)
	}
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}}
	bb, bnode := runBridge(t, b, cb, colugo.WithTransport(tb.New()))
	testwait.Until(t, "site b's bridge sees the ghost's subscription", func() bool { return sees(bnode, "ghost", "log") })
	// The viewer, known to both bridges before the hand-over (a bridge
	// just started may not know it yet), never reaches the first.
	viewer := b.NewNode("viewer", colugo.WithTransport(noSubscribe{Transport: tb.New(), refuse: bnode.Endpoint().Pub}))
	got, _ := colugo.Subscribe[int](ctx, viewer, "log")
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "log")
	if err := pub.WaitSubscribers(ctx, 1); err != nil { // site a's bridge
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, 7); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(natsClient(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	// Until site b's bridge holds it: sent to its consumer, not acked.
	testwait.Until(t, "the message sent to site b's bridge", func() bool {
		for name := range js.StreamNames(ctx).Name() {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return false
			}
			for c := range s.ListConsumers(ctx).Info() {
				if c.NumAckPending == 1 {
					return true
				}
			}
		}
		return false
	})
	if err := ghost.Close(); err != nil {
		t.Fatal(err)
	}
	bb2, bnode2 := runBridge(t, b, cb, colugo.WithTransport(tb.New()))
	testwait.Until(t, "site b's second bridge sees the viewer, not the ghost", func() bool {
		return sees(bnode2, "viewer", "log") && !sees(bnode2, "ghost", "log")
	})
	bb.Close()
	select {
	case v := <-got:
		if v != 7 {
			t.Errorf("site b got %d, want 7", v)
		}
	case <-time.After(wait):
		t.Fatalf("the message held as site b's bridge stopped never arrived; first bridge %+v, second %+v", bb.Stats().Import, bb2.Stats().Import)
	}
}

// TestJetStreamStreamDeleted: a stream deleted under running bridges is
// made again by the exporter, which sends it what it could not store
// meanwhile, and read again from its start by the importer: site b gets
// every message, once and in order.
func TestJetStreamStreamDeleted(t *testing.T) {
	srv := natsServerJS(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 1000}}}
	ba, bb, got, pub := logSites(t, srv, ca)
	ctx := t.Context()
	for i := 1; i <= 10; i++ {
		_ = pub.Publish(ctx, i)
	}
	for v := 0; v != 10; {
		v = colugotest.Next(t, got, wait)
	}
	js, err := jetstream.New(natsClient(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for name := range js.StreamNames(ctx).Name() {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted != 1 {
		t.Fatalf("deleted %d streams, want 1", deleted)
	}
	const n = 50
	for i := 11; i <= 10+n; i++ {
		_ = pub.Publish(ctx, i)
	}
	var vals []int
	timeout := time.After(wait + 5*time.Second)
	for len(vals) == 0 || vals[len(vals)-1] != 10+n {
		select {
		case v := <-got:
			vals = append(vals, v)
		case <-timeout:
			t.Fatalf("after the stream's deletion site b got %v; a %+v; b %+v", vals, ba.Stats(), bb.Stats())
		}
	}
	want := make([]int, 0, n)
	for i := 11; i <= 10+n; i++ {
		want = append(want, i)
	}
	if !slices.Equal(vals, want) {
		t.Errorf("after the stream's deletion site b got %v, want 11 to %d once each", vals, 10+n)
	}
}

// TestJetStreamImportCrash: an importing bridge that crashes while a
// reliable subscriber (Block) has not yet taken what it handed on loses
// none of it: the acks waited for its node to write them (before, each
// was acked once queued, and the queue died with the bridge), so the
// site's next bridge gets them again.
func TestJetStreamImportCrash(t *testing.T) {
	s := newJSLogSites(t, 10000)
	a, b, bb, nb, cb := s.a, s.b, s.bb, s.nb, s.cb
	ctx := t.Context()
	got, _ := colugo.Subscribe[int](ctx, b.NewNode("viewer"), "log", colugo.WithBuffer(1), colugo.WithQueueBytes(1),
		colugo.WithDropPolicy(colugo.Block(time.Minute)))
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "log")
	until(t, "log on site b", func() { _ = pub.Publish(ctx, 0) }, recv(got, func(v int) bool { return v == 0 }))
	// The viewer reads nothing now: what the bridge hands on waits in its
	// node's queue for the viewer.
	const n = 200
	before := bb.Stats().Import.Messages
	for i := 1; i <= n; i++ {
		_ = pub.Publish(ctx, i)
	}
	testwait.Until(t, "handed on", func() bool { return bb.Stats().Import.Messages >= before+n })
	bridge.Crash(bb, nb)
	runBridge(t, b, cb) // the site's next bridge
	seen := map[int]bool{}
	timeout := time.After(wait + 10*time.Second) // the ack wait's 5 s included
	for len(seen) < n {
		select {
		case v := <-got:
			if v > 0 {
				seen[v] = true // twice is allowed: what the viewer had comes again
			}
		case <-timeout:
			var missing []int
			for i := 1; i <= n && len(missing) < 10; i++ {
				if !seen[i] {
					missing = append(missing, i)
				}
			}
			t.Fatalf("after the crash the viewer got %d of %d; missing %v...", len(seen), n, missing)
		}
	}
}

// TestJetStreamZeroSegments: a JetStream export and import of robot/**
// carry robot itself, and the stream and the site's consumer that an
// earlier bridge made for them (its "**" took one segment or more: they
// hold colugo.t.robot.> alone) gain colugo.t.robot. The consumer is the
// same: what it was sent before stays acked, what it was not is sent.
func TestJetStreamZeroSegments(t *testing.T) {
	srv := natsServerJS(t)
	ctx := t.Context()
	js, err := jetstream.New(natsClient(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	const old, parent = "colugo.t.robot.>", "colugo.t.robot"
	stream, durable := bridge.StreamName(old), bridge.DurableName("b", bridge.StreamName(old))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{old}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: durable, FilterSubject: old,
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	// Two messages of the earlier bridge's time: the first was handed on
	// and acked, the second not yet.
	earlier := func(v int) {
		m := nats.NewMsg("colugo.t.robot.1")
		m.Header.Set("Colugo-Codec", "json")
		m.Header.Set("Colugo-Origin", "x")
		m.Header.Set("Colugo-Bridge", "bx")
		m.Data = []byte(strconv.Itoa(v))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	earlier(100)
	earlier(101)
	batch, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}

	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "robot/**", JetStream: &bridge.JetStream{MaxMsgs: 1000}}}
	runBridge(t, a, ca)
	viewer := b.NewNode("viewer")
	top, _ := colugo.Subscribe[int](ctx, viewer, "robot", colugo.WithBuffer(256))
	one, _ := colugo.Subscribe[int](ctx, viewer, "robot/1", colugo.WithBuffer(256))
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "robot/**", JetStream: &bridge.JetStream{}}}
	runBridge(t, b, cb)
	if v := colugotest.Next(t, one, wait); v != 101 {
		t.Errorf("site b's first robot/1 message: %d, want 101 (100 was acked before)", v)
	}
	robot := a.NewNode("robot")
	pTop, _ := colugo.NewPublisher[int](robot, "robot")
	pOne, _ := colugo.NewPublisher[int](robot, "robot/1")
	until(t, "robot on site b", func() { _ = pTop.Publish(ctx, 1) }, recv(top, func(v int) bool { return v == 1 }))
	until(t, "robot/1 on site b", func() { _ = pOne.Publish(ctx, 2) }, recv(one, func(v int) bool { return v == 2 }))

	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Subjects; !slices.Equal(got, []string{old, parent}) {
		t.Errorf("stream subjects %q, want %q", got, []string{old, parent})
	}
	ci, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	if c := ci.CachedInfo().Config; c.FilterSubject != "" || !slices.Equal(c.FilterSubjects, []string{old, parent}) {
		t.Errorf("consumer filter %q %q, want %q", c.FilterSubject, c.FilterSubjects, []string{old, parent})
	}
}

// TestJetStreamOverlappingExports: JetStream lets no two streams share a
// subject, so of two sites exporting overlapping JetStream entries the
// second's stream is refused, and its Stats say why (as README says).
func TestJetStreamOverlappingExports(t *testing.T) {
	srv := natsServerJS(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "robot/**", JetStream: &bridge.JetStream{MaxMsgs: 10}}}
	runBridge(t, colugotest.NewNetwork(t), ca)
	js, err := jetstream.New(natsClient(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "site a's stream made", func() bool {
		_, err := js.Stream(t.Context(), bridge.StreamName("colugo.t.robot.>"))
		return err == nil
	})
	cb := cfgFor(srv, "b")
	cb.Export.Topics = []bridge.Topic{{Name: "robot/1/log", JetStream: &bridge.JetStream{MaxMsgs: 10}}}
	bb, _ := runBridge(t, colugotest.NewNetwork(t), cb)
	testwait.Until(t, "site b's stream refused", func() bool {
		return strings.Contains(bb.Stats().JetStreamError, "export robot/1/log: stream") && strings.Contains(bb.Stats().JetStreamError, "overlap")
	})
	t.Log(bb.Stats().JetStreamError)
}

// TestJetStreamReplicas, on a JetStream cluster of three servers: an
// export entry's stream that its operator made with 3 replicas, kept in
// memory, keeps both (the bridge sets only its bounds and subjects: it
// used to update it to 1 replica), and an entry with replicas: 3 makes
// its stream so. Both carry messages to the other site.
func TestJetStreamReplicas(t *testing.T) {
	servers := natsClusterJS(t, 3)
	ctx := t.Context()
	js, err := jetstream.New(natsClient(t, servers[0]))
	if err != nil {
		t.Fatal(err)
	}
	logStream, auditStream := bridge.StreamName("colugo.t.log"), bridge.StreamName("colugo.t.audit")
	testwait.Until(t, "the operator's stream", func() bool { // once the cluster has a meta leader
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: logStream, Subjects: []string{"colugo.t.log"},
			Replicas: 3, Storage: jetstream.MemoryStorage, Duplicates: time.Minute})
		return err == nil
	})
	ca := cfgFor(servers[0], "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 100}},
		{Name: "audit", JetStream: &bridge.JetStream{MaxMsgs: 100, Replicas: 3}}}
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ba, _ := runBridge(t, a, ca)
	cb := cfgFor(servers[1], "b")
	cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}, {Name: "audit", JetStream: &bridge.JetStream{}}}
	bb, _ := runBridge(t, b, cb)
	viewer := b.NewNode("viewer")
	logs, _ := colugo.Subscribe[int](ctx, viewer, "log", colugo.WithBuffer(256))
	audits, _ := colugo.Subscribe[int](ctx, viewer, "audit", colugo.WithBuffer(256))
	robot := a.NewNode("robot")
	pLog, _ := colugo.NewPublisher[int](robot, "log")
	pAudit, _ := colugo.NewPublisher[int](robot, "audit")
	// A stream or consumer of three replicas takes a while to start, the
	// more so under the race detector: 30 s.
	start := time.Now()
	for _, c := range []struct {
		name string
		pub  *colugo.Publisher[int]
		got  <-chan int
	}{{"log", pLog, logs}, {"audit", pAudit, audits}} {
		if !testwait.For(30*time.Second, func() bool {
			_ = c.pub.Publish(ctx, 1)
			return recv(c.got, func(v int) bool { return v == 1 })(100 * time.Millisecond)
		}) {
			t.Fatalf("%s never reached site b; a %+v; b %+v", c.name, ba.Stats(), bb.Stats())
		}
	}
	t.Logf("both on site b after %v", time.Since(start))
	for _, c := range []struct {
		stream  string
		storage jetstream.StorageType
		dup     time.Duration
	}{{logStream, jetstream.MemoryStorage, time.Minute}, {auditStream, jetstream.FileStorage, 0}} {
		st, err := js.Stream(ctx, c.stream)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		if cfg.Replicas != 3 || cfg.Storage != c.storage || cfg.MaxMsgs != 100 || (c.dup != 0 && cfg.Duplicates != c.dup) {
			t.Errorf("%s: replicas %d, storage %v, max msgs %d, duplicate window %v; want 3, %v, 100, %v",
				c.stream, cfg.Replicas, cfg.Storage, cfg.MaxMsgs, cfg.Duplicates, c.storage, c.dup)
		}
	}
}

// TestJetStreamLeaderChange, on a JetStream cluster of three servers with
// the stream on all three: its leader steps down three times while site a
// publishes 3000 messages. A leader change loses the acks of what the old
// leader had not answered, so the exporter sends those again after newer
// ones were stored: site b still gets every message once and in order
// (inChain; 1700-2200 of 5000 came out of order before), and soon: the
// exporter sees the later acks overtake and sends again at once, not after
// its 5 s ack timeout (TestOvertaken; about 0.5 s after the last publish
// here, 5 s without).
func TestJetStreamLeaderChange(t *testing.T) {
	servers := natsClusterJS(t, 3)
	ctx := t.Context()
	nc := natsClient(t, servers[2])
	ca := cfgFor(servers[0], "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 100000, Replicas: 3}}}
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ba, _ := runBridge(t, a, ca)
	cb := cfgFor(servers[1], "b")
	cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}}
	bb, _ := runBridge(t, b, cb)
	const n = 3000
	logs, _ := colugo.Subscribe[int](ctx, b.NewNode("viewer"), "log", colugo.WithBuffer(2*n))
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "log")
	// A new stream of three replicas takes a while to take its first
	// messages.
	if !testwait.For(30*time.Second, func() bool {
		_ = pub.Publish(ctx, -1)
		return recv(logs, func(v int) bool { return v == -1 })(100 * time.Millisecond)
	}) {
		t.Fatalf("no message reached site b within 30 s; a %+v; b %+v", ba.Stats(), bb.Stats())
	}
	stream := bridge.StreamName("colugo.t.log")
	for i := 1; i <= n; i++ {
		if i%1000 == 500 {
			var last string
			if !testwait.For(10*time.Second, func() bool { // refused while the cluster is busy (503)
				r, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second)
				if err != nil {
					last = err.Error()
					return false
				}
				last = string(r.Data)
				return strings.Contains(last, `"success":true`)
			}) {
				t.Fatalf("step down at %d: %s", i, last)
			}
		}
		if err := pub.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			// Pacing, not synchronisation: a flow rather than one burst,
			// so that the old leader has acks in flight to lose.
			time.Sleep(time.Millisecond)
		}
	}
	published := time.Now()
	last := 0
	deadline := time.After(30 * time.Second)
	for last < n {
		select {
		case v := <-logs:
			switch {
			case v == -1:
			case v != last+1:
				t.Fatalf("site b got %d after %d; a %+v; b %+v", v, last, ba.Stats(), bb.Stats())
			default:
				last = v
			}
		case <-deadline:
			t.Fatalf("site b got 1 to %d of %d within 30 s of the last publish; a %+v; b %+v", last, n, ba.Stats(), bb.Stats())
		}
	}
	t.Logf("all %d in order %v after the last publish; site a: %d JetStream errors, the last %q", n, time.Since(published), ba.Stats().JetStreamErrors, ba.Stats().JetStreamError)
}

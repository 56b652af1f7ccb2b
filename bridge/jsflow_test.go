package bridge_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
	"github.com/colugo-go/colugo/transport/zmq"
)

// TestJetStreamRestartWhileFlowing: site b's bridge is closed while the
// stream's messages flow to it, and a new one takes over: site b gets
// every message after the last it had, once and in order (before the
// catch-up in order, 2 runs in 10 jumped ahead by up to 240 messages, the
// skipped ones coming after the ack wait).
func TestJetStreamRestartWhileFlowing(t *testing.T) {
	s := newJSLogSites(t, 10000)
	a, b, bb, cb := s.a, s.b, s.bb, s.cb
	ctx := t.Context()
	got, _ := colugo.Subscribe[int](ctx, b.NewNode("viewer"), "log", colugo.WithBuffer(8192))
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "log")
	until(t, "log on site b", func() { _ = pub.Publish(ctx, 0) }, recv(got, func(v int) bool { return v == 0 }))
	const n = 3000
	go func() {
		for i := 1; i <= n; i++ {
			_ = pub.Publish(ctx, i)
		}
	}()
	last := 0
	for last < n/3 {
		last = colugotest.Next(t, got, wait) // warm-up zeros first
	}
	bb.Close() // mid-flow
	// What the closing bridge handed on is on its way: wait for quiet.
	for quiet := false; !quiet; {
		select {
		case v := <-got:
			if v != last+1 {
				t.Fatalf("from the closing bridge, after %d: %d", last, v)
			}
			last = v
		case <-time.After(200 * time.Millisecond):
			quiet = true
		}
	}
	bb2, _ := runBridge(t, b, cb)
	start := time.Now()
	want := last + 1
	timeout := time.After(wait + 2*time.Second)
	for want <= n {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("after %d, the new bridge's message for %d is %d", last, want, v)
			}
			want++
		case <-timeout:
			t.Fatalf("after %d, the new bridge brought up to %d only; %+v", last, want-1, bb2.Stats())
		}
	}
	t.Logf("closed after %d; the new bridge brought %d to %d in order, in %v", last, last+1, n, time.Since(start).Round(time.Millisecond))
}

// TestJetStreamExportStall: site a's link goes silent while a JetStream
// topic flows to it, and is then cut: site b still gets every message,
// once and in order. What sat in the silent link's socket buffers is
// sent again from site a's spool (before the spool, the 300 or so
// messages published between the stall and its detection were lost, and
// counted nowhere).
func TestJetStreamExportStall(t *testing.T) {
	srv := natsServerJS(t)
	px := newCutProxy(t, srv.Addr().String())
	ca := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{px.URL()}, PingInterval: 100 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}}
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 100000}}}
	ba, bb, got, pub := logSites(t, srv, ca)
	ctx := t.Context()
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond) // a log's pace, for the stall to hold some
		defer tick.Stop()
		for i := 1; i <= n; i++ {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			_ = pub.Publish(ctx, i)
		}
	}()
	t.Cleanup(func() { <-done })
	var vals []int
	for len(vals) == 0 || vals[len(vals)-1] < n/4 {
		if v := colugotest.Next(t, got, wait); v != 0 { // warm-up zeros aside
			vals = append(vals, v)
		}
	}
	px.Stall()
	testwait.Until(t, "site a's link found silent", func() bool { return ba.Stats().Link == bridge.LinkDown })
	px.Cut() // what the silent link held is gone
	px.Restore()
	timeout := time.After(wait + 10*time.Second)
	for len(vals) == 0 || vals[len(vals)-1] != n {
		select {
		case v := <-got:
			if v != 0 {
				vals = append(vals, v)
			}
		case <-timeout:
			t.Fatalf("site b got %d values, the last %v; a %+v; b %+v", len(vals), vals[max(0, len(vals)-5):], ba.Stats(), bb.Stats())
		}
	}
	lost, dup, disorder := 0, 0, 0
	seen := map[int]int{}
	for i, v := range vals {
		seen[v]++
		if i > 0 && v < vals[i-1] {
			disorder++
		}
	}
	for i := vals[0]; i <= n; i++ {
		switch seen[i] {
		case 0:
			lost++
		case 1:
		default:
			dup++
		}
	}
	if lost != 0 || dup != 0 || disorder != 0 {
		t.Errorf("across the stall: %d lost, %d duplicated, %d out of order, of %d; a %+v", lost, dup, disorder, n-vals[0]+1, ba.Stats())
	}
	t.Logf("a %+v", ba.Stats())
}

// TestJetStreamSpoolBound: while site a's link is cut, a JetStream topic's
// spool keeps its newest messages within JetStream.Spool and counts the
// older ones dropped (Link); those it kept arrive once the link is back.
func TestJetStreamSpoolBound(t *testing.T) {
	srv := natsServerJS(t)
	px := newCutProxy(t, srv.Addr().String())
	ca := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{px.URL()}}}
	// Values 100 to 199 are 3 bytes of JSON each: room for 10.
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 1000, Spool: 30}}}
	ba, _, got, pub := logSites(t, srv, ca)
	ctx := t.Context()
	testwait.Until(t, "the warm-up acked", func() bool { return ba.Stats().Spooled == 0 })
	px.Cut()
	testwait.Until(t, "site a's link down", func() bool { return ba.Stats().Link == bridge.LinkDown })
	for i := 100; i < 200; i++ {
		if err := pub.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "the cut's messages spooled or dropped", func() bool {
		st := ba.Stats()
		return st.Spooled+st.Export.Drops.Link >= 100
	})
	// A late warm-up may be dropped too.
	if st := ba.Stats(); st.Spooled != 10 || st.Export.Drops.Link < 90 {
		t.Fatalf("spooled %d, dropped %d (Link); want 10 and 90", st.Spooled, st.Export.Drops.Link)
	}
	px.Restore()
	var vals []int
	for len(vals) < 10 {
		if v := colugotest.Next(t, got, wait); v != 0 {
			vals = append(vals, v)
		}
	}
	for i, v := range vals {
		if v != 190+i {
			t.Fatalf("after the cut site b got %v, want 190 to 199", vals)
		}
	}
	select {
	case v := <-got:
		t.Errorf("after 199, %d", v)
	default:
	}
}

// TestJetStreamSpoolHoldsBack: a full spool whose link is up holds the
// topic back rather than dropping: a burst ten times its size arrives
// whole (the topic's local queue holds it meanwhile).
func TestJetStreamSpoolHoldsBack(t *testing.T) {
	srv := natsServerJS(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 10000, Spool: 30}}} // 10 values of 100-999
	ba, _, got, pub := logSites(t, srv, ca)
	ctx := t.Context()
	for i := 100; i < 200; i++ {
		if err := pub.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	want := 100
	for want < 200 {
		switch v := colugotest.Next(t, got, wait); {
		case v == 0: // a warm-up
		case v != want:
			t.Fatalf("site b got %d, want %d; a %+v", v, want, ba.Stats())
		default:
			want++
		}
	}
	if d := ba.Stats().Export.Drops; d.Link != 0 || d.Queue != 0 {
		t.Errorf("drops %+v, want none", d)
	}
}

// logSites runs site a's bridge with ca, which exports "log" through
// JetStream, and site b's, which imports it from srv; it returns them, a
// subscription of site b's and a publisher of site a's, once a first
// value (0) has crossed.
func logSites(t *testing.T, srv *server.Server, ca bridge.Config) (ba, bb *bridge.Bridge, got <-chan int, pub *colugo.Publisher[int]) {
	t.Helper()
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ba, _ = runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}}
	bb, _ = runBridge(t, b, cb)
	ctx := t.Context()
	got, _ = colugo.Subscribe[int](ctx, b.NewNode("viewer"), "log", colugo.WithBuffer(8192))
	pub, _ = colugo.NewPublisher[int](a.NewNode("robot"), "log")
	until(t, "log on site b", func() { _ = pub.Publish(ctx, 0) }, recv(got, func(v int) bool { return v == 0 }))
	return ba, bb, got, pub
}

// TestJetStreamBacklogToFreshBridge: a burst published as the exporting
// bridge starts is stored whole and in order (before, the messages the
// stream refused while the bridge was making it were stored after later
// ones), and a bridge started while the stream holds it delivers it
// whole, its first message included, to the site's subscribers that were
// there before it, even when they are slow to describe themselves to it
// (before, the backlog's first messages went to nobody: the bridge
// published before it knew them).
func TestJetStreamBacklogToFreshBridge(t *testing.T) {
	srv := natsServerJS(t)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 1000}}}
	ba, _ := runBridge(t, a, ca)
	ctx := t.Context()
	const n = 100
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "log")
	if err := pub.WaitSubscribers(ctx, 1); err != nil { // site a's bridge
		t.Fatal(err)
	}
	for i := range n {
		if err := pub.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "the backlog in the stream", func() bool { return ba.Stats().Export.Messages == n && ba.Stats().Spooled == 0 })
	js, err := jetstream.New(natsClient(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for name := range js.StreamNames(ctx).Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= n; seq++ {
			if m, err := st.GetMsg(ctx, seq); err != nil {
				stored = append(stored, err.Error())
			} else {
				stored = append(stored, string(m.Data))
			}
		}
	}
	for i, v := range stored {
		if v != strconv.Itoa(i) {
			t.Fatalf("the stream holds %v, want 0 to %d in order", stored, n-1)
		}
	}

	tb := inproc.NewNetwork()
	const viewers = 3
	var got []<-chan int
	for i := range viewers {
		v := b.NewNode(fmt.Sprint("viewer", i), colugo.WithTransport(slowDescribe{Transport: tb.New(), delay: 300 * time.Millisecond}))
		ch, err := colugo.Subscribe[int](ctx, v, "log", colugo.WithBuffer(2*n))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch)
	}
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}}
	bb, _ := runBridge(t, b, cb, colugo.WithTransport(tb.New()))
	for i, ch := range got {
		for want := range n {
			select {
			case v := <-ch:
				if v != want {
					t.Fatalf("viewer %d got %d, want %d (the backlog whole and in order)", i, v, want)
				}
			case <-time.After(wait):
				t.Fatalf("viewer %d: %d of the backlog's %d within %v; site b's bridge %+v", i, want, n, wait, bb.Stats().Import)
			}
		}
	}
}

// slowDescribe is a transport whose node answers $describe late, as a
// busy or distant node would.
type slowDescribe struct {
	transport.Transport
	delay time.Duration
}

func (s slowDescribe) Listen(h transport.Handler) (transport.Endpoint, error) {
	return s.Transport.Listen(slowHandler{Handler: h, delay: s.delay})
}

// InProcess says, as the inproc transport it wraps does, that the node
// reaches no network.
func (slowDescribe) InProcess() bool { return true }

type slowHandler struct {
	transport.Handler
	delay time.Duration
}

func (s slowHandler) HandleRequest(msg *transport.Message, rw transport.ReplyWriter) {
	if msg.Name == "$describe" {
		time.Sleep(s.delay) // the slowness under test, not a synchronisation
	}
	s.Handler.HandleRequest(msg, rw)
}

// TestJetStreamNarrowerImport: imports that name part of an exported
// pattern (a topic, a narrower pattern) read the exporter's stream, each
// through a consumer of its own, and get their topics' backlog whole and
// in order, and nothing else; an import wider than every export's stream
// finds none and counts it. The stream holds every topic's messages
// (before, their ids were sender and seq alone: it kept one topic's).
func TestJetStreamNarrowerImport(t *testing.T) {
	srv := natsServerJS(t)
	a, b, c := colugotest.NewNetwork(t), colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "robot/**", JetStream: &bridge.JetStream{MaxMsgs: 1000}}}
	ba, _ := runBridge(t, a, ca)
	ctx := t.Context()
	robot := a.NewNode("robot")
	logs, _ := colugo.NewPublisher[int](robot, "robot/7/log")
	poses, _ := colugo.NewPublisher[int](robot, "robot/8/pose")
	others, _ := colugo.NewPublisher[int](robot, "robot/9/log")
	const n = 50
	for _, p := range []*colugo.Publisher[int]{logs, poses, others} {
		if err := p.WaitSubscribers(ctx, 1); err != nil { // site a's bridge
			t.Fatal(err)
		}
	}
	for i := range n {
		for j, p := range []*colugo.Publisher[int]{logs, poses, others} {
			if err := p.Publish(ctx, 1000*j+i); err != nil {
				t.Fatal(err)
			}
		}
	}
	testwait.Until(t, "the backlog in the stream", func() bool { return ba.Stats().Export.Messages == 3*n && ba.Stats().Spooled == 0 })
	js, err := jetstream.New(natsClient(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	for name := range js.StreamNames(ctx).Name() {
		// Each topic numbers its messages from 1: their ids must differ
		// by topic too, or the stream keeps one topic's.
		if st, err := js.Stream(ctx, name); err != nil || st.CachedInfo().State.Msgs != 3*n {
			t.Fatalf("stream %s: %+v, %v: want %d messages, the three topics'", name, st.CachedInfo().State, err, 3*n)
		}
	}

	viewer := b.NewNode("viewer")
	gotLogs, _ := colugo.Subscribe[int](ctx, viewer, "robot/7/log", colugo.WithBuffer(2*n))
	gotPoses, _ := colugo.Subscribe[int](ctx, viewer, "robot/8/pose", colugo.WithBuffer(2*n))
	gotOthers, _ := colugo.Subscribe[int](ctx, viewer, "robot/9/log", colugo.WithBuffer(2*n))
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "robot/7/log", JetStream: &bridge.JetStream{}}, {Name: "robot/8/*", JetStream: &bridge.JetStream{}}}
	bb, _ := runBridge(t, b, cb)
	for j, ch := range []<-chan int{gotLogs, gotPoses} {
		for i := range n {
			select {
			case v := <-ch:
				if v != 1000*j+i {
					t.Fatalf("import %d got %d, want %d (its backlog whole and in order)", j, v, 1000*j+i)
				}
			case <-time.After(wait):
				t.Fatalf("import %d: %d of %d within %v; site b's bridge %+v", j, i, n, wait, bb.Stats())
			}
		}
	}
	select {
	case v := <-gotOthers:
		t.Errorf("site b got %d of robot/9/log, which it does not import", v)
	default:
	}

	// Wider than the export: it reads the stream, through a consumer of
	// its own, and gets every topic.
	cc := cfgFor(srv, "c")
	cc.Import.Topics = []bridge.Topic{{Name: "**", JetStream: &bridge.JetStream{}}}
	runBridge(t, c, cc)
	watcher, _ := colugo.Subscribe[int](ctx, c.NewNode("watcher"), "robot/9/log", colugo.WithBuffer(2*n))
	for i := range n {
		select {
		case v := <-watcher:
			if v != 2000+i {
				t.Fatalf("site c got %d, want %d (the backlog whole and in order)", v, 2000+i)
			}
		case <-time.After(wait):
			t.Fatalf("site c: %d of %d within %v", i, n, wait)
		}
	}
}

// TestJetStreamImportSpansStreams: an import wider than each export reads
// every exported stream within it (a control room importing robot/** from
// robots that each export their own robot/N/*), a site that starts
// exporting later included; each topic's backlog arrives whole and in
// order. The log names a failure once, however often it is retried.
func TestJetStreamImportSpansStreams(t *testing.T) {
	srv := natsServerJS(t)
	ctx := t.Context()
	const n = 40
	// robotSite runs a site exporting robot/<id>/* to JetStream and
	// publishes n messages on robot/<id>/pose, stored before it returns.
	robotSite := func(id int) {
		site := colugotest.NewNetwork(t)
		cfg := cfgFor(srv, fmt.Sprint("robot", id))
		cfg.Export.Topics = []bridge.Topic{{Name: fmt.Sprintf("robot/%d/*", id), JetStream: &bridge.JetStream{MaxMsgs: 1000}}}
		b, _ := runBridge(t, site, cfg)
		p, _ := colugo.NewPublisher[int](site.NewNode("robot"), fmt.Sprintf("robot/%d/pose", id))
		if err := p.WaitSubscribers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := p.Publish(ctx, 1000*id+i); err != nil {
				t.Fatal(err)
			}
		}
		testwait.Until(t, "the backlog in the stream", func() bool { return b.Stats().Export.Messages == n && b.Stats().Spooled == 0 })
	}
	robotSite(1)
	robotSite(2)

	hq := colugotest.NewNetwork(t)
	cfg := cfgFor(srv, "hq")
	cfg.Import.Topics = []bridge.Topic{{Name: "robot/**", JetStream: &bridge.JetStream{}}}
	var logged logBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	viewer := hq.NewNode("viewer")
	var got []<-chan int
	for id := 1; id <= 3; id++ {
		ch, _ := colugo.Subscribe[int](ctx, viewer, fmt.Sprintf("robot/%d/pose", id), colugo.WithBuffer(2*n))
		got = append(got, ch)
	}
	bh, _ := runBridge(t, hq, cfg)
	check := func(id int) {
		t.Helper()
		for i := range n {
			select {
			case v := <-got[id-1]:
				if v != 1000*id+i {
					t.Fatalf("robot %d: got %d, want %d (its backlog whole and in order)", id, v, 1000*id+i)
				}
			case <-time.After(wait):
				t.Fatalf("robot %d: %d of %d within %v; hq's bridge %+v", id, i, n, wait, bh.Stats())
			}
		}
	}
	check(1)
	check(2)
	robotSite(3) // a robot that comes online later
	check(3)
	if st := bh.Stats(); st.Import.Messages != 3*n || st.Import.Drops.Duplicate != 0 {
		t.Errorf("hq's bridge imported %d (%d duplicates), want %d", st.Import.Messages, st.Import.Drops.Duplicate, 3*n)
	}
	if strings.Count(logged.String(), "level=WARN") > 1 {
		t.Errorf("hq's bridge logged a retried failure more than once:\n%s", logged.String())
	}

	// An import that nothing exports: counted, named in Stats, logged once.
	lonely := colugotest.NewNetwork(t)
	cl := cfgFor(srv, "lonely")
	cl.Import.Topics = []bridge.Topic{{Name: "drone/**", JetStream: &bridge.JetStream{}}}
	var lonelyLog logBuffer
	cl.Logger = slog.New(slog.NewTextHandler(&lonelyLog, nil))
	bl, _ := runBridge(t, lonely, cl)
	testwait.Until(t, "the missing stream retried", func() bool { return bl.Stats().JetStreamErrors >= 3 })
	if e := bl.Stats().JetStreamError; !strings.HasPrefix(e, "import drone/**: stream: no stream holds its subjects") {
		t.Errorf("JetStreamError %q, want the import and the missing stream named", e)
	}
	if k := strings.Count(lonelyLog.String(), "no stream holds"); k != 1 {
		t.Errorf("the missing stream logged %d times, want once:\n%s", k, lonelyLog.String())
	}
}

// logBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestJetStreamImportStreamFlood: streams made on the account by anyone
// who may, each holding a subject of an import's, are read up to a bound
// (a consumer and a goroutine each): the rest are counted and named.
func TestJetStreamImportStreamFlood(t *testing.T) {
	srv := natsServerJS(t)
	ctx := t.Context()
	js, err := jetstream.New(natsClient(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	const streams = 300
	for i := range streams {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: fmt.Sprint("flood", i), Subjects: []string{fmt.Sprintf("colugo.t.f.%d", i)},
			Storage: jetstream.MemoryStorage, MaxMsgs: 1}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := cfgFor(srv, "hq")
	cfg.Import.Topics = []bridge.Topic{{Name: "f/*", JetStream: &bridge.JetStream{}}}
	bh, _ := runBridge(t, colugotest.NewNetwork(t), cfg)
	testwait.Until(t, "the flood named", func() bool { return strings.Contains(bh.Stats().JetStreamError, "more than 256 streams") })
	consumers := func() int {
		n := 0
		for name := range js.StreamNames(ctx).Name() {
			st, err := js.Stream(ctx, name)
			if err == nil {
				n += st.CachedInfo().State.Consumers
			}
		}
		return n
	}
	testwait.Until(t, "256 consumers", func() bool { return consumers() >= 256 })
	// A later look for streams reads no more of them either.
	seen := bh.Stats().JetStreamErrors
	testwait.Until(t, "another look for streams", func() bool { return bh.Stats().JetStreamErrors > seen })
	if n := consumers(); n != 256 {
		t.Errorf("%d consumers for the import, want 256", n)
	}
}

// TestJetStreamBurstWhole: a burst on a JetStream export, far larger than
// the topic's local queue and spool, published as fast as Publish returns
// by a publisher with its defaults, is stored whole: the bridge's
// subscription waits for room (colugo.Block) and the burst waits in the
// publisher's send queue, instead of being dropped at the bridge.
func TestJetStreamBurstWhole(t *testing.T) {
	srv := natsServerJS(t)
	a := colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.QueueBytes = 32 << 10
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 100000, Spool: 32 << 10}}}
	ba, _ := runBridge(t, a, ca)
	ctx := t.Context()
	pub, _ := colugo.NewPublisher[[]byte](a.NewNode("robot"), "log", colugo.WithCodec(codec.Raw{}))
	if err := pub.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	const n, size = 4000, 1024 // 4 MiB: 64 times the queue and spool together
	payload := make([]byte, size)
	for range n {
		if err := pub.Publish(ctx, payload); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "the burst stored or counted", func() bool {
		st := ba.Stats()
		return st.Export.Messages+st.Export.Drops.Queue+st.Export.Drops.Link >= n && st.Spooled == 0
	})
	st := ba.Stats()
	if st.Export.Messages != n {
		t.Errorf("stored %d of %d (queue drops %d, link drops %d)", st.Export.Messages, n, st.Export.Drops.Queue, st.Export.Drops.Link)
	}
}

// TestJetStreamSlowReliableSubscriber: a backlog that JetStream sends
// faster than a site subscriber with the Block policy reads waits for it
// (the importing bridge's publisher waits for room, and acks after), rather
// than being dropped on the bridge's send queue to it and acked as handed on.
func TestJetStreamSlowReliableSubscriber(t *testing.T) {
	srv := natsServerJS(t)
	a := colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 10000}}}
	runBridge(t, a, ca)
	// Site b on the zmq transport, whose send queues are bounded: the
	// bridge's to the viewer holds 32 KiB.
	siteB := benchSite(t)
	cb := cfgFor(srv, "b")
	cb.NATS.ReconnectWait = 20 * time.Millisecond
	cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}}
	bb := runBridgeOn(t, siteB("bridge-b", zmq.WithSendQueueBytes(32<<10)), cb)
	ctx := t.Context()
	got, err := colugo.Subscribe[[]byte](ctx, siteB("viewer"), "log", colugo.WithBuffer(1),
		colugo.WithQueueBytes(8<<10), colugo.WithDropPolicy(colugo.Block(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := colugo.NewPublisher[[]byte](a.NewNode("robot"), "log")
	payload := func(i int) []byte { return fmt.Appendf(bytes.Repeat([]byte{'x'}, 1024), "%d", i) }
	until(t, "log on site b", func() { _ = pub.Publish(ctx, payload(0)) }, recv(got, func(v []byte) bool { return bytes.HasSuffix(v, []byte("x0")) }))
	const n = 2000
	for i := 1; i <= n; i++ {
		if err := pub.Publish(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Read slowly at first: the backlog piles up in front of the viewer.
	next := 1
	timeout := time.After(30 * time.Second)
	for next <= n {
		select {
		case v := <-got:
			if bytes.HasSuffix(v, []byte("x0")) {
				continue // warm-up
			}
			if want := payload(next); !bytes.Equal(v, want) {
				t.Fatalf("got %q..., want message %d; %+v", v[len(v)-8:], next, bb.Stats())
			}
			if next < 200 {
				time.Sleep(time.Millisecond) // a slow reader, not a synchronisation
			}
			next++
		case <-timeout:
			t.Fatalf("got %d of %d; %+v", next-1, n, bb.Stats())
		}
	}
}

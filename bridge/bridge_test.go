package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

type Pose struct {
	X   float64
	Seq int
}

// twoSites bridges two separate colugo networks, a and b, through one NATS
// server: a exports a/pose, a/echo and imports b/cmd, b/echo; b the
// reverse.
func twoSites(t *testing.T) (s *siteRig) {
	t.Helper()
	srv := natsServer(t, 0)
	s = &siteRig{a: colugotest.NewNetwork(t), b: colugotest.NewNetwork(t)}
	s.nc = natsClient(t, srv)
	ca := cfgFor(srv, "a")
	ca.Export = bridge.Lists{Topics: []bridge.Topic{{Name: "a/pose"}}, Services: []bridge.Service{{Name: "a/echo"}}}
	ca.Import = bridge.Lists{Topics: []bridge.Topic{{Name: "b/cmd"}}, Services: []bridge.Service{{Name: "b/echo"}}}
	cb := cfgFor(srv, "b")
	cb.Export = ca.Import
	cb.Import = ca.Export
	s.ba, s.na = runBridge(t, s.a, ca)
	s.bb, s.nb = runBridge(t, s.b, cb)
	return s
}

type siteRig struct {
	a, b   *colugotest.Network
	ba, bb *bridge.Bridge
	na, nb *colugo.Node // bridge nodes
	nc     *nats.Conn   // the test's own client
}

func TestTopicsBothWays(t *testing.T) {
	s := twoSites(t)
	ctx := t.Context()
	// All that NATS carries, to check that a/secret is not on it.
	var mu sync.Mutex
	var subjects []string
	if _, err := s.nc.Subscribe("colugo.>", func(m *nats.Msg) {
		mu.Lock()
		subjects = append(subjects, m.Subject)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}

	pubA := s.a.NewNode("robot")
	subB := s.b.NewNode("viewer")
	poses, err := colugo.SubscribeReceived[Pose](ctx, subB, "a/pose")
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := colugo.Subscribe[Pose](ctx, subB, "a/secret")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := colugo.NewPublisher[Pose](pubA, "a/pose")
	secret, _ := colugo.NewPublisher[Pose](pubA, "a/secret")
	mctx := colugo.WithMetadata(ctx, colugo.Metadata{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	var got colugo.Received[Pose]
	until(t, "a/pose on site b", func() {
		_ = secret.Publish(ctx, Pose{X: -1})
		_ = pub.Publish(mctx, Pose{X: 1})
	}, recv(poses, func(r colugo.Received[Pose]) bool { got = r; return r.Value.X == 1 }))
	if got.Metadata["traceparent"] == "" || got.Codec != "json" || got.Sender != s.nb.ID() {
		t.Errorf("received %+v: want the traceparent, codec json, sent by site b's bridge", got)
	}

	// b → a
	cmds, err := colugo.Subscribe[string](ctx, s.a.NewNode("robot-ctl"), "b/cmd")
	if err != nil {
		t.Fatal(err)
	}
	cmd, _ := colugo.NewPublisher[string](s.b.NewNode("operator"), "b/cmd")
	until(t, "b/cmd on site a", func() { _ = cmd.Publish(ctx, "go") },
		recv(cmds, func(v string) bool { return v == "go" }))

	// a/secret is listed nowhere: the bridge never subscribed to it, NATS
	// never carried it, and site b never saw it.
	for _, ss := range s.na.Stats().Subscriptions {
		if ss.Topic == "a/secret" {
			t.Errorf("site a's bridge subscribes to a/secret")
		}
	}
	mu.Lock()
	for _, subj := range subjects {
		if strings.Contains(subj, "secret") {
			t.Errorf("NATS carried %s", subj)
		}
	}
	mu.Unlock()
	select {
	case v := <-secrets:
		t.Errorf("site b got a/secret %+v", v)
	default:
	}
	if st := s.ba.Stats(); st.Link != bridge.LinkUp || st.Export.Messages == 0 {
		t.Errorf("site a's bridge: %+v", st)
	}
}

func TestServicesBothWays(t *testing.T) {
	s := twoSites(t)
	ctx := t.Context()
	var handlerLeft sync.Map // the remaining time each handler saw, by request
	echo := func(site string) func(context.Context, string) (string, error) {
		return func(ctx context.Context, req string) (string, error) {
			if d, ok := ctx.Deadline(); ok {
				handlerLeft.Store(site+req, time.Until(d))
			}
			switch req {
			case "fail":
				return "", colugo.Errorf(colugo.CodeNotFound, "no such %s", req)
			case "slow":
				<-ctx.Done()
				return "", ctx.Err()
			}
			if md := colugo.IncomingMetadata(ctx); md["tenant"] != "" {
				return site + ":" + req + "@" + md["tenant"], nil
			}
			return site + ":" + req, nil
		}
	}
	if _, err := colugo.Serve(s.a.NewNode("server-a"), "a/echo", echo("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(s.b.NewNode("server-b"), "b/echo", echo("b")); err != nil {
		t.Fatal(err)
	}
	cliA, cliB := s.a.NewNode("client-a"), s.b.NewNode("client-b")
	for _, c := range []struct {
		cli     *colugo.Node
		service string
		want    string
	}{{cliB, "a/echo", "a:hi@t1"}, {cliA, "b/echo", "b:hi@t1"}} {
		wctx, cancel := context.WithTimeout(ctx, wait)
		if err := c.cli.WaitServers(wctx, c.service, 1); err != nil {
			t.Fatalf("%s never imported: %v", c.service, err)
		}
		cancel()
		rctx, cancel := context.WithTimeout(colugo.WithMetadata(ctx, colugo.Metadata{"tenant": "t1"}), 2*time.Second)
		got, err := colugo.Request[string, string](rctx, c.cli, c.service, "hi")
		cancel()
		if err != nil || got != c.want {
			t.Fatalf("%s: %q, %v; want %q", c.service, got, err, c.want)
		}
		if left, _ := handlerLeft.Load(c.service[:1] + "hi"); left == nil || left.(time.Duration) > 2*time.Second {
			t.Errorf("%s: the handler's deadline was %v away, want under the caller's 2s", c.service, left)
		}

		// A remote error keeps its code and message.
		_, err = colugo.Request[string, string](ctx, c.cli, c.service, "fail")
		var re *colugo.RemoteError
		if !errors.As(err, &re) || re.Code != colugo.CodeNotFound || !strings.Contains(re.Message, "no such fail") {
			t.Errorf("%s fail: %v; want a RemoteError not_found with the handler's message", c.service, err)
		}

		// The caller's deadline holds end to end: the remote handler's
		// ctx ends with it.
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = colugo.Request[string, string](sctx, c.cli, c.service, "slow")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
			t.Errorf("%s slow: %v after %v; want DeadlineExceeded after about 300ms", c.service, err, time.Since(start))
		}
		if left, _ := handlerLeft.Load(c.service[:1] + "slow"); left == nil || left.(time.Duration) > 300*time.Millisecond {
			t.Errorf("%s slow: the handler's deadline was %v away, want under 300ms", c.service, left)
		}
	}
}

// TestNoResponders: once nobody serves an imported service on NATS, its
// callers get CodeUnavailable at once, not a timeout.
func TestNoResponders(t *testing.T) {
	s := twoSites(t)
	ctx := t.Context()
	srv, err := colugo.Serve(s.a.NewNode("server-a"), "a/echo", func(_ context.Context, r string) (string, error) { return r, nil })
	if err != nil {
		t.Fatal(err)
	}
	cli := s.b.NewNode("client")
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := cli.WaitServers(wctx, "a/echo", 1); err != nil {
		t.Fatal(err)
	}
	if got, err := colugo.Request[string, string](ctx, cli, "a/echo", "x"); err != nil || got != "x" {
		t.Fatalf("%q, %v", got, err)
	}
	srv.Close()
	var err2 error
	testwait.Until(t, "no responders", func() bool {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err2 = colugo.Request[string, string](rctx, cli, "a/echo", "x")
		return colugo.CodeOf(err2) == colugo.CodeUnavailable && strings.Contains(err2.Error(), "no responders")
	})
}

func TestPrefix(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	nc := natsClient(t, srv)
	raw, err := nc.SubscribeSync("colugo.t.fleet.r1.>")
	if err != nil {
		t.Fatal(err)
	}
	ca := cfgFor(srv, "a")
	ca.Prefix = "fleet/r1" // the default for entries without their own
	ca.Export.Topics = []bridge.Topic{{Name: "pose"}}
	runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{
		{Name: "pose", Prefix: "fleet/r1"}, // stripped: b's "pose" is r1's
		{Name: "fleet/r1/pose"},            // kept whole
	}
	runBridge(t, b, cb)

	viewer := b.NewNode("viewer")
	stripped, _ := colugo.Subscribe[int](t.Context(), viewer, "pose")
	whole, _ := colugo.Subscribe[int](t.Context(), viewer, "fleet/r1/pose")
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "pose")
	until(t, "pose under both names", func() { _ = pub.Publish(t.Context(), 7) },
		recv(stripped, func(v int) bool { return v == 7 }))
	until(t, "fleet/r1/pose", func() { _ = pub.Publish(t.Context(), 8) },
		recv(whole, func(v int) bool { return v == 8 }))
	m, err := raw.NextMsg(wait)
	if err != nil || m.Subject != "colugo.t.fleet.r1.pose" {
		t.Fatalf("NATS subject: %v, %v; want colugo.t.fleet.r1.pose", m, err)
	}
}

// TestPatterns: export and import entries with * and **.
func TestPatterns(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "robot/*/pose"}}
	_, na := runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "robot/**"}}
	runBridge(t, b, cb)
	viewer := b.NewNode("viewer")
	r1, _ := colugo.Subscribe[int](t.Context(), viewer, "robot/r1/pose")
	robot := a.NewNode("robot")
	p1, _ := colugo.NewPublisher[int](robot, "robot/r1/pose")
	deep, _ := colugo.NewPublisher[int](robot, "robot/r1/arm/pose") // not matched by robot/*/pose
	until(t, "robot/r1/pose", func() { _ = p1.Publish(t.Context(), 1); _ = deep.Publish(t.Context(), 2) },
		recv(r1, func(v int) bool { return v == 1 }))
	// robot/*/pose matched the one, not the other: no subscription to it.
	for _, ss := range na.Stats().Subscriptions {
		if ss.Topic == "robot/r1/arm/pose" {
			t.Errorf("robot/r1/arm/pose exported")
		}
	}
}

// TestPatternZeroSegments: "**" takes zero segments or more, as in
// colugo.SubscribePattern: robot/** carries robot itself (on its NATS
// subject of its own, colugo.t.robot, besides colugo.t.robot.>) and
// robot/a/b, and not robots.
func TestPatternZeroSegments(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "robot/**"}, {Name: "robots"}}
	runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "robot/**"}}
	runBridge(t, b, cb)
	viewer := b.NewNode("viewer")
	ctx := t.Context()
	all, _ := colugo.SubscribePatternReceived[int](ctx, viewer, "**")
	robot := a.NewNode("robot")
	var pubs []*colugo.Publisher[int]
	for _, name := range []string{"robot", "robot/a/b", "robots"} {
		p, _ := colugo.NewPublisher[int](robot, name)
		pubs = append(pubs, p)
	}
	got := map[string]bool{}
	until(t, "robot and robot/a/b on site b", func() {
		for i, p := range pubs {
			_ = p.Publish(ctx, i)
		}
	}, func(d time.Duration) bool {
		deadline := time.After(d)
		for {
			select {
			case r := <-all:
				got[r.Topic] = true
				if got["robot"] && got["robot/a/b"] {
					return true
				}
			case <-deadline:
				return false
			}
		}
	})
	if got["robots"] {
		t.Error("robots, which robot/** does not match, reached site b")
	}
	// robots was exported (its own entry) and is on NATS: only the
	// import's pattern kept it out. Ask NATS for what it has.
	raw := natsClient(t, srv)
	sub, err := raw.SubscribeSync("colugo.t.robots")
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	until(t, "robots on NATS", func() { _ = pubs[2].Publish(ctx, 2) }, func(d time.Duration) bool {
		_, err := sub.NextMsg(d)
		return err == nil
	})
	for {
		select {
		case r := <-all:
			if r.Topic == "robots" {
				t.Fatal("robots reached site b")
			}
			continue
		default:
		}
		break
	}
}

// TestMaxRate: a topic downsampled to 10 messages a second sends few of
// a burst, and the newest of it last.
func TestMaxRate(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "fast", MaxRate: 10}}
	ba, _ := runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "fast"}}
	runBridge(t, b, cb)
	got, _ := colugo.Subscribe[int](t.Context(), b.NewNode("viewer"), "fast")
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "fast")
	until(t, "a first message", func() { _ = pub.Publish(t.Context(), -1) },
		recv(got, func(v int) bool { return v == -1 }))
	before := ba.Stats().Export.Messages
	start := time.Now()
	const n = 200
	for i := 1; i <= n; i++ {
		if err := pub.Publish(t.Context(), i); err != nil {
			t.Fatal(err)
		}
	}
	// The newest of the burst arrives, at the end of its interval.
	if !recv(got, func(v int) bool { return v == n })(wait) {
		t.Fatal("the burst's newest message never arrived")
	}
	elapsed := time.Since(start)
	st := ba.Stats()
	sent := st.Export.Messages - before
	if max := uint64(elapsed/(100*time.Millisecond)) + 2; sent > max || st.Export.Drops.Rate == 0 {
		t.Errorf("%d of %d sent in %v (at most %d at 10/s), %d dropped for rate", sent, n, elapsed, max, st.Export.Drops.Rate)
	}
}

// TestMaxPayload: messages above the cap are dropped and counted, on
// export and on import.
func TestMaxPayload(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "blob", MaxPayload: 100}}
	ba, _ := runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "blob", MaxPayload: 50}}
	bb, _ := runBridge(t, b, cb)
	got, _ := colugo.Subscribe[[]byte](t.Context(), b.NewNode("viewer"), "blob", colugo.WithCodec(codec.Raw{}))
	pub, _ := colugo.NewPublisher[[]byte](a.NewNode("robot"), "blob", colugo.WithCodec(codec.Raw{}))
	until(t, "a small blob", func() { _ = pub.Publish(t.Context(), []byte("small")) },
		recv(got, func(v []byte) bool { return string(v) == "small" }))
	// One from each publisher, in order on each path: the big one first.
	big, mid := make([]byte, 1000), make([]byte, 80)
	_ = pub.Publish(t.Context(), big)
	_ = pub.Publish(t.Context(), mid) // passes a's cap, not b's
	_ = pub.Publish(t.Context(), []byte("end"))
	if !recv(got, func(v []byte) bool {
		if len(v) > 50 {
			t.Errorf("got %d bytes", len(v))
		}
		return string(v) == "end"
	})(wait) {
		t.Fatal("end never arrived")
	}
	if d := ba.Stats().Export.Drops.Payload; d != 1 {
		t.Errorf("export payload drops %d, want 1", d)
	}
	if d := bb.Stats().Import.Drops.Payload; d != 1 {
		t.Errorf("import payload drops %d, want 1", d)
	}
}

// TestLoop: two sites that both export and import one topic deliver each
// message exactly once to each subscriber.
func TestLoop(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	both := bridge.Lists{Topics: []bridge.Topic{{Name: "shared"}}}
	ca, cb := cfgFor(srv, "a"), cfgFor(srv, "b")
	ca.Export, ca.Import, cb.Export, cb.Import = both, both, both, both
	ba, _ := runBridge(t, a, ca)
	bb, _ := runBridge(t, b, cb)
	ctx := t.Context()
	subA, _ := colugo.Subscribe[string](ctx, a.NewNode("sub-a"), "shared", colugo.WithBuffer(1024))
	subB, _ := colugo.Subscribe[string](ctx, b.NewNode("sub-b"), "shared", colugo.WithBuffer(1024))
	pubA, _ := colugo.NewPublisher[string](a.NewNode("pub-a"), "shared")
	pubB, _ := colugo.NewPublisher[string](b.NewNode("pub-b"), "shared")
	// Warm up until each side hears the other.
	until(t, "a→b", func() { _ = pubA.Publish(ctx, "warm-a") }, recv(subB, func(v string) bool { return v == "warm-a" }))
	until(t, "b→a", func() { _ = pubB.Publish(ctx, "warm-b") }, recv(subA, func(v string) bool { return v == "warm-b" }))
	const n = 100
	for i := range n {
		_ = pubA.Publish(ctx, fmt.Sprintf("a%d", i))
		_ = pubB.Publish(ctx, fmt.Sprintf("b%d", i))
	}
	// Fences last: once each subscriber has both sites' fence, every
	// message before them on each path has arrived, and a looping one
	// would have come round at least once more.
	_ = pubA.Publish(ctx, "fence-a")
	_ = pubB.Publish(ctx, "fence-b")
	for name, ch := range map[string]<-chan string{"a": subA, "b": subB} {
		seen := map[string]int{}
		timeout := time.After(wait)
		for seen["fence-a"] == 0 || seen["fence-b"] == 0 {
			select {
			case v := <-ch:
				if !strings.HasPrefix(v, "warm") {
					seen[v]++
				}
			case <-timeout:
				t.Fatalf("site %s: fences never arrived (%d values)", name, len(seen))
			}
		}
		for i := range n {
			for _, k := range []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)} {
				if seen[k] != 1 {
					t.Errorf("site %s got %s %d times", name, k, seen[k])
				}
			}
		}
	}
	// Each bridge saw its own imports on its export subscription and
	// kept them home.
	if ba.Stats().Export.Drops.Loop == 0 || bb.Stats().Export.Drops.Loop == 0 {
		t.Errorf("loop drops: a %+v, b %+v", ba.Stats().Export.Drops, bb.Stats().Export.Drops)
	}
	// What one bridge exported the other imported, no more (a loop
	// would import copies beyond what was exported).
	testwait.Until(t, "imports settle", func() bool {
		return ba.Stats().Export.Messages == bb.Stats().Import.Messages && bb.Stats().Export.Messages == ba.Stats().Import.Messages
	})
}

// TestLinkRestart: with the NATS server stopped the sites work on, the
// bridges report the link down and count what they could not send;
// restarted on the same port, traffic resumes by itself.
func TestLinkRestart(t *testing.T) {
	port := freePort(t)
	srv := natsServer(t, port)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.NATS.ReconnectBuffer = -1 // drop at once while down: countable
	ca.Export.Topics = []bridge.Topic{{Name: "pose"}}
	ba, _ := runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "pose"}}
	bb, _ := runBridge(t, b, cb)
	ctx := t.Context()
	remote, _ := colugo.Subscribe[int](ctx, b.NewNode("viewer"), "pose")
	local, _ := colugo.Subscribe[int](ctx, a.NewNode("local-viewer"), "pose")
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "pose")
	until(t, "before the cut", func() { _ = pub.Publish(ctx, 1) }, recv(remote, func(v int) bool { return v == 1 }))

	srv.Shutdown()
	srv.WaitForShutdown()
	testwait.Until(t, "link down on both bridges", func() bool {
		return ba.Stats().Link == bridge.LinkDown && bb.Stats().Link == bridge.LinkDown
	})
	// The site is unaffected.
	until(t, "local traffic during the cut", func() { _ = pub.Publish(ctx, 2) }, recv(local, func(v int) bool { return v == 2 }))
	testwait.Until(t, "drops counted", func() bool { return ba.Stats().Export.Drops.Link > 0 })

	natsServer(t, port)
	testwait.Until(t, "link up again", func() bool {
		return ba.Stats().Link == bridge.LinkUp && bb.Stats().Link == bridge.LinkUp
	})
	until(t, "after the cut", func() { _ = pub.Publish(ctx, 3) }, recv(remote, func(v int) bool { return v == 3 }))
	if ba.Stats().Reconnects == 0 || bb.Stats().Disconnects == 0 {
		t.Errorf("reconnects a %d, disconnects b %d", ba.Stats().Reconnects, bb.Stats().Disconnects)
	}
}

// TestBadInput: malformed subjects and headers from NATS are counted and
// dropped; a good message after them still arrives.
func TestBadInput(t *testing.T) {
	srv := natsServer(t, 0)
	b := colugotest.NewNetwork(t)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "**"}}
	cb.Export.Services = []bridge.Service{{Name: "svc"}}
	bb, _ := runBridge(t, b, cb)
	nc := natsClient(t, srv)
	got, _ := colugo.Subscribe[string](t.Context(), b.NewNode("viewer"), "good")
	good := func() *nats.Msg {
		m := nats.NewMsg("colugo.t.good")
		m.Header.Set("Colugo-Codec", "json")
		m.Header.Set("Colugo-Origin", "x")
		m.Header.Set("Colugo-Bridge", "other")
		m.Data = []byte(`"ok"`)
		return m
	}
	until(t, "a good message", func() { _ = nc.PublishMsg(good()) }, recv(got, func(v string) bool { return v == "ok" }))

	before := bb.Stats().Import.Drops
	for _, subj := range []string{"colugo.t.bad_zz", "colugo.t.a_2E", "colugo.t._00", "colugo.t._ff"} {
		m := good()
		m.Subject = subj
		_ = nc.PublishMsg(m)
	}
	bad := []func(h nats.Header){
		func(h nats.Header) { h.Del("Colugo-Codec") },
		func(h nats.Header) { h.Del("Colugo-Origin") },
		func(h nats.Header) { h.Set("Colugo-Seq", "x") },
		func(h nats.Header) { h.Set("Colugo-Send-Time", "1e9") },
		func(h nats.Header) { h.Set("Colugo-Codec", strings.Repeat("c", 65)) },
		func(h nats.Header) { h.Set("Colugo-Md-BAD", "v") /* metadata keys are lowercase */ },
		func(h nats.Header) { h.Set("Colugo-Md-colugo.bridge.origin", "forged") },
		func(h nats.Header) { h.Set("Colugo-Md-k", strings.Repeat("v", 2000)) },
		func(h nats.Header) { h["Colugo-Codec"] = []string{"json", "raw"} },
	}
	for i, f := range bad {
		m := good()
		m.Data = []byte(fmt.Sprintf(`"bad %d"`, i))
		f(m.Header)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatalf("bad %d: %v", i, err)
		}
	}
	plain := &nats.Msg{Subject: "colugo.t.good", Data: []byte(`"no headers"`)}
	_ = nc.PublishMsg(plain)
	m := good()
	m.Data = []byte(`"end"`)
	_ = nc.PublishMsg(m)
	// One subscription, one publisher: in order, so the rest was handled.
	if !recv(got, func(v string) bool {
		if v != "ok" && v != "end" {
			t.Errorf("got %q", v)
		}
		return v == "end"
	})(wait) {
		t.Fatal("end never arrived")
	}
	after := bb.Stats().Import.Drops
	if d := after.BadSubject - before.BadSubject; d != 4 {
		t.Errorf("bad subjects %d, want 4", d)
	}
	if d := after.BadHeader - before.BadHeader; d != uint64(len(bad))+1 {
		t.Errorf("bad headers %d, want %d", d, len(bad)+1)
	}

	// A request without headers gets a reply, not silence.
	if _, err := colugo.Serve(b.NewNode("server"), "svc", func(_ context.Context, r string) (string, error) { return r, nil }); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "svc exported", func() bool {
		r, err := nc.Request("colugo.s.svc", []byte(`"x"`), time.Second)
		return err == nil && r.Header.Get("Colugo-Status") == fmt.Sprint(int(colugo.CodeInvalidArgument))
	})
	if bb.Stats().Export.Drops.BadHeader == 0 {
		t.Error("request without headers not counted")
	}
}

func TestConfigRefused(t *testing.T) {
	node := colugotest.NewNetwork(t).NewNode("bridge")
	ok := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{"nats://127.0.0.1:1"}}}
	for name, f := range map[string]func(c *bridge.Config){
		"no site":          func(c *bridge.Config) { c.Site = "" },
		"site with space":  func(c *bridge.Config) { c.Site = "a b" },
		"no url":           func(c *bridge.Config) { c.NATS.URLs = nil },
		"two auths":        func(c *bridge.Config) { c.NATS.Token = "t"; c.NATS.User = "u" },
		"cert without key": func(c *bridge.Config) { c.NATS.TLS.Cert = "c.pem" },
		"empty topic":      func(c *bridge.Config) { c.Export.Topics = []bridge.Topic{{}} },
		"$ topic":          func(c *bridge.Config) { c.Import.Topics = []bridge.Topic{{Name: "$describe"}} },
		"negative rate":    func(c *bridge.Config) { c.Export.Topics = []bridge.Topic{{Name: "x", MaxRate: -1}} },
		"pattern import":   func(c *bridge.Config) { c.Import.Services = []bridge.Service{{Name: "a/*"}} },
		"prefix pattern":   func(c *bridge.Config) { c.Prefix = "a/*" },
		"prefix slash":     func(c *bridge.Config) { c.Prefix = "a/" },
		"unbounded stream": func(c *bridge.Config) {
			c.Export.Topics = []bridge.Topic{{Name: "x", JetStream: &bridge.JetStream{MaxAge: time.Hour}}}
		},
		"negative stream bound": func(c *bridge.Config) {
			c.Import.Topics = []bridge.Topic{{Name: "x", JetStream: &bridge.JetStream{MaxMsgs: -1}}}
		},
		"six replicas": func(c *bridge.Config) {
			c.Export.Topics = []bridge.Topic{{Name: "x", JetStream: &bridge.JetStream{MaxMsgs: 10, Replicas: 6}}}
		},
		"negative replicas": func(c *bridge.Config) {
			c.Export.Topics = []bridge.Topic{{Name: "x", JetStream: &bridge.JetStream{MaxMsgs: 10, Replicas: -1}}}
		},
		"negative spool": func(c *bridge.Config) {
			c.Export.Topics = []bridge.Topic{{Name: "x", JetStream: &bridge.JetStream{MaxMsgs: 10, Spool: -1}}}
		},
		"covered export topic": func(c *bridge.Config) {
			c.Export.Topics = []bridge.Topic{{Name: "robot/**"}, {Name: "robot/1/log", JetStream: &bridge.JetStream{MaxMsgs: 10}}}
		},
		"covered import pattern": func(c *bridge.Config) {
			c.Import.Topics = []bridge.Topic{{Name: "robot/*/log", Prefix: "x"}, {Name: "robot/a/log", Prefix: "x"}}
		},
		"covered by a wider pattern": func(c *bridge.Config) {
			c.Import.Topics = []bridge.Topic{{Name: "*/*/*/**"}, {Name: "*/**/x/x"}}
		},
		"covered export service": func(c *bridge.Config) {
			c.Export.Services = []bridge.Service{{Name: "arm/**"}, {Name: "arm/move"}}
		},
		"import service twice": func(c *bridge.Config) {
			c.Import.Services = []bridge.Service{{Name: "arm/move", Prefix: "a"}, {Name: "arm/move", Prefix: "b"}}
		},
		"both ways": func(c *bridge.Config) {
			c.Export.Services = []bridge.Service{{Name: "s/**"}}
			c.Import.Services = []bridge.Service{{Name: "s/x"}}
		},
	} {
		c := ok
		f(&c)
		if b, err := bridge.New(node, c); !errors.Is(err, bridge.ErrConfig) {
			if b != nil {
				b.Close()
			}
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// TestSameSiteBridges: of two bridges of one site, the one importing a
// topic that the other exports never brings the site's own messages back.
func TestSameSiteBridges(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	c1, c2, cb := cfgFor(srv, "a"), cfgFor(srv, "a"), cfgFor(srv, "b")
	c1.Export.Topics = []bridge.Topic{{Name: "x"}}
	c2.Import.Topics = []bridge.Topic{{Name: "x"}}
	cb.Import.Topics = []bridge.Topic{{Name: "x"}}
	runBridge(t, a, c1)
	a2, _ := runBridge(t, a, c2)
	runBridge(t, b, cb)
	ctx := t.Context()
	local, _ := colugo.Subscribe[int](ctx, a.NewNode("sub-a"), "x", colugo.WithBuffer(1024))
	remote, _ := colugo.Subscribe[int](ctx, b.NewNode("sub-b"), "x")
	pub, _ := colugo.NewPublisher[int](a.NewNode("pub"), "x")
	until(t, "x on site b", func() { _ = pub.Publish(ctx, 0) }, recv(remote, func(int) bool { return true }))
	until(t, "x on site a", func() { _ = pub.Publish(ctx, 0) }, recv(local, func(int) bool { return true }))
	before := a2.Stats().Import.Drops.Loop
	const n = 10
	for i := 1; i <= n; i++ {
		_ = pub.Publish(ctx, i)
	}
	testwait.Until(t, "a2 refuses the site's own", func() bool { return a2.Stats().Import.Drops.Loop >= before+n })
	seen := map[int]int{}
	for len(seen) < n || seen[n] == 0 {
		if v := colugotest.Next(t, local, wait); v > 0 {
			seen[v]++
		}
	}
	for i := 1; i <= n; i++ {
		if seen[i] != 1 {
			t.Errorf("site a got %d %d times", i, seen[i])
		}
	}
	if st := a2.Stats(); st.Import.Messages != 0 {
		t.Errorf("a2 imported %d of its site's messages", st.Import.Messages)
	}
}

// TestServiceShared: two sites exporting one service share its requests
// (one NATS queue group per service).
func TestServiceShared(t *testing.T) {
	srv := natsServer(t, 0)
	a, b, c := colugotest.NewNetwork(t), colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	var exporters []*bridge.Bridge
	for _, s := range []struct {
		net  *colugotest.Network
		site string
	}{{a, "a"}, {c, "c"}} {
		cfg := cfgFor(srv, s.site)
		cfg.Export.Services = []bridge.Service{{Name: "who"}}
		br, _ := runBridge(t, s.net, cfg)
		exporters = append(exporters, br)
		site := s.site
		if _, err := colugo.Serve(s.net.NewNode("server"), "who", func(context.Context, string) (string, error) { return site, nil }); err != nil {
			t.Fatal(err)
		}
	}
	cb := cfgFor(srv, "b")
	cb.Import.Services = []bridge.Service{{Name: "who"}}
	runBridge(t, b, cb)
	cli := b.NewNode("client")
	wctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := cli.WaitServers(wctx, "who", 1); err != nil {
		t.Fatal(err)
	}
	// Until both sites have answered: each has its share, whichever
	// subscribed first.
	seen := map[string]int{}
	sent := 0
	testwait.Until(t, "answers from both sites", func() bool {
		sent++
		got, err := colugo.Request[string, string](t.Context(), cli, "who", "?")
		if err == nil {
			seen[got]++
		}
		return seen["a"] > 0 && seen["c"] > 0
	})
	// Each request went to one site only: the exporters forwarded as many
	// as were sent, not one per site.
	forwarded := func() (n uint64) {
		for _, e := range exporters {
			n += e.Stats().Export.Requests
		}
		return n
	}
	testwait.Until(t, "forwarded requests counted", func() bool { return forwarded() >= uint64(sent) })
	if n := forwarded(); n != uint64(sent) {
		t.Errorf("%d requests forwarded by the two sites for %d sent", n, sent)
	}
}

// TestQueueDrops: a burst faster than NATS publishing fills the exported
// topic's bounded queue; what it dropped is counted, so that every message
// the site published is either sent or counted.
func TestQueueDrops(t *testing.T) {
	srv := natsServer(t, 0)
	a := colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.QueueBytes = 1 // the channel (64) and one value
	ca.Export.Topics = []bridge.Topic{{Name: "burst"}}
	ba, na := runBridge(t, a, ca)
	pub, _ := colugo.NewPublisher[[]byte](a.NewNode("robot"), "burst", colugo.WithCodec(codec.Raw{}))
	wctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := pub.WaitSubscribers(wctx, 1); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	payload := make([]byte, 1024)
	for range n {
		_ = pub.Publish(t.Context(), payload)
	}
	testwait.Until(t, "every message sent or counted", func() bool {
		st := ba.Stats()
		return st.Export.Messages+st.Export.Drops.Queue == n
	})
	var dropped uint64
	for _, ss := range na.Stats().Subscriptions {
		dropped += ss.Dropped
	}
	if st := ba.Stats(); st.Export.Drops.Queue != dropped {
		t.Errorf("queue drops %d, the node's subscription dropped %d", st.Export.Drops.Queue, dropped)
	}
	t.Logf("%+v", ba.Stats().Export)
}

// TestQueueBudget: the exported topics' queues share QueueBudget: a burst
// on several topics that each queue alone would hold (QueueBytes) is cut
// to the budget, each message sent or counted, and Stats().Queued stays
// within the budget plus one message per topic.
func TestQueueBudget(t *testing.T) {
	srv := natsServer(t, 0)
	a := colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.QueueBytes = 64 << 20 // a whole burst per topic
	ca.QueueBudget = 1       // one message per topic, together
	ca.Export.Topics = []bridge.Topic{{Name: "burst/*"}}
	ba, _ := runBridge(t, a, ca)
	robot := a.NewNode("robot")
	const topics, n, size = 3, 5000, 1024
	var pubs []*colugo.Publisher[[]byte]
	for i := range topics {
		pub, _ := colugo.NewPublisher[[]byte](robot, fmt.Sprint("burst/", i), colugo.WithCodec(codec.Raw{}))
		wctx, cancel := context.WithTimeout(t.Context(), wait)
		err := pub.WaitSubscribers(wctx, 1) // site a's bridge
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, pub)
	}
	payload := make([]byte, size)
	var wg sync.WaitGroup
	for _, pub := range pubs {
		wg.Go(func() {
			for range n {
				_ = pub.Publish(t.Context(), payload)
			}
		})
	}
	var maxQueued uint64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for busy := true; busy; {
		select {
		case <-done:
			busy = false
		default:
			maxQueued = max(maxQueued, ba.Stats().Queued)
			runtime.Gosched()
		}
	}
	testwait.Until(t, "every message sent or counted", func() bool {
		st := ba.Stats()
		return st.Export.Messages+st.Export.Drops.Queue == topics*n
	})
	st := ba.Stats()
	t.Logf("sent %d, dropped %d, at most %d bytes queued", st.Export.Messages, st.Export.Drops.Queue, maxQueued)
	if st.Export.Drops.Queue == 0 {
		t.Error("nothing dropped at the budget")
	}
	// Two messages per topic past the budget: DropOldest keeps the newest
	// queued while the one before is being handed to the exporter
	// (colugo.WithQueueBudget; one in 1 run of 20 reached 4 of 1 KiB).
	if limit := uint64(1 + 2*topics*(size+colugo.QueueEntryOverhead)); maxQueued > limit {
		t.Errorf("%d bytes queued, want at most %d", maxQueued, limit)
	}
	testwait.Until(t, "the queues drained", func() bool { return ba.Stats().Queued == 0 })
}

// TestMaxExportTopics: a pattern export follows MaxExportTopics matches
// at most (a subscription each); the others are counted, logged once, and
// nothing of theirs crosses.
func TestMaxExportTopics(t *testing.T) {
	srv := natsServer(t, 0)
	a := colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.MaxExportTopics = 2
	ca.Export.Topics = []bridge.Topic{{Name: "t/*"}}
	var logged logBuffer
	ca.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	ba, _ := runBridge(t, a, ca)
	robot := a.NewNode("robot")
	const topics = 5
	var pubs []*colugo.Publisher[int]
	for i := range topics {
		p, _ := colugo.NewPublisher[int](robot, fmt.Sprint("t/", i))
		pubs = append(pubs, p)
	}
	testwait.Until(t, "three topics refused", func() bool { return ba.Stats().ExportRefused == topics-2 })
	if st := ba.Status(); len(st.Exporting.Topics) != 2 {
		t.Errorf("exporting %v, want 2 topics", st.Exporting.Topics)
	}
	subscribed := func() int {
		n := 0
		for _, p := range pubs {
			if p.Subscribers() > 0 {
				n++
			}
		}
		return n
	}
	testwait.Until(t, "the bridge subscribed to two topics", func() bool { return subscribed() == 2 })
	for _, p := range pubs {
		_ = p.Publish(t.Context(), 1)
	}
	testwait.Until(t, "the exported topics' messages sent", func() bool { return ba.Stats().Export.Messages == 2 })
	if n := strings.Count(logged.String(), "MaxExportTopics reached"); n != 1 {
		t.Errorf("the limit logged %d times, want once:\n%s", n, logged.String())
	}
}

// TestMetadataPerMessage: each exported message carries its own metadata,
// none when it has none, whatever the message before it had.
func TestMetadataPerMessage(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "m"}}
	runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = ca.Export.Topics
	runBridge(t, b, cb)
	ctx := t.Context()
	got, _ := colugo.SubscribeReceived[int](ctx, b.NewNode("viewer"), "m", colugo.WithBuffer(64))
	pub, _ := colugo.NewPublisher[int](a.NewNode("robot"), "m")
	until(t, "m on site b", func() { _ = pub.Publish(ctx, 0) }, recv(got, func(r colugo.Received[int]) bool { return r.Value == 0 }))
	want := []string{"v1", "", "", "v2", "v3", ""}
	for i, v := range want {
		mctx := ctx
		if v != "" {
			mctx = colugo.WithMetadata(ctx, colugo.Metadata{"k": v})
		}
		if err := pub.Publish(mctx, i+1); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(want); {
		r := colugotest.Next(t, got, wait)
		if r.Value == 0 {
			continue // warm-up
		}
		if r.Value != i+1 || r.Metadata["k"] != want[i] {
			t.Errorf("message %d: value %d, metadata %v; want k=%q", i+1, r.Value, r.Metadata, want[i])
		}
		i++
	}
}

// TestBadInputServices: an imported service whose exporter on NATS answers
// with malformed replies gives its local callers clear errors, counted; a
// request above a service's max_payload is refused, both ways.
func TestBadInputServices(t *testing.T) {
	srv := natsServer(t, 0)
	b := colugotest.NewNetwork(t)
	cb := cfgFor(srv, "b")
	cb.Import.Services = []bridge.Service{{Name: "far", MaxPayload: 10}}
	cb.Export.Services = []bridge.Service{{Name: "near", MaxPayload: 10}}
	bb, _ := runBridge(t, b, cb)
	ctx := t.Context()
	raw := colugo.WithCodec(codec.Raw{})

	// The description a real server of far would give, from a network of
	// its own.
	other := colugotest.NewNetwork(t)
	if _, err := colugo.Serve(other.NewNode("model"), "far", func(_ context.Context, p []byte) ([]byte, error) { return p, nil }, raw); err != nil {
		t.Fatal(err)
	}
	var info colugo.TopicInfo
	look := other.NewNode("look")
	testwait.Until(t, "far described", func() bool {
		for _, p := range look.Peers() {
			for _, s := range p.Services {
				if s.Name == "far" {
					info = s
					return true
				}
			}
		}
		return false
	})
	infoJSON, _ := json.Marshal(info)
	// A fake exporter of far on NATS: its replies are what the request asks.
	nc := natsClient(t, srv)
	if _, err := nc.Subscribe("colugo.i.far", func(m *nats.Msg) { _ = m.Respond(infoJSON) }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("colugo.s.far", func(m *nats.Msg) {
		r := nats.NewMsg(m.Reply)
		r.Header.Set("Colugo-Codec", info.Codec)
		switch string(m.Data) {
		case "status":
			r.Header.Set("Colugo-Status", "x")
		case "big":
			r.Header.Set("Colugo-Status", "999")
		case "codec":
			r.Header.Set("Colugo-Codec", "other")
		}
		r.Data = m.Data
		_ = m.RespondMsg(r)
	}); err != nil {
		t.Fatal(err)
	}
	cli := b.NewNode("client")
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := cli.WaitServers(wctx, "far", 1); err != nil {
		t.Fatal(err)
	}
	call := func(req string) (string, error) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		got, err := colugo.Request[[]byte, []byte](rctx, cli, "far", []byte(req), raw)
		return string(got), err
	}
	if got, err := call("ok"); err != nil || got != "ok" {
		t.Fatalf("far(ok) = %q, %v", got, err)
	}
	before := bb.Stats().Import.Drops
	for req, want := range map[string]colugo.Code{
		"status":            colugo.CodeUnknown,
		"big":               colugo.CodeUnknown,
		"codec":             colugo.CodeCodecMismatch,
		"far above the cap": colugo.CodeInvalidArgument,
	} {
		if _, err := call(req); colugo.CodeOf(err) != want {
			t.Errorf("far(%q): %v; want %v", req, err, want)
		}
	}
	after := bb.Stats().Import.Drops
	if d := after.BadHeader - before.BadHeader; d != 3 {
		t.Errorf("bad reply headers counted %d, want 3", d)
	}
	if d := after.Payload - before.Payload; d != 1 {
		t.Errorf("payload refusals counted %d, want 1", d)
	}

	// From NATS: a request to near above its cap is refused with
	// CodeInvalidArgument, a small one served.
	if _, err := colugo.Serve(b.NewNode("server"), "near", func(_ context.Context, p []byte) ([]byte, error) { return p, nil }, raw); err != nil {
		t.Fatal(err)
	}
	req := func(data string) *nats.Msg {
		m := nats.NewMsg("colugo.s.near")
		m.Header.Set("Colugo-Codec", info.Codec)
		if info.Type != "" {
			m.Header.Set("Colugo-Type", info.Type)
		}
		m.Header.Set("Colugo-Origin", "x")
		m.Header.Set("Colugo-Bridge", "bx")
		m.Data = []byte(data)
		return m
	}
	testwait.Until(t, "near exported", func() bool {
		r, err := nc.RequestMsg(req("hi"), time.Second)
		return err == nil && r.Header.Get("Colugo-Status") == "" && string(r.Data) == "hi"
	})
	r, err := nc.RequestMsg(req(strings.Repeat("x", 11)), time.Second)
	if err != nil || r.Header.Get("Colugo-Status") != fmt.Sprint(int(colugo.CodeInvalidArgument)) {
		t.Errorf("near above its cap: %v, %v; want status invalid_argument", r, err)
	}
	if d := bb.Stats().Export.Drops.Payload; d != 1 {
		t.Errorf("export payload refusals %d, want 1", d)
	}
}

// TestOriginPerMessage: messages of one topic from two sites, interleaved,
// each carry their own origin on the importing site.
func TestOriginPerMessage(t *testing.T) {
	srv := natsServer(t, 0)
	a, b, c := colugotest.NewNetwork(t), colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ctx := t.Context()
	pubs := map[string]*colugo.Publisher[string]{}
	for site, net := range map[string]*colugotest.Network{"a": a, "c": c} {
		cfg := cfgFor(srv, site)
		cfg.Export.Topics = []bridge.Topic{{Name: "x"}}
		runBridge(t, net, cfg)
		pubs[site], _ = colugo.NewPublisher[string](net.NewNode("pub-"+site), "x")
	}
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "x"}}
	runBridge(t, b, cb)
	got, _ := colugo.SubscribeReceived[string](ctx, b.NewNode("viewer"), "x", colugo.WithBuffer(256))
	for _, site := range []string{"a", "c"} {
		until(t, "x from "+site, func() { _ = pubs[site].Publish(ctx, "warm-"+site) },
			recv(got, func(r colugo.Received[string]) bool { return r.Value == "warm-"+site }))
	}
	const n = 50
	for i := range n {
		_ = pubs["a"].Publish(ctx, fmt.Sprint("a", i))
		_ = pubs["c"].Publish(ctx, fmt.Sprint("c", i))
	}
	for seen := 0; seen < 2*n; {
		r := colugotest.Next(t, got, wait)
		if strings.HasPrefix(r.Value, "warm") {
			continue
		}
		seen++
		if o := r.Metadata["colugo.bridge.origin"]; !strings.HasPrefix(o, r.Value[:1]+" ") {
			t.Errorf("%s arrived with origin %q", r.Value, o)
		}
	}
}

// TestOverlappingEntries: of import entries that overlap, the first that
// matches a topic takes it, so each message arrives once (before, each
// entry's subscription published it: every message twice); entries that
// overlap without one covering the other are accepted.
func TestOverlappingEntries(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "robot/**"}}
	runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "robot/*/log"}, {Name: "robot/1/**"}, {Name: "robot/**"}}
	bb, _ := runBridge(t, b, cb)
	viewer := b.NewNode("viewer")
	robot := a.NewNode("robot")
	topics := []string{"robot/1/log", "robot/1/pose", "robot/2/pose"}
	got := make([]<-chan int, len(topics))
	pubs := make([]*colugo.Publisher[int], len(topics))
	for i, name := range topics {
		got[i], _ = colugo.Subscribe[int](t.Context(), viewer, name, colugo.WithBuffer(1024))
		pubs[i], _ = colugo.NewPublisher[int](robot, name)
		until(t, name, func() { _ = pubs[i].Publish(t.Context(), 0) }, recv(got[i], func(v int) bool { return v == 0 }))
	}
	const n = 200
	for v := 1; v <= n; v++ {
		for _, p := range pubs {
			_ = p.Publish(t.Context(), v)
		}
	}
	for i, name := range topics {
		seen := map[int]bool{}
		for v := 0; v != n; {
			v = colugotest.Next(t, got[i], wait)
			if v > 0 && seen[v] {
				t.Fatalf("%s: %d twice; %+v", name, v, bb.Stats().Import)
			}
			seen[v] = true
		}
	}
}

// TestConfigManyEntries: a config listing twenty thousand topics (and a
// few hundred patterns) is checked at once, not pair by pair (5000 took
// 17 s), and a topic listed twice among them is still refused.
func TestConfigManyEntries(t *testing.T) {
	node := colugotest.NewNode(t, "bridge")
	c := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{"nats://127.0.0.1:1"}}}
	for i := range 20000 {
		c.Export.Topics = append(c.Export.Topics, bridge.Topic{Name: fmt.Sprintf("robot/%d/pose", i)})
	}
	for i := range 600 {
		c.Export.Topics = append(c.Export.Topics, bridge.Topic{Name: fmt.Sprintf("robot/%d/arm/**", i)})
	}
	b, err := bridge.New(node, c)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	c.Export.Topics = append(c.Export.Topics, bridge.Topic{Name: "robot/7/pose"})
	if _, err := bridge.New(node, c); !errors.Is(err, bridge.ErrConfig) {
		t.Errorf("robot/7/pose listed twice: %v, want ErrConfig", err)
	}
}

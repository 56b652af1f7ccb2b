package bridge_test

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
)

// TestJetStreamRestartWhileFlowing: site b's bridge is closed while the
// stream's messages flow to it, and a new one takes over: site b gets
// every message after the last it had, once and in order (before the
// catch-up in order, 2 runs in 10 jumped ahead by up to 240 messages, the
// skipped ones coming after the ack wait).
func TestJetStreamRestartWhileFlowing(t *testing.T) {
	srv := natsServerJS(t)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: 10000}}}
	runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}}
	bb, _ := runBridge(t, b, cb)
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

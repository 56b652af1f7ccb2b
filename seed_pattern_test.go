package colugo_test

import (
	"context"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/testwait"
)

// TestSeedPatternSubscription: seed publishers of matching topics join a
// pattern subscription as they join Subscribe of their topic, whether
// their record comes before or after the subscription; a seed publisher
// of another topic and a seed reply server stay out; a publisher whose
// record goes is disconnected (issue 17's leftover, item 1).
func TestSeedPatternSubscription(t *testing.T) {
	dir := newFakeSeedDir()
	node := seedNode(t, dir, colugo.SeedConfig{})
	before := startSeedPeer(t, "pub", "0") // sends "warm" until stdin closes
	after := startSeedPeer(t, "pub", "0")
	other := startSeedPeer(t, "pub", "0")
	beforeRec := seedSocket("robot/a/pose", discovery.SeedPub, mustPort(t, before), "u1")
	afterRec := seedSocket("robot/b/pose", discovery.SeedPub, mustPort(t, after), "u2")
	otherRec := seedSocket("robot/a/status", discovery.SeedPub, mustPort(t, other), "u3")
	repRec := seedSocket("robot/c/pose", discovery.SeedRep, 1, "u4") // a pattern never subscribes to a service

	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: beforeRec}
	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: otherRec}
	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: repRec}
	testwait.Until(t, "the seed sockets", func() bool { return node.Stats().Seed.Sockets == 3 })

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := colugo.SubscribePatternReceived[string](ctx, node, "robot/*/pose")
	if err != nil {
		t.Fatal(err)
	}
	// JSON, the subscription's codec: the seed's "warm" frames are not JSON
	// text, so each is a counted DecodeError on its topic, never delivered.
	testwait.Until(t, "decode errors from the earlier seed publisher", func() bool {
		return node.Stats().Topics["robot/a/pose"].DecodeErrors > 0
	})
	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: afterRec}
	testwait.Until(t, "decode errors from the later seed publisher", func() bool {
		return node.Stats().Topics["robot/b/pose"].DecodeErrors > 0
	})
	select {
	case m := <-ch:
		t.Fatalf("delivered %+v, want nothing (the seed's frames are not JSON)", m)
	default:
	}
	if st := node.Stats(); st.Topics["robot/a/status"].Received != 0 || st.Seed.Connected != 2 {
		t.Errorf("robot/a/status received %d, %d seed publishers connected; want 0 and 2 (robot/a/pose, robot/b/pose)",
			st.Topics["robot/a/status"].Received, st.Seed.Connected)
	}

	// Raw bytes, as tools take them: the same frames arrive, with their topic.
	rawCtx, rawCancel := context.WithCancel(t.Context())
	defer rawCancel()
	raw, err := colugo.SubscribePatternReceived[[]byte](rawCtx, node, "robot/**", colugo.WithAnyCodec())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for len(seen) < 3 {
		m := recvSeed(t, raw)
		if string(m.Value) != "warm" || m.Codec != "raw" || m.Sender == "" {
			t.Fatalf("got %+v, want warm, codec raw, a seed sender", m)
		}
		seen[m.Topic]++
	}
	if seen["robot/c/pose"] != 0 {
		t.Errorf("the seed reply server's name joined: %v", seen)
	}
	st := node.Stats()
	if st.Seed.Connected != 3 { // one connection per seed publisher, whatever the subscriptions
		t.Errorf("Stats().Seed.Connected = %d, want 3", st.Seed.Connected)
	}
	pats := map[string]int{}
	for _, s := range st.Subscriptions {
		if s.Pattern != "" {
			pats[s.Pattern+" "+s.Topic]++
		}
	}
	for _, want := range []string{"robot/*/pose robot/a/pose", "robot/*/pose robot/b/pose", "robot/** robot/a/pose", "robot/** robot/b/pose", "robot/** robot/a/status"} {
		if pats[want] != 1 {
			t.Errorf("Stats().Subscriptions (pattern topic): %v, want one %q", pats, want)
		}
	}
	if len(pats) != 5 {
		t.Errorf("Stats().Subscriptions (pattern topic): %v, want 5", pats)
	}

	// The later publisher's record goes: it is disconnected from both
	// subscriptions; the others flow on.
	dir.events <- discovery.SeedEvent{Kind: discovery.Left, Socket: afterRec}
	testwait.Until(t, "the gone seed publisher's connection to end", func() bool { return node.Stats().Seed.Connected == 2 })
	// A subscription's seed sync waits for the one that is disconnecting
	// (they are serialised), so after it no delivery of the gone publisher
	// is still under way.
	if _, err := colugo.Subscribe[[]byte](rawCtx, node, "barrier"); err != nil {
		t.Fatal(err)
	}
	received := func(topic string) uint64 { return node.Stats().Topics[topic].Received }
	gone, alive := received("robot/b/pose"), received("robot/a/pose")
	testwait.Until(t, "more from the remaining publishers", func() bool { return received("robot/a/pose") >= alive+20 })
	if n := received("robot/b/pose"); n != gone {
		t.Errorf("robot/b/pose received %d after its publisher went, want %d", n, gone)
	}
	// Ending the subscriptions ends their seed connections.
	cancel()
	rawCancel()
	testwait.Until(t, "the seed connections to end with the subscriptions", func() bool { return node.Stats().Seed.Connected == 0 })
}

// mustPort reads a seedpeer's "port P" line.
func mustPort(t *testing.T, p *seedPeer) int {
	t.Helper()
	return p.port(t)
}

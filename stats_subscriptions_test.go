package colugo_test

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// TestSubscriptionStats: two subscriptions of one topic that differ in
// speed each get their own counts; the topic's are their sum.
func TestSubscriptionStats(t *testing.T) {
	node := colugotest.NewNetwork(t).NewNode("n")
	fast, err := colugo.Subscribe[[]byte](t.Context(), node, "t", colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(1024))
	if err != nil {
		t.Fatal(err)
	}
	// Never read, one slot, no queue: all but the first are dropped.
	if _, err := colugo.Subscribe[[]byte](t.Context(), node, "t", colugo.WithCodec(codec.Raw{}),
		colugo.WithBuffer(1), colugo.WithQueueBytes(0), colugo.WithDropPolicy(colugo.DropNewest)); err != nil {
		t.Fatal(err)
	}
	// A JSON subscription refuses the raw messages.
	if _, err := colugo.Subscribe[int](t.Context(), node, "t"); err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[[]byte](node, "t", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for range n {
		if err := pub.Publish(t.Context(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		colugotest.Next(t, fast, 5*time.Second)
	}
	var subs []colugo.SubscriptionStats
	testwait.Until(t, "the counts to settle", func() bool {
		subs = node.Stats().Subscriptions
		return len(subs) == 3 && subs[0].Delivered+subs[0].DecodeErrors == n && subs[1].Delivered == n
	})
	f, slow, json := subs[0], subs[1], subs[2]
	if f.Topic != "t" || f.Dropped != 0 || f.Queued != 0 || f.Policy != colugo.DropOldest {
		t.Errorf("fast subscription: %+v", f)
	}
	if slow.Dropped != n-1 || slow.Queued != 1 || !slow.Slow || slow.Policy != colugo.DropNewest {
		t.Errorf("slow subscription: %+v, want %d dropped, 1 queued, slow", slow, n-1)
	}
	if json.DecodeErrors != n || json.Delivered != 0 {
		t.Errorf("JSON subscription: %+v, want %d decode errors", json, n)
	}
	top := node.Stats().Topics["t"]
	if top.Dropped != f.Dropped+slow.Dropped+json.Dropped || top.Delivered != f.Delivered+slow.Delivered || top.DecodeErrors != json.DecodeErrors {
		t.Errorf("topic %+v is not the sum of its subscriptions %+v", top, subs)
	}
}

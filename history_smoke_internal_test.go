package colugo

import (
	"context"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery/local"
)

func TestHistorySmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	mk := func(name string) *Node {
		n, err := NewNode(name, WithDiscovery(local.New(local.WithDir(dir))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b := mk("a"), mk("b")
	pub, err := NewPublisher[int](a, "t", WithHistory(3))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if err := pub.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	v, err := Latest[int](ctx, b, "t")
	t.Logf("latest %v %v", v, err)
	ch, err := SubscribeReceived[int](ctx, b, "t", WithHistory(3))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		r := <-ch
		t.Logf("got %+v", r)
	}
	go func() {
		for i := 6; ; i++ {
			if pub.Publish(ctx, i) != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	r := <-ch
	t.Logf("got %+v", r)
	t.Logf("%+v", b.Stats().Subscriptions)
}

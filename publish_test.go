package colugo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/examples/posepb"
	"github.com/colugo-go/colugo/internal/testkit"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
)

func TestSubscribersAndSchemas(t *testing.T) {
	net := colugotest.NewNetwork(t)
	a, b, c := net.NewNode("a"), net.NewNode("b"), net.NewNode("c")
	pub, _ := colugo.NewPublisher[*posepb.Pose](a, "pose", colugo.WithCodec(protobuf.Codec{}))
	if n := pub.Subscribers(); n != 0 {
		t.Fatalf("subscribers before any: %d", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	subCtx, unsubscribe := context.WithCancel(t.Context())
	_, _ = colugo.Subscribe[*posepb.Pose](subCtx, b, "pose", colugo.WithCodec(protobuf.Codec{}))
	_, _ = colugo.Subscribe[*posepb.Pose](t.Context(), c, "pose", colugo.WithCodec(protobuf.Codec{}))
	if err := pub.WaitSubscribers(ctx, 2); err != nil {
		t.Fatalf("WaitSubscribers: %v (have %d)", err, pub.Subscribers())
	}
	unsubscribe()
	testwait.Until(t, "one subscriber left", func() bool { return pub.Subscribers() == 1 })

	// The protobuf schema travels in $describe, for tools.
	var info colugo.TopicInfo
	testwait.Until(t, "b to see a's topic", func() bool {
		for _, p := range b.Peers() {
			if p.Name == "a" && len(p.Topics) == 1 {
				info = p.Topics[0]
				return true
			}
		}
		return false
	})
	if info.Type != "colugo.examples.Pose" || len(info.Schema) == 0 {
		t.Fatalf("topic info %+v", info)
	}
	_, _ = colugo.Serve(a, "add", func(context.Context, *posepb.AddRequest) (*posepb.AddReply, error) { return &posepb.AddReply{}, nil },
		colugo.WithCodec(protobuf.Codec{}))
	testwait.Until(t, "b to see a's service", func() bool {
		for _, p := range b.Peers() {
			if p.Name == "a" && len(p.Services) == 1 {
				info = p.Services[0]
				return true
			}
		}
		return false
	})
	if info.Type != "colugo.examples.AddRequest" || info.ReplyType != "colugo.examples.AddReply" || len(info.Schema) == 0 || len(info.ReplySchema) == 0 {
		t.Fatalf("service info %+v", info)
	}
}

// Two publishers of a topic on one node share its sequence: no false gaps.
func TestTwoPublishersOneNodeNoGaps(t *testing.T) {
	net := colugotest.NewNetwork(t)
	a, b := net.NewNode("a"), net.NewNode("b")
	ch, _ := colugo.Subscribe[int](t.Context(), b, "t", colugo.WithBuffer(256))
	p1, _ := colugo.NewPublisher[int](a, "t")
	p2, _ := colugo.NewPublisher[int](a, "t")
	testkit.PublishUntil(t, p1, -1, ch)
	for i := range 50 {
		_ = p1.Publish(t.Context(), i)
		_ = p2.Publish(t.Context(), i)
	}
	for range 100 {
		colugotest.Next(t, ch, wait)
	}
	if g := b.Stats().Topics["t"].Gaps; g != 0 {
		t.Fatalf("gaps = %d with two publishers on one node", g)
	}
}

// Once WaitSubscribers returns, the very next message reaches the
// subscriber on another node (real sockets): no slow-joiner loss.
func TestWaitSubscribersMeansConnected(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) *colugo.Node {
		n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	for i := range 5 {
		a, b := mk(fmt.Sprint("pub", i)), mk(fmt.Sprint("sub", i))
		topic := fmt.Sprint("first/", i)
		ch, _ := colugo.Subscribe[int](t.Context(), b, topic)
		pub, _ := colugo.NewPublisher[int](a, topic)
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		if err := pub.WaitSubscribers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		_ = pub.Publish(t.Context(), 42)
		if v := colugotest.Next(t, ch, wait); v != 42 {
			t.Fatalf("got %d", v)
		}
	}
}

// TestFlush: Flush returns once what was published has left the node,
// waits while a stalled subscriber's full queue holds messages from
// before it, and says when it cannot tell or the publisher is closed.
func TestFlush(t *testing.T) {
	net := colugotest.NewNetwork(t)
	pubNode, subNode := net.NewNode("pub"), net.NewNode("sub")
	pub, _ := colugo.NewPublisher[[]byte](pubNode, "t")
	payload := make([]byte, 64<<10) // a few thousand fill the publisher's queue
	ctx := t.Context()
	got, _ := colugo.Subscribe[[]byte](ctx, subNode, "t", colugo.WithBuffer(1), colugo.WithQueueBytes(1),
		colugo.WithDropPolicy(colugo.Block(time.Minute)))
	if err := pub.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	within := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return pub.Flush(ctx)
	}
	if err := within(10 * time.Second); err != nil {
		t.Fatalf("Flush with nothing published: %v", err)
	}
	// The subscriber reads nothing: its subscription blocks the delivery,
	// and the publisher's queue to it fills.
	for i := 0; pubNode.Stats().Topics["t"].Missed == 0; i++ {
		if i > 1<<16 {
			t.Fatal("no drop for a subscriber that reads nothing")
		}
		_ = pub.Publish(ctx, payload)
	}
	if err := within(100 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with a stalled subscriber: %v, want the deadline", err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- within(time.Minute) }()
	for {
		select {
		case <-got: // reading again lets the queue drain
			continue
		case err := <-flushed:
			if err != nil {
				t.Fatalf("Flush once the subscriber reads: %v", err)
			}
		}
		break
	}
	// A transport that cannot tell, and a closed publisher.
	t.Setenv(colugo.EnvDiscovery, "") // TestMain's host-only scope refuses an inproc address
	other, err := colugo.NewNode("other", colugo.WithTransport(noSync{inproc.NewNetwork().New()}), colugo.WithDiscovery(discovery.Static()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherPub, _ := colugo.NewPublisher[int](other, "t")
	if err := otherPub.Flush(ctx); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Flush on a transport that is not a Syncer: %v, want ErrUnsupported", err)
	}
	_ = pub.Close()
	if err := pub.Flush(ctx); !errors.Is(err, colugo.ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
}

// noSync hides a transport's Sync.
type noSync struct{ transport.Transport }

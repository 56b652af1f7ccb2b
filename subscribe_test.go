package colugo_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/examples/posepb"
	"github.com/colugo-go/colugo/internal/testkit"
	"github.com/colugo-go/colugo/internal/testwait"
)

func TestPubSubAcrossNodes(t *testing.T) {
	net := colugotest.NewNetwork(t)
	a, b := net.NewNode("a"), net.NewNode("b")
	poses, err := colugo.Subscribe[Pose](t.Context(), b, "robot/pose", colugo.WithBuffer(1024))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[Pose](a, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	testkit.PublishUntil(t, pub, Pose{Seq: -1}, poses)
	for i := range 100 {
		if err := pub.Publish(t.Context(), Pose{X: float64(i), Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		p := colugotest.Next(t, poses, wait)
		for p.Seq == -1 {
			p = colugotest.Next(t, poses, wait)
		}
		if p.Seq != i || p.X != float64(i) {
			t.Fatalf("got %+v, want seq %d", p, i)
		}
	}
	st := b.Stats().Topics["robot/pose"]
	if st.Received < 100 || st.Dropped != 0 || st.DecodeErrors != 0 || st.Gaps != 0 {
		t.Fatalf("subscriber stats %+v", st)
	}
	if got := a.Stats().Topics["robot/pose"].Published; got < 101 {
		t.Fatalf("publisher stats: published %d", got)
	}
}

// The seed's defect: a node's own subscriber never got its own topic.
func TestSameNodeDelivery(t *testing.T) {
	n := colugotest.NewNode(t, "solo")
	ch, err := colugo.Subscribe[string](t.Context(), n, "greeting")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[string](n, "greeting")
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(t.Context(), "hello"); err != nil {
		t.Fatal(err)
	}
	if got := colugotest.Next(t, ch, wait); got != "hello" {
		t.Fatalf("got %q", got)
	}
}

// Late subscribers and late publishers connect, and any UTF-8 topic works.
func TestLateJoiners(t *testing.T) {
	net := colugotest.NewNetwork(t)
	a, b := net.NewNode("a"), net.NewNode("b")
	const topic = "sensors/température_1/ünïcode 🌡"
	pub, err := colugo.NewPublisher[int](a, topic)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "b to see a's topic", func() bool {
		for _, p := range b.Peers() {
			if slices.ContainsFunc(p.Topics, func(ti colugo.TopicInfo) bool { return ti.Name == topic }) {
				return true
			}
		}
		return false
	})
	ch, err := colugo.Subscribe[int](t.Context(), b, topic) // subscriber after the publisher was discovered
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.PublishUntil(t, pub, 7, ch); got != 7 {
		t.Fatalf("got %d", got)
	}
	c := net.NewNode("c") // a node that joins later still gets the topic
	pub2, err := colugo.NewPublisher[int](c, topic)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for {
		_ = pub2.Publish(t.Context(), 8)
		select {
		case v := <-ch:
			if v == 8 {
				return
			}
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("late publisher's messages never arrived")
		}
	}
}

func TestSubscriptionCloses(t *testing.T) {
	n := colugotest.NewNode(t, "n")
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := colugo.Subscribe[int](ctx, n, "t")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("value after cancel")
		}
	case <-time.After(wait):
		t.Fatal("channel not closed after ctx cancel")
	}

	ch2, err := colugo.Subscribe[int](t.Context(), n, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch2; ok {
		t.Fatal("value after Close")
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := colugo.Subscribe[int](t.Context(), n, "t"); !errors.Is(err, colugo.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if _, err := colugo.NewPublisher[int](n, "t"); !errors.Is(err, colugo.ErrClosed) {
		t.Fatalf("NewPublisher after Close: %v", err)
	}
	if _, err := colugo.Request[int, int](t.Context(), n, "s", 1); !errors.Is(err, colugo.ErrClosed) {
		t.Fatalf("Request after Close: %v", err)
	}
}

func TestDropPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy colugo.DropPolicy
		want   []int
	}{
		{colugo.DropOldest, []int{7, 8, 9}},
		{colugo.DropNewest, []int{0, 1, 2}},
		{colugo.Block(time.Millisecond), []int{0, 1, 2}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			var mu sync.Mutex
			var errs []error
			n := colugotest.NewNode(t, "n", colugo.WithErrorHandler(func(err error) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}))
			// No queue: the policies apply to the channel itself
			// (TestQueueBytes has them at a queue's bound).
			ch, err := colugo.Subscribe[int](t.Context(), n, "t", colugo.WithBuffer(3), colugo.WithQueueBytes(0), colugo.WithDropPolicy(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := colugo.NewPublisher[int](n, "t")
			for i := range 10 {
				_ = pub.Publish(t.Context(), i)
			}
			// Block drops a local publisher's messages at once:
			// it waits only for publishers with back-pressure.
			testwait.Until(t, "7 drops", func() bool { return n.Stats().Topics["t"].Dropped == 7 })
			var got []int
			for range 3 {
				got = append(got, colugotest.Next(t, ch, wait))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if d := n.Stats().Topics["t"].Dropped; d != 7 {
				t.Fatalf("dropped %d, want 7", d)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(errs) != 1 || !errors.Is(errs[0], colugo.ErrSlowConsumer) {
				t.Fatalf("errors reported: %v, want one ErrSlowConsumer", errs)
			}
		})
	}
}

func TestCodecMismatchAndDecodeErrors(t *testing.T) {
	net := colugotest.NewNetwork(t)
	errc := make(chan error, 16)
	a := net.NewNode("a")
	b := net.NewNode("b", colugo.WithErrorHandler(func(err error) {
		select {
		case errc <- err:
		default:
		}
	}))
	good, err := colugo.Subscribe[Pose](t.Context(), b, "t")
	if err != nil {
		t.Fatal(err)
	}
	rawPub, _ := colugo.NewPublisher[[]byte](a, "t", colugo.WithCodec(codec.Raw{}))
	jsonPub, _ := colugo.NewPublisher[string](a, "t") // JSON, but a string where Pose is expected
	posePub, _ := colugo.NewPublisher[Pose](a, "t")
	testkit.PublishUntil(t, posePub, Pose{Seq: 1}, good)

	_ = rawPub.Publish(t.Context(), []byte("not json"))
	err = <-errc
	var de *colugo.DecodeError
	if !errors.As(err, &de) || !errors.Is(err, colugo.ErrCodecMismatch) || de.Codec != "raw" {
		t.Fatalf("raw into json subscriber: %v", err)
	}
	_ = jsonPub.Publish(t.Context(), "a string")
	err = <-errc
	if !errors.As(err, &de) || errors.Is(err, colugo.ErrCodecMismatch) {
		t.Fatalf("string into Pose: %v", err)
	}
	_ = posePub.Publish(t.Context(), Pose{Seq: 2})
	for p := range good {
		if p.Seq == 2 {
			break
		}
	}
	if st := b.Stats().Topics["t"]; st.DecodeErrors != 2 {
		t.Fatalf("decode errors %d, want 2", st.DecodeErrors)
	}
}

func TestProtobufTopic(t *testing.T) {
	net := colugotest.NewNetwork(t)
	a, b := net.NewNode("a"), net.NewNode("b")
	pb := colugo.WithCodec(protobuf.Codec{})
	ch, err := colugo.Subscribe[*posepb.Pose](t.Context(), b, "pose", pb)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[*posepb.Pose](a, "pose", pb)
	if err != nil {
		t.Fatal(err)
	}
	got := testkit.PublishUntil(t, pub, &posepb.Pose{X: 1, Y: 2, Frame: "map"}, ch)
	if got.GetX() != 1 || got.GetFrame() != "map" {
		t.Fatalf("got %v", got)
	}
	// A protobuf message of another type on the same topic is refused by
	// type name, not decoded into garbage.
	errc := make(chan error, 4)
	c := net.NewNode("c", colugo.WithErrorHandler(func(err error) { errc <- err }))
	wrong, _ := colugo.Subscribe[*posepb.AddRequest](t.Context(), c, "pose", pb)
	deadline := time.Now().Add(wait)
	for {
		_ = pub.Publish(t.Context(), &posepb.Pose{X: 3})
		select {
		case err := <-errc:
			if !errors.Is(err, colugo.ErrCodecMismatch) {
				t.Fatalf("err = %v", err)
			}
			select {
			case v := <-wrong:
				t.Fatalf("wrong type delivered: %v", v)
			default:
			}
			return
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no mismatch reported")
		}
	}
}

func TestSubscribeReceivedAndAnyCodec(t *testing.T) {
	net := colugotest.NewNetwork(t)
	a, b := net.NewNode("a"), net.NewNode("b")
	meta, err := colugo.SubscribeReceived[Pose](t.Context(), b, "t")
	if err != nil {
		t.Fatal(err)
	}
	all, err := colugo.SubscribeReceived[[]byte](t.Context(), b, "t", colugo.WithAnyCodec())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Subscribe[string](t.Context(), b, "t", colugo.WithAnyCodec()); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Fatalf("WithAnyCodec with a string: %v", err)
	}
	pub, _ := colugo.NewPublisher[Pose](a, "t")
	raw, _ := colugo.NewPublisher[[]byte](a, "t", colugo.WithCodec(codec.Raw{}))
	before := time.Now()
	var got colugo.Received[Pose]
	testwait.Until(t, "a message with metadata", func() bool {
		_ = pub.Publish(t.Context(), Pose{X: 1})
		select {
		case got = <-meta:
			return true
		case <-time.After(2 * time.Millisecond):
			return false
		}
	})
	if got.Value.X != 1 || got.Codec != "json" || got.Type != "colugo_test.Pose" || got.Sender != a.ID() || got.Seq == 0 ||
		got.SendTime.Before(before.Add(-time.Second)) || got.RecvTime.Before(got.SendTime) {
		t.Fatalf("received %+v", got)
	}
	_ = raw.Publish(t.Context(), []byte{0xde, 0xad})
	for {
		r := colugotest.Next(t, all, wait)
		if r.Codec == "raw" {
			if string(r.Value) != "\xde\xad" {
				t.Fatalf("raw bytes %x", r.Value)
			}
			break
		}
		if r.Codec != "json" || !strings.Contains(string(r.Value), `"X":1`) {
			t.Fatalf("json bytes %q (%s)", r.Value, r.Codec)
		}
	}
}

// TestRawBuffersReusable: with codec.Raw, Publish and Request keep nothing
// of the caller's bytes, so a buffer may be reused at once, for small and
// large payloads, to peers and to the node's own subscribers and services.
func TestRawBuffersReusable(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) *colugo.Node {
		n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir))), colugo.WithCodec(codec.Raw{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b := mk("a"), mk("b")
	remote, _ := colugo.Subscribe[[]byte](t.Context(), b, "bytes", colugo.WithBuffer(64))
	local, _ := colugo.Subscribe[[]byte](t.Context(), a, "bytes", colugo.WithBuffer(64))
	pub, _ := colugo.NewPublisher[[]byte](a, "bytes")
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := pub.WaitSubscribers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	uniform := func(p []byte, v byte) bool { return bytes.Count(p, []byte{v}) == len(p) }
	for _, size := range []int{100, 256 << 10} {
		buf := make([]byte, size)
		for i := range 10 {
			for j := range buf {
				buf[j] = byte(i)
			}
			if err := pub.Publish(t.Context(), buf); err != nil {
				t.Fatal(err)
			}
			clear(buf) // reused at once
		}
		for i := range 10 {
			for _, ch := range []<-chan []byte{remote, local} {
				if p := colugotest.Next(t, ch, wait); len(p) != size || !uniform(p, byte(i)) {
					t.Fatalf("%d-byte message %d changed after Publish", size, i)
				}
			}
		}
	}
	// WithZeroCopy: the bytes are handed over, so each message has its own.
	zc, _ := colugo.NewPublisher[[]byte](a, "bytes", colugo.WithZeroCopy())
	for i := range 10 {
		if err := zc.Publish(t.Context(), bytes.Repeat([]byte{byte(i)}, 256<<10)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		for _, ch := range []<-chan []byte{remote, local} {
			if p := colugotest.Next(t, ch, wait); len(p) != 256<<10 || !uniform(p, byte(i)) {
				t.Fatalf("zero-copy message %d arrived changed", i)
			}
		}
	}
	if _, err := colugo.Serve(b, "echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil }); err != nil {
		t.Fatal(err)
	}
	req := bytes.Repeat([]byte{9}, 256<<10)
	out, err := colugo.Request[[]byte, []byte](ctx, a, "echo", req)
	if err != nil || !uniform(out, 9) || len(out) != len(req) {
		t.Fatalf("echo: %d bytes, %v", len(out), err)
	}
}

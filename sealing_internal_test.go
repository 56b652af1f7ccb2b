package colugo

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/seal"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
	"github.com/colugo-go/colugo/transport/wire"
)

// A sealed publish is refused from a sender the node has not described, at
// or below the sender's described baseline, and when delivered twice (a
// replay).
func TestReplayRefused(t *testing.T) {
	net := inproc.NewNetwork()
	n, err := NewNode("n", WithTransport(net.New()), WithDiscovery(discovery.Static()),
		WithKey([]byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ch, _ := Subscribe[string](t.Context(), n, "t")
	h := (*nodeHandler)(n)
	// Each call gets a new sealed message (opening may decrypt in place).
	publish := func(topic string, seq uint64) {
		msg := &transport.Message{Name: "t", Header: wire.Header{Kind: transport.KindPublish, Codec: "json",
			Type: "string", Sender: "someone", Seq: seq, SendTime: time.Now().UnixNano()}, Payload: []byte(`"hi"`)}
		n.sealMsg(msg, binding{})
		msg.Name = topic
		h.HandlePublish(msg)
	}
	refused := func(what string, want uint64) {
		t.Helper()
		if f := n.Stats().AuthFailures; f != want {
			t.Fatalf("%s: AuthFailures = %d, want %d", what, f, want)
		}
		select {
		case v := <-ch:
			t.Fatalf("%s: delivered %q", what, v)
		default:
		}
	}
	publish("t", 7)
	refused("undescribed sender", 1)
	n.guard.Describe("someone", map[string]uint64{"t": 7})
	publish("t", 7)
	refused("at the baseline", 2)
	publish("t", 8)
	if got := <-ch; got != "hi" {
		t.Fatalf("got %q", got)
	}
	publish("t", 8)
	refused("replay", 3)
	publish("other", 9) // sealed for "t"
	refused("moved to another topic", 4)
}

// The sealing options: their defaults as documented, invalid values
// refused, the limits applied.
func TestSealingOptions(t *testing.T) {
	key := WithKey([]byte("0123456789abcdef0123456789abcdef"))
	newNode := func(opts ...NodeOption) (*Node, error) {
		net := inproc.NewNetwork()
		n, err := NewNode("n", append([]NodeOption{WithTransport(net.New()), WithDiscovery(discovery.Static()), key}, opts...)...)
		if err == nil {
			t.Cleanup(func() { _ = n.Close() })
		}
		return n, err
	}
	n, err := newNode()
	if err != nil {
		t.Fatal(err)
	}
	if want := (sealingConfig{sendTimeWindow: 0, maxSenders: 4096, maxRequests: 1 << 20}); n.cfg.sealing != want {
		t.Fatalf("defaults %+v, want %+v", n.cfg.sealing, want)
	}
	for _, o := range []NodeOption{WithSendTimeWindow(-time.Second), WithReplayLimits(0, 1), WithReplayLimits(1, 0)} {
		if _, err := newNode(o); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("%v: %v", o, err)
		}
	}
	if s := fmt.Sprint(WithSendTimeWindow(time.Minute), WithReplayLimits(2, 3)); s != "WithSendTimeWindow(1m0s) WithReplayLimits(2, 3)" {
		t.Fatalf("String: %s", s)
	}

	// Without the option, send times are not checked: an old (delayed)
	// request is new to the replay checks and accepted.
	now := time.Now().UnixNano()
	req := func(sender string, seq uint64, sent int64) *wire.Header {
		return &wire.Header{Kind: transport.KindRequest, Sender: sender, Seq: seq, SendTime: sent, Deadline: int64(time.Hour)}
	}
	if err := n.admit(req("x", 1, now-int64(time.Hour)), "svc"); err != nil {
		t.Fatalf("no window: %v", err)
	}
	w, err := newNode(WithSendTimeWindow(time.Minute), WithReplayLimits(2, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sent int64
		ok   bool
	}{{now - int64(2*time.Minute), false}, {now + int64(2*time.Minute), false}, {now - int64(time.Second), true}} {
		if err := w.admit(req("x", 1, c.sent), "svc"); (err == nil) != c.ok {
			t.Fatalf("sent %v from now: %v", time.Duration(c.sent-now), err)
		}
	}
	for seq := uint64(2); seq <= 3; seq++ {
		if err := w.admit(req("x", seq, now), "svc"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.admit(req("x", 4, now), "svc"); !errors.Is(err, seal.ErrFull) {
		t.Fatalf("past 3 live requests: %v", err)
	}
	_ = w.admit(req("y", 1, now), "svc")
	_ = w.admit(req("z", 1, now), "svc") // a third sender: x, heard from least recently, is dropped
	if senders, _ := w.guard.Len(); senders != 2 {
		t.Fatalf("%d senders remembered, want 2", senders)
	}
}

package colugo

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/wire"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
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

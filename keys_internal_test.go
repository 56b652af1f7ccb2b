package colugo

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/wire"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
)

// A sealed publish delivered twice (a replay) is refused the second time.
func TestReplayRefused(t *testing.T) {
	net := inproc.NewNetwork()
	n, err := NewNode("n", WithTransport(net.New()), WithDiscovery(discovery.Static()),
		WithKey([]byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ch, _ := Subscribe[string](t.Context(), n, "t")
	msg := &transport.Message{Name: "t", Header: wire.Header{Kind: transport.KindPublish, Codec: "json",
		Type: "string", Sender: "someone", Seq: 7, SendTime: time.Now().UnixNano()}, Payload: []byte(`"hi"`)}
	n.sealMsg(msg)
	h := (*nodeHandler)(n)
	h.HandlePublish(msg)
	if got := <-ch; got != "hi" {
		t.Fatalf("got %q", got)
	}
	h.HandlePublish(msg)
	if f := n.Stats().AuthFailures; f != 1 {
		t.Fatalf("replay: AuthFailures = %d, want 1", f)
	}
	select {
	case v := <-ch:
		t.Fatalf("replayed message delivered: %q", v)
	default:
	}
	// The same bytes under another topic name fail authentication.
	moved := *msg
	moved.Name = "other"
	h.HandlePublish(&moved)
	if f := n.Stats().AuthFailures; f != 2 {
		t.Fatalf("moved: AuthFailures = %d, want 2", f)
	}
}

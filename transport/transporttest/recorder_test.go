package transporttest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
	"github.com/colugo-go/colugo/transport/transporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A Recorder records what a transport delivers; SetOnRequest decides how
// it answers.
func ExampleRecorder() {
	network := inproc.NewNetwork()
	server, client := network.New(), network.New()
	defer server.Close()
	defer client.Close()

	rec := transporttest.NewRecorder()
	rec.SetOnRequest(func(msg *transport.Message, rw transport.ReplyWriter) {
		_ = rw.Reply(&transport.Message{Name: msg.Name, Header: transport.Header{
			Kind: transport.KindReply, Codec: "raw", RequestID: msg.Header.RequestID,
		}, Payload: append([]byte("echo: "), msg.Payload...)})
	})
	ep, err := server.Listen(rec)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := client.Listen(transporttest.NewRecorder()); err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := client.Request(ctx, ep.Router, &transport.Message{Name: "ping", Header: transport.Header{
		Kind: transport.KindRequest, Codec: "raw", Sender: "client", Deadline: int64(10 * time.Second),
	}, Payload: []byte("hello")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", reply.Payload)
	req := <-rec.Requests
	fmt.Printf("recorded %s %q from %s\n", req.Name, req.Payload, req.Header.Sender)
	// Output:
	// echo: hello
	// recorded ping "hello" from client
}

func TestRecorderDirect(t *testing.T) {
	t.Parallel()
	r := transporttest.NewRecorder()
	msg := &transport.Message{Name: "a", Header: transport.Header{Seq: 1}}
	r.HandlePublish(msg)
	msg.Name, msg.Header.Seq = "reused", 2 // a transport may reuse msg after the call
	if got := <-r.Publishes; got.Name != "a" || got.Header.Seq != 1 {
		t.Fatalf("recorded %q seq %d, want the message as it was during the call", got.Name, got.Header.Seq)
	}

	errLost := errors.New("gone")
	r.HandlePeerLost("addr", errLost)
	if ev := <-r.PeerLost; ev.Addr != "addr" || ev.Err != errLost {
		t.Fatalf("PeerLost %+v", ev)
	}

	var answered []transport.Kind
	r.SetOnRequest(func(m *transport.Message, _ transport.ReplyWriter) { answered = append(answered, m.Header.Kind) })
	r.HandleRequest(&transport.Message{Header: transport.Header{Kind: transport.KindRequest}}, nil)
	r.HandleRequest(&transport.Message{Header: transport.Header{Kind: transport.KindCancel}}, nil)
	if len(answered) != 2 || answered[1] != transport.KindCancel {
		t.Fatalf("onRequest saw %v, want the request and the cancel", answered)
	}
	for _, want := range []transport.Kind{transport.KindRequest, transport.KindCancel} {
		if m := <-r.Requests; m.Header.Kind != want {
			t.Fatalf("recorded kind %v, want %v", m.Header.Kind, want)
		}
	}

	var sunk int
	r.SetOnPublish(func(*transport.Message) { sunk++ })
	r.HandlePublish(msg)
	r.SetOnPublish(nil)
	if sunk != 1 || len(r.Publishes) != 0 {
		t.Fatalf("SetOnPublish took %d, channel holds %d", sunk, len(r.Publishes))
	}
	if r.Dropped() != 0 {
		t.Fatalf("Dropped %d with room left", r.Dropped())
	}
}

func TestRecorderDropsWhenFull(t *testing.T) {
	t.Parallel()
	r := transporttest.NewRecorder()
	for range transporttest.RecorderPublishes + 3 {
		r.HandlePublish(&transport.Message{})
	}
	for range transporttest.RecorderPeerLost + 2 {
		r.HandlePeerLost("x", nil)
	}
	if got := r.Dropped(); got != 5 {
		t.Fatalf("Dropped %d, want 5", got)
	}
	var zero transporttest.Recorder // no channels: records nothing, never blocks
	zero.HandlePublish(&transport.Message{})
	zero.HandleRequest(&transport.Message{}, nil)
	zero.HandlePeerLost("x", nil)
	if got := zero.Dropped(); got != 3 {
		t.Fatalf("zero Recorder Dropped %d, want 3", got)
	}
}

func TestRecorderBlock(t *testing.T) {
	t.Parallel()
	r := transporttest.NewRecorder()
	release := r.Block()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.HandlePublish(&transport.Message{Name: "late"})
	}()
	select {
	case <-done:
		t.Fatal("HandlePublish returned while blocked")
	case <-time.After(20 * time.Millisecond): // a bounded check that it stays blocked, not ordering
	}
	release()
	release() // idempotent
	<-done
	if m := <-r.Publishes; m.Name != "late" {
		t.Fatalf("got %q", m.Name)
	}
	r.HandlePublish(&transport.Message{Name: "after"}) // no longer blocks
	if m := <-r.Publishes; m.Name != "after" {
		t.Fatalf("got %q", m.Name)
	}
}

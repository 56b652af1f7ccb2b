package zmq

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

func extBlock() string { return string(wire.AppendMetadataEntry(nil, "k", "v")) }

// TestExtMixedSubscribers: one publish with extensions goes to a colugo
// subscriber with them and to a foreign (zmq4) SUB, which does not say it
// decodes them, as a version 1 header without them; the latter counts in
// ExtStripped.
func TestExtMixedSubscribers(t *testing.T) {
	t.Parallel()
	pub, pep := listen(t, &nopHandler{})
	rec := newRec()
	sub, _ := listen(t, rec)
	subscribeLive(t, pub, sub, rec, "topic")

	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	defer cancel()
	foreign := zmq4.NewSub(ctx)
	defer foreign.Close()
	if err := foreign.Dial("tcp://" + pep.Pub); err != nil {
		t.Fatal(err)
	}
	if err := foreign.SetOption(zmq4.OptionSubscribe, "topic\x00"); err != nil {
		t.Fatal(err)
	}
	got := make(chan zmq4.Msg, 1)
	go func() {
		m, err := foreign.Recv()
		if err == nil {
			got <- m
		}
		close(got)
	}()
	msg := pubMsg("topic", 1, []byte("x"))
	msg.Header.Ext = extBlock()
	var fm zmq4.Msg
	waitFor(t, func() bool { // the foreign subscription is asynchronous
		_ = publishNow(pub, msg)
		select {
		case m, ok := <-got:
			if !ok {
				t.Fatal("foreign SUB: receive failed")
			}
			fm = m
			return true
		case <-time.After(2 * time.Millisecond):
			return false
		}
	})
	if len(fm.Frames) != 3 {
		t.Fatalf("foreign SUB got %d frames", len(fm.Frames))
	}
	if fm.Frames[1][2]&wire.FlagExt != 0 {
		t.Fatalf("foreign SUB got a header with extensions: % x", fm.Frames[1])
	}
	h, err := wire.Decode(fm.Frames[1])
	if err != nil || h.Ext != "" || h.Seq != 1 {
		t.Fatalf("foreign SUB header %+v, %v", h, err)
	}
	if want := (&wire.Header{Kind: wire.KindPublish, Codec: "raw", Sender: "pub", Seq: 1}).Append(nil); string(fm.Frames[1]) != string(want) {
		t.Fatalf("foreign SUB header is not the version 1 encoding:\n% x\n% x", fm.Frames[1], want)
	}
	if n := pub.Stats().ExtStripped; n == 0 {
		t.Fatal("ExtStripped = 0 after publishes to a subscriber that does not decode extensions")
	}
	m := nextReal(t, rec.pubs)
	if m.Header.Ext != msg.Header.Ext {
		t.Fatalf("colugo subscriber got extensions %q, want %q", m.Header.Ext, msg.Header.Ext)
	}
}

// TestExtForeignRouter: a request with extensions to a foreign ROUTER
// goes without them.
func TestExtForeignRouter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	defer cancel()
	r := zmq4.NewRouter(ctx)
	defer r.Close()
	if err := r.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(r.Addr().String(), "tcp://")
	cli, _ := listen(t, &nopHandler{})
	reqCtx, reqCancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := cli.Request(reqCtx, addr, &transport.Message{Name: "svc", Header: transport.Header{
			Kind: transport.KindRequest, Codec: "raw", Sender: "cli", Ext: extBlock(),
		}})
		done <- err
	}()
	m, err := r.Recv()
	reqCancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Frames) != 4 { // identity, name, header, payload
		t.Fatalf("%d frames", len(m.Frames))
	}
	h, err := wire.Decode(m.Frames[2])
	if err != nil || h.Ext != "" || m.Frames[2][2]&wire.FlagExt != 0 {
		t.Fatalf("foreign ROUTER got header %+v (% x), %v", h, m.Frames[2], err)
	}
	if n := cli.Stats().ExtStripped; n != 1 {
		t.Fatalf("ExtStripped = %d, want 1", n)
	}
}

// TestExtReplyNeedsRequesterExt: a router sends a reply's extensions only
// to a requester that has sent extensions itself (dealers do not say in
// the handshake).
func TestExtReplyNeedsRequesterExt(t *testing.T) {
	t.Parallel()
	rec := newRec()
	rec.onRequest = func(m *transport.Message, rw transport.ReplyWriter) {
		_ = rw.Reply(&transport.Message{Name: m.Name, Header: transport.Header{
			Kind: transport.KindReply, RequestID: m.Header.RequestID, Ext: extBlock(),
		}})
	}
	srv, ep := listen(t, rec)
	cli, _ := listen(t, &nopHandler{})
	ask := func(ext string) *transport.Message {
		ctx, cancel := context.WithTimeout(t.Context(), testWait)
		defer cancel()
		m, err := cli.Request(ctx, ep.Router, &transport.Message{Name: "svc", Header: transport.Header{
			Kind: transport.KindRequest, Codec: "raw", Ext: ext,
		}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := ask(""); m.Header.Ext != "" {
		t.Fatalf("reply extensions %q before the requester sent any", m.Header.Ext)
	}
	if n := srv.Stats().ExtStripped; n != 1 {
		t.Fatalf("ExtStripped = %d, want 1", n)
	}
	if m := ask(extBlock()); m.Header.Ext != extBlock() {
		t.Fatalf("reply extensions %q, want %q", m.Header.Ext, extBlock())
	}
}

package colugo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport/wire"
)

// Cancels and deadlines from hostile or vanished requesters: a stray cancel
// from another connection, a past deadline, a requester that goes away.

// TestCancelFromAnotherConnection: a cancel names a request by its
// sender's node id and request id, both of which any peer can learn
// ($describe, discovery) or guess (ids count up from 1). A cancel from one
// connection must not cancel a request that came on another.
func TestCancelFromAnotherConnection(t *testing.T) {
	dir := t.TempDir()
	victim := hostileNode(t, "victim", dir)
	good := hostileNode(t, "good", dir)
	started := make(chan struct{}, 1)
	handlerDone := make(chan error, 1)
	_, _ = colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		handlerDone <- ctx.Err()
		return 0, ctx.Err()
	})
	_, _ = colugo.Serve(victim, "math/add", add)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := colugo.Request[int, int](ctx, good, "slow", 1); errc <- err }()
	<-started
	p := zmtptest.Dial(t, victim.Endpoint().Router, "DEALER")
	for id := range uint64(300) { // good's request ids so far are small
		h := wire.Header{Kind: wire.KindCancel, Codec: "json", Sender: good.ID(), RequestID: id}
		p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), h.Append(nil), nil))
	}
	p.Write(t, zmtptest.Msg(wire.AppendName(nil, "math/add"), zmtptest.Header(wire.KindRequest, 1, int64(time.Second)), []byte(`{"A":1,"B":1}`)))
	p.Reply(t) // every cancel above has been handled by now
	select {
	case err := <-handlerDone:
		t.Errorf("a stranger's cancel ended good's request: handler ctx %v, good got %v", err, <-errc)
		return
	default:
	}
	cancel()
	<-errc
}

// TestPastDeadlineIsNotNoDeadline: the README's deadline field is the time
// left when sent; a negative value is a deadline already past, not "none":
// the node answers deadline_exceeded without running the handler.
func TestPastDeadlineIsNotNoDeadline(t *testing.T) {
	victim := hostileNode(t, "victim", t.TempDir())
	ran := make(chan struct{}, 1)
	_, _ = colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		ran <- struct{}{}
		<-ctx.Done()
		return 0, ctx.Err()
	})
	p := zmtptest.Dial(t, victim.Endpoint().Router, "DEALER")
	p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), zmtptest.Header(wire.KindRequest, 1, -int64(time.Second)), []byte("1")))
	if h, _ := p.Reply(t); colugo.Code(h.Status) != colugo.CodeDeadlineExceeded {
		t.Fatalf("past deadline answered %+v", h)
	}
	select {
	case <-ran:
		t.Error("the handler ran for a request whose deadline had passed")
	default:
	}
}

// TestRequesterGoneCancelsHandler: requests without a deadline (Deadline 0
// is allowed on the wire) from a requester that then vanishes must not
// hold handler slots for ever, or 1024 of them (WithMaxHandlers default)
// would disable every service. Their handlers end when the connection
// drops, and in any case by the node's default timeout.
func TestRequesterGoneCancelsHandler(t *testing.T) {
	dir := t.TempDir()
	victim := hostileNode(t, "victim", dir, colugo.WithMaxHandlers(8), colugo.WithDefaultTimeout(500*time.Millisecond))
	_, _ = colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	_, _ = colugo.Serve(victim, "math/add", add)
	p := zmtptest.Dial(t, victim.Endpoint().Router, "DEALER")
	for id := range uint64(8) {
		p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), zmtptest.Header(wire.KindRequest, id+1, 0), []byte("1")))
	}
	p.Write(t, zmtptest.Msg(wire.AppendName(nil, "math/add"), zmtptest.Header(wire.KindRequest, 99, int64(time.Second)), []byte(`{"A":1,"B":1}`)))
	if h, _ := p.Reply(t); colugo.Code(h.Status) != colugo.CodeUnavailable {
		t.Fatalf("with 8 handlers busy, math/add answered %+v", h)
	}
	_ = p.Conn.Close()
	good := hostileNode(t, "good", dir)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var last error
	for {
		_, err := colugo.Request[AddReq, AddResp](ctx, good, "math/add", AddReq{A: 1})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("3s after the requester left, math/add still fails: %v", last)
		}
		last = err
	}
}

// TestRequesterGoneCancelsHandlerAtOnce: a requester whose connection
// drops can no longer get the reply, so its handler's ctx ends at once,
// long before the request's own deadline.
func TestRequesterGoneCancelsHandlerAtOnce(t *testing.T) {
	victim := hostileNode(t, "victim", t.TempDir())
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	_, _ = colugo.Serve(victim, "slow", func(ctx context.Context, _ int) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return 0, ctx.Err()
	})
	p := zmtptest.Dial(t, victim.Endpoint().Router, "DEALER")
	p.Write(t, zmtptest.Msg(wire.AppendName(nil, "slow"), zmtptest.Header(wire.KindRequest, 1, int64(time.Minute)), []byte("1")))
	<-started
	dropped := time.Now()
	_ = p.Conn.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ctx: %v, want Canceled", err)
		}
		t.Logf("connection drop to handler cancelled: %v", time.Since(dropped))
	case <-time.After(5 * time.Second):
		t.Fatal("handler still running 5s after its requester's connection dropped (its deadline is 1 min)")
	}
}

package colugo

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

type ctxKey struct{}

func TestHandlerCtxLazyDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := context.WithValue(context.Background(), ctxKey{}, "v")
		c := newHandlerCtx(parent, time.Second)
		if d, ok := c.Deadline(); !ok || !d.Equal(time.Now().Add(time.Second)) {
			t.Fatalf("Deadline() = %v, %v", d, ok)
		}
		if c.Value(ctxKey{}) != "v" {
			t.Fatal("Value does not reach the node's context")
		}
		if c.Err() != nil {
			t.Fatalf("Err before the deadline: %v", c.Err())
		}
		time.Sleep(time.Second) // virtual time: the deadline passes with no timer armed
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err after the deadline: %v", c.Err())
		}
		select {
		case <-c.Done():
		default:
			t.Fatal("Done not closed once Err reported the deadline")
		}
	})
}

func TestHandlerCtxDoneFiresAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newHandlerCtx(context.Background(), time.Second)
		start := time.Now()
		<-c.Done()
		if got := time.Since(start); got != time.Second {
			t.Fatalf("Done closed after %v, want 1s", got)
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err: %v", c.Err())
		}
		// A context derived from it follows it, as from a standard one.
		child, cancel := context.WithTimeout(c, time.Hour)
		defer cancel()
		<-child.Done()
	})
}

func TestHandlerCtxParentAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The node closing, before and after Done was armed.
		parent, closeNode := context.WithCancel(context.Background())
		before := newHandlerCtx(parent, time.Hour)
		after := newHandlerCtx(parent, time.Hour)
		armed := after.Done()
		closeNode()
		<-armed
		if !errors.Is(before.Err(), context.Canceled) || !errors.Is(after.Err(), context.Canceled) {
			t.Fatalf("after the node closed: %v, %v", before.Err(), after.Err())
		}
		<-before.Done()

		// cancel (the caller's cancel, or the requester gone): the first
		// cause stays, and the timer is released.
		c := newHandlerCtx(context.Background(), time.Hour)
		d := c.Done()
		c.cancel(context.Canceled)
		c.cancel(context.DeadlineExceeded)
		<-d
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("Err after cancel: %v", c.Err())
		}
		// cancel released what Done armed: stopping them again finds them stopped.
		if c.timer.Stop() || c.stopParent() {
			t.Fatal("cancel left the timer or the link to the node's context armed")
		}
	})
}

// TestHandlerCtxDoneAfterExpiry: the first Done, called once the deadline
// has passed unnoticed, returns a closed channel.
func TestHandlerCtxDoneAfterExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newHandlerCtx(context.Background(), time.Second)
		time.Sleep(2 * time.Second) // virtual time
		<-c.Done()
		parent, closeNode := context.WithCancel(context.Background())
		closeNode()
		<-newHandlerCtx(parent, time.Hour).Done()
	})
}

// TestHandlerCtxCancelAfterDeadline: a cancel that lands once the deadline
// has passed, before anything noticed it (the caller's cancel racing our
// timer), ends the context with DeadlineExceeded, not Canceled.
func TestHandlerCtxCancelAfterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newHandlerCtx(context.Background(), time.Second)
		time.Sleep(time.Second) // virtual time: no timer armed, nothing noticed
		c.cancel(context.Canceled)
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("cancel at the deadline: Err = %v, want DeadlineExceeded", c.Err())
		}
		// Before the deadline a cancel is a cancel.
		early := newHandlerCtx(context.Background(), time.Second)
		early.cancel(context.Canceled)
		if !errors.Is(early.Err(), context.Canceled) {
			t.Fatalf("cancel before the deadline: Err = %v", early.Err())
		}
		// The node closing after the deadline: the deadline came first.
		parent, closeNode := context.WithCancel(context.Background())
		late := newHandlerCtx(parent, time.Second)
		d := late.Done()
		time.Sleep(time.Second)
		closeNode()
		<-d
		if !errors.Is(late.Err(), context.DeadlineExceeded) {
			t.Fatalf("node closed after the deadline: Err = %v", late.Err())
		}
	})
}

// TestHandlerCtxDerivedNoGoroutine: contexts derived from a handler's
// context link to it through its AfterFunc method, so deriving one starts
// no goroutine (a custom Context without it costs one goroutine per
// derived context, for as long as both live).
func TestHandlerCtxDerivedNoGoroutine(t *testing.T) {
	c := newHandlerCtx(context.Background(), time.Minute)
	const n = 1000
	before := runtime.NumGoroutine()
	children := make([]context.Context, n)
	cancels := make([]context.CancelFunc, n)
	for i := range n {
		children[i], cancels[i] = context.WithCancel(c)
	}
	if grew := runtime.NumGoroutine() - before; grew > n/10 {
		t.Fatalf("%d derived contexts started %d goroutines", n, grew)
	}
	// A child cancelled first unregisters itself.
	cancels[0]()
	c.mu.Lock()
	registered := len(c.afters)
	c.mu.Unlock()
	if registered != n-1 {
		t.Fatalf("%d functions registered after one child was cancelled, want %d", registered, n-1)
	}
	c.cancel(context.Canceled)
	for i, child := range children {
		select {
		case <-child.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("child %d not cancelled with its parent", i)
		}
		if i > 0 && !errors.Is(child.Err(), context.Canceled) {
			t.Fatalf("child %d: %v", i, child.Err())
		}
	}
	for _, cancel := range cancels {
		cancel()
	}
	// After the end, AfterFunc runs f at once (in its own goroutine).
	ran := make(chan struct{})
	if stop := c.AfterFunc(func() { close(ran) }); stop() {
		t.Fatal("stop after the end reported that it stopped f")
	}
	<-ran
}

// TestHandlerCtxDerivedDeadline: a derived context ends at the handler's
// deadline too.
func TestHandlerCtxDerivedDeadline(t *testing.T) {
	c := newHandlerCtx(context.Background(), 20*time.Millisecond)
	child, cancel := context.WithCancel(c)
	defer cancel()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("derived context did not end at the handler's deadline")
	}
	if !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("derived context: %v, want DeadlineExceeded", child.Err())
	}
}

// BenchmarkHandlerCtxDerive is the cost of deriving a cancellable context
// inside a handler (and cancelling it).
func BenchmarkHandlerCtxDerive(b *testing.B) {
	c := newHandlerCtx(context.Background(), time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		_, cancel := context.WithCancel(c)
		cancel()
	}
}

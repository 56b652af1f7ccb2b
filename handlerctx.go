package colugo

import (
	"context"
	"errors"
	"sync"
	"time"
)

// handlerCtx is the context a request handler gets: the caller's deadline,
// the node's values, cancelled by the node's Close, by the caller's cancel
// or when the requester's connection goes.
//
// Why not context.WithTimeout(node ctx, d): that arms a timer and joins the
// node context's children for every request, about 1 µs and 3 allocations
// here, and most handlers never wait on their context. handlerCtx arms its
// timer and its link to the node's context only when Done is first called;
// Err notices an expired deadline or a closed node by itself. Handlers that
// pass ctx on (to another Request, a database call...) call Done through
// it, and then get the same behaviour as a standard context.
type handlerCtx struct {
	parent   context.Context // the node's
	deadline time.Time
	md       string // the request's metadata, as an extension block (IncomingMetadata)

	mu         sync.Mutex
	done       chan struct{} // made by the first Done or AfterFunc
	err        error
	timer      *time.Timer
	stopParent func() bool
	// afters are the functions AfterFunc registered, run (each in its own
	// goroutine, as context.AfterFunc does) when the context ends.
	afters map[*afterFunc]struct{}
}

type afterFunc struct{ f func() }

var _ context.Context = (*handlerCtx)(nil)

func newHandlerCtx(parent context.Context, timeout time.Duration) *handlerCtx {
	c := new(handlerCtx)
	c.init(parent, timeout)
	return c
}

func (c *handlerCtx) init(parent context.Context, timeout time.Duration) {
	c.parent, c.deadline = parent, time.Now().Add(timeout)
}

func (c *handlerCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *handlerCtx) Value(key any) any {
	if _, ok := key.(incomingKey); ok {
		return c.md
	}
	return c.parent.Value(key)
}

func (c *handlerCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.armLocked()
}

// armLocked makes done, and arms the timer and the link to the node's
// context that close it, unless that was done before.
func (c *handlerCtx) armLocked() chan struct{} {
	if c.done != nil {
		return c.done
	}
	if c.err == nil {
		c.expireLocked() // before done exists, so that it does not close it
	}
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return c.done
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	c.stopParent = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
	return c.done
}

// AfterFunc arranges for f to run in its own goroutine once c ends, and
// returns a stop function that prevents that (reporting whether it did),
// as context.AfterFunc does. Its presence is what matters: the context
// package links a context derived from c (WithCancel, WithTimeout, ...)
// through it instead of starting a goroutine per derived context to watch
// c's Done.
func (c *handlerCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f}
	if c.afters == nil {
		c.afters = make(map[*afterFunc]struct{})
	}
	c.afters[a] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.afters[a]
		delete(c.afters, a)
		return ok
	}
}

func (c *handlerCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.expireLocked()
	}
	return c.err
}

// expireLocked sets err if the node closed or the deadline passed, which
// nothing else notices before Done has been called.
func (c *handlerCtx) expireLocked() {
	if err := c.parent.Err(); err != nil {
		c.setErrLocked(err)
	} else if !time.Now().Before(c.deadline) {
		c.setErrLocked(context.DeadlineExceeded)
	}
}

// cancel ends the context with err unless it has ended; it also releases
// the timer and the link to the node's context.
func (c *handlerCtx) cancel(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.setErrLocked(err)
	}
	c.mu.Unlock()
}

func (c *handlerCtx) setErrLocked(err error) {
	if errors.Is(err, context.Canceled) && !time.Now().Before(c.deadline) {
		// A cancel (the caller's, the node's) that lands once the deadline
		// has passed, before our timer fired: the deadline ended it.
		err = context.DeadlineExceeded
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stopParent != nil {
		c.stopParent()
	}
	for a := range c.afters {
		go a.f()
	}
	c.afters = nil
}

func (c *handlerCtx) String() string { return "colugo.handlerContext" }

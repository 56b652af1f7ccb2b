package zmq

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// subscriber is this transport's one connection to a remote publisher and
// the subscriptions wanted there. Its goroutine (runSub) dials, resends
// every wanted prefix on each connect, reads, and redials after a loss.
type subscriber struct {
	addr   string
	ctx    context.Context //nolint:containedctx // the redial loop's lifetime
	cancel context.CancelFunc

	mu       sync.Mutex
	prefixes map[string]bool // wanted prefixes, and whether each asks for back-pressure
	c        *conn           // nil while not connected
}

// prefixOf is the subscription prefix for topic: topic+"\x00", so "a" does
// not match "ab"; "" subscribes to everything.
func prefixOf(topic string) string {
	if topic == "" {
		return ""
	}
	return topic + "\x00"
}

// subMsg is a ZMTP 3.0 subscription message: 1 (subscribe) or 0 (cancel),
// then the prefix. libzmq and zmq4 publishers both take it.
func subMsg(add bool, prefix string) []byte {
	b := appendFrameHeader(make([]byte, 0, 10+len(prefix)), 0, 1+len(prefix))
	if add {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return append(b, prefix...)
}

// sendLocked queues a subscription change on the current connection; s.mu
// is held. A full queue means the publisher is not reading: cut the
// connection, and the redial sends the whole set again.
func (s *subscriber) sendLocked(add bool, prefix string) {
	if s.c == nil {
		return
	}
	if !s.c.send(subMsg(add, prefix), nil) {
		s.c.close(errors.New("subscription queue full"), false)
	}
}

// stop ends the redial loop and closes the connection without reporting a
// loss.
func (s *subscriber) stop() {
	s.cancel()
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c != nil {
		c.close(errors.New("unsubscribed"), true)
	}
}

// Subscribe subscribes to topic at the publisher pubAddr ("host:port", as
// in another transport's Endpoint.Pub); topic "" subscribes to every topic.
// It does not block: one background goroutine per publisher address dials
// (backing off from 50 ms to 2 s between failures), sends every wanted
// subscription on each connect, and redials after a loss (reported to
// Handler.HandlePeerLost) until Unsubscribe, Disconnect or Close. Messages
// go to Handler.HandlePublish, from that goroutine. Subscribing twice to one
// topic is the same as once, except that the second call's opts replace the
// first's. With opts.BackPressure the subscription carries a second ZMTP
// subscription, bpMarker+prefix, that tells colugo publishers to wait for
// this connection (PublishOptions.MaxWait) and that others ignore; it is
// sent before the topic's own, withdrawn with it, and resent on every
// redial. It returns an error wrapping wire.ErrName for an
// invalid topic, transport.ErrClosed after Close, and an error before
// Listen.
func (t *Transport) Subscribe(pubAddr, topic string, opts transport.SubscribeOptions) error {
	if topic != "" {
		if err := wire.CheckName(topic); err != nil {
			return err
		}
	}
	prefix := prefixOf(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return transport.ErrClosed
	case t.h == nil:
		return errNotListening
	}
	s := t.subs[pubAddr]
	if s == nil {
		ctx, cancel := context.WithCancel(t.ctx)
		s = &subscriber{addr: pubAddr, ctx: ctx, cancel: cancel, prefixes: make(map[string]bool)}
		t.subs[pubAddr] = s
		t.wg.Go(func() { t.runSub(s) })
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	bp, ok := s.prefixes[prefix]
	s.prefixes[prefix] = opts.BackPressure
	switch {
	case !ok:
		if opts.BackPressure { // first, so that it applies from the first message
			s.sendLocked(true, bpMarker+prefix)
		}
		s.sendLocked(true, prefix)
	case bp != opts.BackPressure:
		s.sendLocked(opts.BackPressure, bpMarker+prefix)
	}
	return nil
}

// Unsubscribe withdraws topic at pubAddr; when no topic is left there, the
// connection is closed and its goroutine ends (Handler.HandlePeerLost is not
// called). Unknown addresses and topics are ignored. It does not block. It
// returns transport.ErrClosed after Close.
func (t *Transport) Unsubscribe(pubAddr, topic string) error {
	prefix := prefixOf(topic)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return transport.ErrClosed
	}
	s := t.subs[pubAddr]
	if s == nil {
		t.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	if bp, ok := s.prefixes[prefix]; ok {
		delete(s.prefixes, prefix)
		s.sendLocked(false, prefix)
		if bp {
			s.sendLocked(false, bpMarker+prefix)
		}
	}
	empty := len(s.prefixes) == 0
	s.mu.Unlock()
	if empty {
		delete(t.subs, pubAddr)
	}
	t.mu.Unlock()
	if empty {
		s.stop()
	}
	return nil
}

// runSub is the goroutine of one subscriber: dial, subscribe, read, and
// again after a loss, until s.ctx ends.
func (t *Transport) runSub(s *subscriber) {
	t.redial(s.ctx, s.addr, roleSub, "subscribe", func(c *conn) bool {
		if !t.startSub(s, c) {
			return false
		}
		c.teardown(c.readLoop())
		s.mu.Lock()
		s.c = nil
		s.mu.Unlock()
		if c.deliberate || s.ctx.Err() != nil {
			return false
		}
		t.peersLost.Add(1)
		t.log.Info("zmq publisher lost", keyPeer, s.addr, keyErr, c.closeErr)
		t.h.HandlePeerLost(s.addr, c.lostErr())
		return true
	})
}

// redial dials addr as r until ctx ends, hands each connection to serve,
// which runs it until it ends and says whether to dial again, and backs
// off between attempts (doubling to maxBackoff; a connection that lived
// longer than that starts again at minBackoff).
func (t *Transport) redial(ctx context.Context, addr string, r role, what string, serve func(*conn) bool) {
	backoff := minBackoff
	for ctx.Err() == nil {
		c, err := t.dial(ctx, addr, r)
		if err != nil {
			t.log.Debug("zmq "+what+": dial failed", keyPeer, addr, keyErr, err)
		} else {
			began := time.Now()
			if !serve(c) {
				return
			}
			if time.Since(began) > maxBackoff {
				backoff = minBackoff
			}
		}
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// startSub makes c the subscriber's connection, queues every wanted prefix
// and starts the writer; false means the subscriber is gone.
func (t *Transport) startSub(s *subscriber, c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.closed || s.ctx.Err() != nil {
		_ = c.nc.Close()
		return false
	}
	t.conns[c] = struct{}{}
	s.c = c
	for p, bp := range s.prefixes {
		if bp {
			s.sendLocked(true, bpMarker+p)
		}
		s.sendLocked(true, p)
	}
	t.wg.Go(c.writeLoop)
	return true
}

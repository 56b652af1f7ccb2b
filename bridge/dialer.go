package bridge

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// abortDialer dials the bridge's NATS connections and can abort them: a
// bridge stopping on a silent link (no error, every write blocked) would
// otherwise wait out NATS.WriteTimeout for each write its shutdown makes
// (unsubscribes, the final flush), and Close could take tens of seconds.
type abortDialer struct {
	d       net.Dialer
	mu      sync.Mutex
	conns   map[*abortConn]struct{}
	aborted bool
}

func newAbortDialer() *abortDialer {
	return &abortDialer{d: net.Dialer{Timeout: 2 * time.Second}, conns: map[*abortConn]struct{}{}} // nats.go's dial timeout
}

// errAborted is what an aborted connection's writes, and dials after
// abort, return.
var errAborted = errors.New("bridge: stopping: NATS connection aborted")

// Dial is nats.CustomDialer's.
func (a *abortDialer) Dial(network, address string) (net.Conn, error) {
	c, err := a.d.Dial(network, address)
	if err != nil {
		return nil, err
	}
	ac := &abortConn{Conn: c, owner: a}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.aborted {
		_ = c.Close()
		return nil, errAborted
	}
	a.conns[ac] = struct{}{}
	return ac, nil
}

// abort makes every write of the connections, blocked or to come, fail at
// once, and every dial from now on.
func (a *abortDialer) abort() {
	a.mu.Lock()
	a.aborted = true
	conns := make([]*abortConn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
}

// abortConn is a connection abortDialer can abort: then its deadline is in
// the past for good (nats.go sets a write deadline before each write).
type abortConn struct {
	net.Conn
	owner   *abortDialer
	aborted atomic.Bool
}

var past = time.Unix(1, 0)

func (c *abortConn) abort() {
	c.aborted.Store(true)
	_ = c.Conn.SetDeadline(past)
}

func (c *abortConn) Write(p []byte) (int, error) {
	if c.aborted.Load() {
		return 0, errAborted
	}
	return c.Conn.Write(p)
}

func (c *abortConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.deadline(t)) }
func (c *abortConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.deadline(t))
}

func (c *abortConn) deadline(t time.Time) time.Time {
	if c.aborted.Load() {
		return past
	}
	return t
}

func (c *abortConn) Close() error {
	c.owner.mu.Lock()
	delete(c.owner.conns, c)
	c.owner.mu.Unlock()
	return c.Conn.Close()
}

// stopWait is how long a stopping bridge waits for its writes before it
// aborts its NATS connections: a second, after the JetStream spools' grace
// if it has any (what they hold goes out while the link is up).
func (b *Bridge) stopWait() time.Duration {
	if b.cfg.exportsJetStream() {
		return jsStopGrace + time.Second
	}
	return time.Second
}

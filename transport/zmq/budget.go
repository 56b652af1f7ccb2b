package zmq

import (
	"errors"
	"net"
	"sync"
	"time"
)

// This file bounds the memory a peer can pin on the receive side: bytes of
// messages being assembled (the receive budget) and bytes of requests held
// by running handlers (the handler budget). Both are all-or-nothing
// reservations: a connection that cannot get what its next frame or request
// needs stops reading until bytes are released, so TCP pushes back on its
// sender, and nothing is allocated for it meanwhile. A reservation is never
// split, so partial messages cannot each hold part of a budget and wait for
// the rest of it: whoever holds bytes holds all it needs to finish, and a
// message that stops arriving loses its connection at its deadline (see
// minRate in recv.go), which frees them.

var errBudgetClosed = errors.New("connection closed while waiting for memory budget")

// budget is a byte budget shared by the connections of a transport, with a
// share per key (a remote host, or a connection) that no key may exceed.
// One reservation of any size is always granted to a key that holds nothing
// while the whole budget holds nothing, so a message larger than a limit
// waits for the others to finish instead of for ever.
type budget struct {
	limit    int64 // for all keys together
	perKey   int64
	mu       sync.Mutex
	used     int64
	byKey    map[string]int64
	released chan struct{} // closed and replaced when bytes are released while someone waits
	waiting  int           // callers of take waiting
}

func newBudget(limit, perKey int64) *budget {
	return &budget{limit: limit, perKey: perKey, byKey: make(map[string]int64), released: make(chan struct{})}
}

// take reserves n bytes for key, waiting until they fit or done closes.
// While it waits, nudge (if not nil) is called every nudgeEvery.
func (b *budget) take(key string, n int64, done <-chan struct{}, nudge func()) error {
	b.mu.Lock()
	waiting := false
	var timer *time.Timer
	for !b.fitsLocked(key, n) {
		if !waiting {
			waiting = true
			b.waiting++
		}
		rel := b.released
		b.mu.Unlock()
		if nudge != nil && timer == nil {
			timer = time.NewTimer(nudgeEvery)
			defer timer.Stop()
		}
		var tick <-chan time.Time
		if timer != nil {
			tick = timer.C
		}
		select {
		case <-rel:
		case <-tick:
			nudge()
			timer.Reset(nudgeEvery)
		case <-done:
			b.mu.Lock()
			b.waiting--
			b.mu.Unlock()
			return errBudgetClosed
		}
		b.mu.Lock()
	}
	if waiting {
		b.waiting--
	}
	b.used += n
	b.byKey[key] += n
	b.mu.Unlock()
	return nil
}

// fitsLocked says whether n more bytes for key fit; b.mu is held.
func (b *budget) fitsLocked(key string, n int64) bool {
	k := b.byKey[key]
	return (b.used+n <= b.limit && k+n <= b.perKey) || (b.used == 0 && k == 0)
}

// release returns n bytes reserved for key.
func (b *budget) release(key string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if k := b.byKey[key] - n; k > 0 {
		b.byKey[key] = k
	} else {
		delete(b.byKey, key)
	}
	if b.waiting > 0 { // wake the waiters; no allocation when there are none
		close(b.released)
		b.released = make(chan struct{})
	}
	b.mu.Unlock()
}

// waiters returns how many callers of take are waiting, for tests.
func (b *budget) waiters() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
}

// inUse returns the bytes reserved, for tests and stats.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// hostOf is the budget key of a peer address: its host, so that many
// connections from one machine share one share. Unix socket peers (same
// host, same network namespace) share the key "unix".
func hostOf(addr string) string {
	if len(addr) >= len(unixScheme) && addr[:len(unixScheme)] == unixScheme || addr == "@" || addr == "" {
		return "unix"
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

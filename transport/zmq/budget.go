package zmq

import (
	"errors"
	"net"
	"sync"
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
	released chan struct{} // closed and replaced whenever bytes are released
	waiting  int           // callers of take waiting, for tests
}

func newBudget(limit, perKey int64) *budget {
	return &budget{limit: limit, perKey: perKey, byKey: make(map[string]int64), released: make(chan struct{})}
}

// tryTake reserves n bytes for key if they fit; otherwise it returns false
// and a channel closed at the next release.
func (b *budget) tryTake(key string, n int64) (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.byKey[key]
	if (b.used+n > b.limit || k+n > b.perKey) && (b.used > 0 || k > 0) {
		return false, b.released
	}
	b.used += n
	b.byKey[key] = k + n
	return true, nil
}

// take reserves n bytes for key, waiting until they fit or done closes.
func (b *budget) take(key string, n int64, done <-chan struct{}) error {
	ok, rel := b.tryTake(key, n)
	if ok {
		return nil
	}
	b.wait(1)
	defer b.wait(-1)
	for {
		select {
		case <-rel:
		case <-done:
			return errBudgetClosed
		}
		if ok, rel = b.tryTake(key, n); ok {
			return nil
		}
	}
}

func (b *budget) wait(d int) {
	b.mu.Lock()
	b.waiting += d
	b.mu.Unlock()
}

// waiters returns how many callers of take are waiting, for tests.
func (b *budget) waiters() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
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
	close(b.released)
	b.released = make(chan struct{})
	b.mu.Unlock()
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

package discovery

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// ErrInvalidAddress is returned (wrapped) by a [Static] discovery's Start
// for a seed that is not a dialable "host:port".
var ErrInvalidAddress = errors.New("colugo/discovery: invalid address")

// Static returns a Discovery that reports a fixed list of seed nodes, given
// as the "host:port" addresses of their request (router) endpoints. It is
// for networks where nothing can be discovered (VPNs, isolated Wi-Fi,
// containers).
//
// Start validates every address (host non-empty, port a number in 1–65535)
// and returns an error wrapping [ErrInvalidAddress] for the first bad one.
// Otherwise it emits one [Joined] event per distinct address, with only
// Peer.Router set: the Node learns the ID, name and publisher address by
// asking the peer. Static never emits [Left] (liveness comes from the
// transport) nor [Updated]; it announces nothing, so Update does nothing.
// Its events are buffered, so it starts no goroutine and never blocks.
// Close closes the event channel. The addrs slice is copied.
//
// It is a [Settler]: it has settled once Start has returned.
func Static(addrs ...string) Discovery {
	return &static{addrs: append([]string(nil), addrs...), settled: make(chan struct{})}
}

type static struct {
	addrs   []string
	settled chan struct{} // closed by Start

	mu      sync.Mutex
	started bool
	closed  bool
	ch      chan Event // nil until Start succeeds
}

func (s *static) Start(Peer) (<-chan Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.started:
		return nil, ErrStarted
	}
	seen := make(map[string]bool, len(s.addrs))
	var uniq []string
	for _, a := range s.addrs {
		if err := checkAddr(a); err != nil {
			return nil, err
		}
		if !seen[a] {
			seen[a] = true
			uniq = append(uniq, a)
		}
	}
	// Every event fits in the buffer, so no goroutine is needed to feed a
	// consumer that reads late.
	s.ch = make(chan Event, len(uniq))
	for _, a := range uniq {
		s.ch <- Event{Kind: Joined, Peer: Peer{Router: a}}
	}
	s.started = true
	close(s.settled)
	return s.ch, nil
}

func (s *static) Settled() <-chan struct{} { return s.settled }

// checkAddr reports whether addr is a host:port a transport can dial.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidAddress, addr, err)
	}
	if host == "" {
		return fmt.Errorf("%w %q: missing host", ErrInvalidAddress, addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%w %q: port must be a number from 1 to 65535", ErrInvalidAddress, addr)
	}
	return nil
}

func (s *static) Update(Peer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

func (s *static) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		if s.ch != nil {
			close(s.ch)
		}
	}
	return nil
}

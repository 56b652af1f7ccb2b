package discovery

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Multi returns a Discovery that runs several at once (for example
// host-local and mDNS) and merges their events into one channel.
//
// Start starts every source in order with the same self; if one fails, it
// closes the ones already started and returns that error (joined with any
// error from those Close calls), and the Multi is then closed. Sources are
// only ever closed after a successful Start of their own, so closing a Multi
// that was never started touches none of them. Events from one source keep their order; events from
// different sources interleave in no particular order, and a peer found by
// two sources is reported by both (the Node de-duplicates by [Peer.Key]).
// A consumer that stops reading stalls every source until Close.
//
// Update calls Update on every source and returns their errors joined.
// Close closes every source, waits for the goroutines that forward their
// events (one per source, owned by the Multi), then closes the merged
// channel; it returns the sources' Close errors joined and is idempotent.
// Start, Update and Close are safe for concurrent use. The ds slice is
// copied; the sources belong to the Multi from then on.
//
// It is a [Settler]: it has settled once every source that is a Settler
// has and the events each sent before that have been forwarded; a source
// that is not a Settler counts as settled at once.
func Multi(ds ...Discovery) Discovery {
	return &multi{ds: append([]Discovery(nil), ds...), settled: make(chan struct{})}
}

type multi struct {
	ds      []Discovery
	settled chan struct{} // closed when unsettled reaches 0
	// unsettled counts the sources whose first look is not yet forwarded.
	unsettled atomic.Int32

	mu      sync.Mutex // serializes Start, Update and Close
	started bool
	closed  bool
	out     chan Event
	done    chan struct{} // closed by Close: forwarders stop delivering
	wg      sync.WaitGroup
}

func (m *multi) Start(self Peer) (<-chan Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, ErrClosed
	case m.started:
		return nil, ErrStarted
	}
	srcs := make([]<-chan Event, 0, len(m.ds))
	for i, d := range m.ds {
		ch, err := d.Start(self)
		if err != nil {
			errs := []error{fmt.Errorf("colugo/discovery: multi source %d: %w", i, err)}
			for _, started := range m.ds[:i] {
				errs = append(errs, started.Close())
			}
			m.closed = true
			return nil, errors.Join(errs...)
		}
		srcs = append(srcs, ch)
	}
	m.started = true
	// A small buffer absorbs bursts (every source's Joined events at start)
	// without letting a lagging consumer hide behind a large queue.
	m.out = make(chan Event, 16)
	m.done = make(chan struct{})
	m.unsettled.Store(int32(len(srcs)))
	if len(srcs) == 0 {
		close(m.settled)
	}
	for i, src := range srcs {
		var settled <-chan struct{} // nil: the source cannot tell
		if st, ok := m.ds[i].(Settler); ok {
			settled = st.Settled()
		}
		m.wg.Go(func() { m.forward(src, settled) })
	}
	return m.out, nil
}

func (m *multi) Settled() <-chan struct{} { return m.settled }

// forward copies one source's events to the merged channel until the source
// closes its channel. After Close has begun it keeps draining (and dropping)
// so that the source's own goroutines never block on a send while it closes.
// When the source settles, what it sent before is forwarded first, so the
// Multi settles after the events of every source's first look. A source
// whose channel closes before it settles counts as settled: it has nothing
// more to find, and must not hold the others' WaitDiscovered up.
func (m *multi) forward(src <-chan Event, settled <-chan struct{}) {
	pending := true
	defer func() {
		if pending {
			m.settleOne()
		}
	}()
	if settled == nil {
		// It cannot tell: what it holds now is its first look.
		if !m.drain(src) {
			return
		}
		pending = false
		m.settleOne()
	}
	for {
		select {
		case ev, ok := <-src:
			if !ok {
				return
			}
			m.send(ev)
		case <-settled:
			settled = nil
			if !m.drain(src) {
				return
			}
			pending = false
			m.settleOne()
		}
	}
}

// drain forwards the events src holds now. It reports false if src closed.
func (m *multi) drain(src <-chan Event) bool {
	for {
		select {
		case ev, ok := <-src:
			if !ok {
				return false
			}
			m.send(ev)
		default:
			return true
		}
	}
}

func (m *multi) settleOne() {
	if m.unsettled.Add(-1) == 0 {
		close(m.settled)
	}
}

func (m *multi) send(ev Event) {
	select {
	case m.out <- ev:
	case <-m.done:
	}
}

func (m *multi) Update(self Peer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	var errs []error
	for i, d := range m.ds {
		if err := d.Update(self); err != nil {
			errs = append(errs, fmt.Errorf("colugo/discovery: multi source %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (m *multi) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if !m.started {
		// The contract has Close follow a successful Start, so sources
		// that were never started are left alone.
		return nil
	}
	close(m.done)
	var errs []error
	for i, d := range m.ds {
		if err := d.Close(); err != nil {
			errs = append(errs, fmt.Errorf("colugo/discovery: multi source %d: %w", i, err))
		}
	}
	m.wg.Wait()
	close(m.out)
	return errors.Join(errs...)
}

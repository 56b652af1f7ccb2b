package colugotest

import (
	"sync"

	"github.com/colugo-go/colugo/discovery"
)

// registry is an in-memory discovery domain: every member sees every other.
type registry struct {
	mu      sync.Mutex
	members map[*memDiscovery]discovery.Peer
}

func newRegistry() *registry {
	return &registry{members: make(map[*memDiscovery]discovery.Peer)}
}

// memDiscovery is one node's view of a registry. Events are queued without
// bound and pumped to the node by one goroutine, so that Joined and Left are
// never lost and a member never blocks another.
type memDiscovery struct {
	reg *registry

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []discovery.Event
	started bool
	closed  bool
	out     chan discovery.Event
	done    chan struct{}
	// initial counts the Joined events of Start not yet sent; settled
	// closes when it reaches 0.
	initial int
	settled chan struct{}
}

var (
	_ discovery.Discovery = (*memDiscovery)(nil)
	_ discovery.Settler   = (*memDiscovery)(nil)
)

func (r *registry) newDiscovery() *memDiscovery {
	d := &memDiscovery{reg: r, out: make(chan discovery.Event), done: make(chan struct{}), settled: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	return d
}

func (d *memDiscovery) Start(self discovery.Peer) (<-chan discovery.Event, error) {
	d.mu.Lock()
	if d.started || d.closed {
		d.mu.Unlock()
		return nil, discovery.ErrStarted
	}
	d.started = true
	d.mu.Unlock()

	d.reg.mu.Lock()
	for other, p := range d.reg.members {
		d.push(discovery.Event{Kind: discovery.Joined, Peer: p})
		other.push(discovery.Event{Kind: discovery.Joined, Peer: self})
	}
	d.mu.Lock()
	d.initial = len(d.queue) // first in the queue: nobody else knows d yet
	if d.initial == 0 {
		close(d.settled)
	}
	d.mu.Unlock()
	d.reg.members[d] = self
	d.reg.mu.Unlock()
	go d.pump()
	return d.out, nil
}

func (d *memDiscovery) Update(self discovery.Peer) error {
	d.reg.mu.Lock()
	defer d.reg.mu.Unlock()
	if _, ok := d.reg.members[d]; !ok {
		return discovery.ErrClosed
	}
	d.reg.members[d] = self
	for other := range d.reg.members {
		if other != d {
			other.push(discovery.Event{Kind: discovery.Updated, Peer: self})
		}
	}
	return nil
}

func (d *memDiscovery) Close() error {
	d.reg.mu.Lock()
	self, ok := d.reg.members[d]
	delete(d.reg.members, d)
	for other := range d.reg.members {
		if ok {
			other.push(discovery.Event{Kind: discovery.Left, Peer: self})
		}
	}
	d.reg.mu.Unlock()

	d.mu.Lock()
	started := d.started
	wasClosed := d.closed
	d.closed = true
	d.cond.Broadcast()
	d.mu.Unlock()
	if wasClosed {
		if started {
			<-d.done
		}
		return nil
	}
	if started {
		<-d.done // the pump closes out
	} else {
		close(d.out)
		close(d.done)
	}
	return nil
}

// Settled is closed once the members present at Start have been sent.
func (d *memDiscovery) Settled() <-chan struct{} { return d.settled }

func (d *memDiscovery) push(ev discovery.Event) {
	d.mu.Lock()
	if !d.closed {
		d.queue = append(d.queue, ev)
		d.cond.Broadcast() // two goroutines wait on cond: the pump and its Close watcher
	}
	d.mu.Unlock()
}

// pump moves queued events to out until Close. It gives up a pending send
// when Close comes, so a node that stopped reading cannot hold Close up.
func (d *memDiscovery) pump() {
	defer close(d.done)
	defer close(d.out)
	stop := make(chan struct{})
	go func() { // wakes a pending send when Close happens
		d.mu.Lock()
		for !d.closed {
			d.cond.Wait()
		}
		d.mu.Unlock()
		close(stop)
	}()
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.cond.Wait()
		}
		if d.closed {
			d.mu.Unlock()
			<-stop
			return
		}
		ev := d.queue[0]
		d.queue = d.queue[1:]
		d.mu.Unlock()
		select {
		case d.out <- ev:
		case <-stop:
			return
		}
		if d.initial > 0 { // only the pump touches it after Start
			if d.initial--; d.initial == 0 {
				close(d.settled)
			}
		}
	}
}

package discovery_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
)

// fake is a Discovery driven by the test: it forwards whatever is sent on
// in, and records calls.
type fake struct {
	startErr, updateErr, closeErr error

	in chan discovery.Event

	mu      sync.Mutex
	started int
	updates []discovery.Peer
	closed  int
	out     chan discovery.Event
	done    chan struct{}
	wg      sync.WaitGroup
}

func newFake() *fake { return &fake{in: make(chan discovery.Event)} }

func (f *fake) Start(discovery.Peer) (<-chan discovery.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started++
	if f.startErr != nil {
		return nil, f.startErr
	}
	f.out = make(chan discovery.Event) // unbuffered: exercises a blocked sender at Close
	f.done = make(chan struct{})
	f.wg.Go(func() {
		defer close(f.out)
		for {
			select {
			case ev := <-f.in:
				select {
				case f.out <- ev:
				case <-f.done:
					return
				}
			case <-f.done:
				return
			}
		}
	})
	return f.out, nil
}

func (f *fake) Update(self discovery.Peer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, self)
	return f.updateErr
}

func (f *fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	if f.closed == 1 && f.done != nil {
		close(f.done)
		f.wg.Wait()
	}
	return f.closeErr
}

func (f *fake) counts() (started, updates, closed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started, len(f.updates), f.closed
}

// next reads one event or fails after a generous deadline.
func next(t *testing.T, ch <-chan discovery.Event) discovery.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("channel closed, want an event")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	panic("unreachable")
}

func peer(id string) discovery.Peer { return discovery.Peer{ID: id, Router: "127.0.0.1:1"} }

func TestMultiMerges(t *testing.T) {
	t.Parallel()
	a, b := newFake(), newFake()
	m := discovery.Multi(a, b, discovery.Static("10.0.0.1:7000"))
	ch, err := m.Start(peer("self"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Peer.Router != "10.0.0.1:7000" || ev.Kind != discovery.Joined {
		t.Errorf("first event = %+v, want the static seed", ev)
	}
	// Per-source order is kept; a duplicate from the other source passes.
	a.in <- discovery.Event{Kind: discovery.Joined, Peer: peer("p")}
	if ev := next(t, ch); ev.Kind != discovery.Joined || ev.Peer.ID != "p" {
		t.Errorf("got %+v, want p joined", ev)
	}
	b.in <- discovery.Event{Kind: discovery.Joined, Peer: peer("p")}
	if ev := next(t, ch); ev.Kind != discovery.Joined || ev.Peer.ID != "p" {
		t.Errorf("got %+v, want p joined again", ev)
	}
	a.in <- discovery.Event{Kind: discovery.Left, Peer: peer("p")}
	if ev := next(t, ch); ev.Kind != discovery.Left {
		t.Errorf("got %+v, want p left", ev)
	}

	if err := m.Update(peer("self")); err != nil {
		t.Errorf("Update = %v", err)
	}
	if _, u, _ := a.counts(); u != 1 {
		t.Errorf("a got %d updates, want 1", u)
	}
	if _, u, _ := b.counts(); u != 1 {
		t.Errorf("b got %d updates, want 1", u)
	}
	if _, err := m.Start(peer("self")); !errors.Is(err, discovery.ErrStarted) {
		t.Errorf("second Start = %v, want %v", err, discovery.ErrStarted)
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, ch); len(got) != 0 {
		t.Errorf("events after Close: %v", got)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	for _, f := range []*fake{a, b} {
		if _, _, c := f.counts(); c != 1 {
			t.Errorf("source closed %d times, want 1", c)
		}
	}
	if err := m.Update(peer("self")); !errors.Is(err, discovery.ErrClosed) {
		t.Errorf("Update after Close = %v, want %v", err, discovery.ErrClosed)
	}
}

// A consumer that stopped reading must not make Close hang: forwarders
// blocked on the merged channel give up when Close begins.
func TestMultiCloseWithUnreadEvents(t *testing.T) {
	t.Parallel()
	a := newFake()
	m := discovery.Multi(a)
	if _, err := m.Start(peer("self")); err != nil {
		t.Fatal(err)
	}
	// 16 fill the merged buffer, the forwarder blocks holding the 17th, the
	// fake's goroutine blocks holding the 18th: every goroutine is stuck on
	// a send when Close starts.
	for i := range 18 {
		a.in <- discovery.Event{Kind: discovery.Joined, Peer: peer(fmt.Sprint(i))}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMultiStartFailure(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	a, b, c := newFake(), newFake(), newFake()
	b.startErr = boom
	m := discovery.Multi(a, b, c)
	if _, err := m.Start(peer("self")); !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want %v", err, boom)
	}
	if s, _, cl := a.counts(); s != 1 || cl != 1 {
		t.Errorf("a: started %d closed %d, want 1 and 1", s, cl)
	}
	if s, _, cl := c.counts(); s != 0 || cl != 0 {
		t.Errorf("c: started %d closed %d, want 0 and 0", s, cl)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close after failed Start = %v", err)
	}
	if _, err := m.Start(peer("self")); !errors.Is(err, discovery.ErrClosed) {
		t.Errorf("Start after failed Start = %v, want %v", err, discovery.ErrClosed)
	}
}

func TestMultiJoinsErrors(t *testing.T) {
	t.Parallel()
	errA, errB := errors.New("a failed"), errors.New("b failed")
	a, b := newFake(), newFake()
	a.updateErr, b.updateErr = errA, errB
	a.closeErr = errA
	m := discovery.Multi(a, b)
	if _, err := m.Start(peer("self")); err != nil {
		t.Fatal(err)
	}
	err := m.Update(peer("self"))
	if !errors.Is(err, errA) || !errors.Is(err, errB) {
		t.Errorf("Update = %v, want both errors", err)
	}
	if err := m.Close(); !errors.Is(err, errA) {
		t.Errorf("Close = %v, want %v", err, errA)
	}
	if _, _, c := b.counts(); c != 1 {
		t.Errorf("b closed %d times, want 1 despite a's error", c)
	}
}

func TestMultiEmpty(t *testing.T) {
	t.Parallel()
	m := discovery.Multi()
	ch, err := m.Start(peer("self"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, ch); len(got) != 0 {
		t.Errorf("got %v", got)
	}
}

// settling is a Settler whose first look the test ends: events go into a
// buffered channel, as a Settler's contract asks.
type settling struct {
	ch      chan discovery.Event
	settled chan struct{}
	once    sync.Once
}

func newSettling() *settling {
	return &settling{ch: make(chan discovery.Event, 8), settled: make(chan struct{})}
}

func (s *settling) Start(discovery.Peer) (<-chan discovery.Event, error) { return s.ch, nil }
func (s *settling) Update(discovery.Peer) error                          { return nil }
func (s *settling) Close() error                                         { s.once.Do(func() { close(s.ch) }); return nil }
func (s *settling) Settled() <-chan struct{}                             { return s.settled }

// TestMultiSettled: a Multi settles once its last Settler source has, with
// that source's events forwarded first; other sources do not hold it up.
func TestMultiSettled(t *testing.T) {
	t.Parallel()
	slow := newSettling()
	m := discovery.Multi(discovery.Static("127.0.0.1:1"), slow, newFake())
	st, ok := m.(discovery.Settler)
	if !ok {
		t.Fatal("a Multi is not a Settler")
	}
	out, err := m.Start(peer("self"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	next(t, out) // the static seed's
	select {
	case <-st.Settled():
		t.Fatal("settled before its slow source")
	default:
	}
	slow.ch <- discovery.Event{Kind: discovery.Joined, Peer: peer("p2")}
	close(slow.settled)
	select {
	case <-st.Settled():
	case <-time.After(10 * time.Second):
		t.Fatal("not settled within 10s")
	}
	select {
	case ev := <-out:
		if ev.Peer.ID != "p2" {
			t.Fatalf("got %+v, want p2's Joined", ev)
		}
	default:
		t.Fatal("settled before the slow source's event was forwarded")
	}

	// A source that settled with more events unread than the Multi's
	// channel holds: the Multi forwards them all before it settles.
	const n = 64
	early := &settling{ch: make(chan discovery.Event, n), settled: make(chan struct{})}
	for i := range n {
		early.ch <- discovery.Event{Kind: discovery.Joined, Peer: peer(fmt.Sprint("e", i))}
	}
	close(early.settled)
	m2 := discovery.Multi(early)
	out2, err := m2.Start(peer("self"))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	got := 0
	deadline := time.After(10 * time.Second)
	for settled := false; !settled; {
		select {
		case <-out2:
			got++
		case <-m2.(discovery.Settler).Settled():
			settled = true
		case <-deadline:
			t.Fatal("not settled within 10s")
		}
	}
	for drained := false; !drained; {
		select {
		case <-out2:
			got++
		default:
			drained = true
		}
	}
	if got != n {
		t.Errorf("settled with %d of %d events forwarded", got, n)
	}

	empty := discovery.Multi()
	if _, err := empty.Start(peer("self")); err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	select {
	case <-empty.(discovery.Settler).Settled():
	default:
		t.Error("a Multi of nothing has not settled at Start")
	}
}

// TestMultiSettledSourceEnded: a Settler source whose channel closes before
// it settles (it failed, or has nothing more to find) does not hold the
// Multi's Settled up.
func TestMultiSettledSourceEnded(t *testing.T) {
	t.Parallel()
	ended, waiting := newSettling(), newSettling()
	m := discovery.Multi(ended, waiting)
	if _, err := m.Start(peer("self")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	st := m.(discovery.Settler)
	_ = ended.Close()
	close(waiting.settled)
	select {
	case <-st.Settled():
	case <-time.After(10 * time.Second):
		t.Fatal("a source that ended unsettled held the Multi up")
	}
}

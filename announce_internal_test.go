package colugo

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport/zmq"
)

// countingDiscovery counts Update calls and remembers the last announced
// catalog.
type countingDiscovery struct {
	discovery.Discovery
	updates atomic.Int32
	last    atomic.Value // string
}

func (d *countingDiscovery) Update(self discovery.Peer) error {
	d.updates.Add(1)
	d.last.Store(self.Catalog)
	return d.Discovery.Update(self)
}

// TestAnnounceCoalesces: a burst of catalog changes (many Subscribe calls
// at once) costs far fewer announcements than changes, and the last one
// carries the final catalog.
func TestAnnounceCoalesces(t *testing.T) {
	t.Setenv(EnvDiscovery, "") // else it wins over WithDiscovery; d is host-local and the transport on loopback
	d := &countingDiscovery{Discovery: local.New(local.WithDir(t.TempDir()))}
	tr, err := zmq.New(zmq.WithHost("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNode("n", WithDiscovery(d), WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const subs = 300
	var wg sync.WaitGroup
	for range subs {
		wg.Go(func() {
			if _, err := Subscribe[int](t.Context(), n, "t"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	n.mu.Lock()
	want := n.catalog
	n.mu.Unlock()
	testwait.Until(t, "the final catalog announced", func() bool { s, _ := d.last.Load().(string); return s == want })
	if u := d.updates.Load(); u >= subs/2 {
		t.Fatalf("%d announcements for %d changes: not coalesced", u, subs)
	}
	t.Logf("%d announcements for %d subscriptions", d.updates.Load(), subs)
}

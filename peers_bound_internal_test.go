package colugo

import (
	"testing"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport/inproc"
)

// TestDescriptionsBound: the bounds are WithMaxPeers' doc's, and the kept
// descriptions hold at most
// maxDescriptions together: one that would pass it is refused (counted,
// the peer left undescribed), and a peer that leaves gives its share back.
func TestDescriptionsBound(t *testing.T) {
	t.Setenv(EnvDiscovery, "") // TestMain's host-only scope refuses an inproc address
	n, err := NewNode("n", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.cfg.maxPeers != 1024 || maxDescription != 16<<20 || maxDescriptions != 256<<20 {
		t.Errorf("bounds %d peers, %d and %d bytes; WithMaxPeers' doc says 1024, 16 MiB, 256 MiB", n.cfg.maxPeers, maxDescription, maxDescriptions)
	}
	peer := func(id string, size int) *peer {
		p := &peer{key: id, info: discovery.Peer{ID: id, Router: "inproc:" + id}, subscribed: map[string]bool{}}
		n.peers[id] = p
		n.applyDescriptionLocked(p, &PeerInfo{ID: id, Name: id, Router: "inproc:" + id, size: size}, "")
		return p
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	a := peer("a", maxDescriptions-100)
	b := peer("b", 200) // past the bound
	if a.desc == nil || b.desc != nil || !b.down || n.peersRefused.Load() != 1 {
		t.Fatalf("a described %v, b described %v (down %v), refused %d", a.desc != nil, b.desc != nil, b.down, n.peersRefused.Load())
	}
	n.removePeerLocked(a)
	if c := peer("c", 200); c.desc == nil || n.descBytes != 200 {
		t.Errorf("after a left: c described %v, %d bytes kept", c.desc != nil, n.descBytes)
	}
}

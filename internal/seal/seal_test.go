package seal_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/colugo-go/colugo/internal/seal"
)

var (
	k1 = []byte("0123456789abcdef0123456789abcdef")
	k2 = []byte("another secret of sufficient len")
)

func TestSealOpen(t *testing.T) {
	ring, err := seal.NewKeyring(k1)
	if err != nil {
		t.Fatal(err)
	}
	ad, msg := []byte("topic\x00header"), []byte("payload")
	sealed := ring.Seal(nil, ad, msg)
	if len(sealed) != len(msg)+seal.Overhead || bytes.Contains(sealed, msg) {
		t.Fatalf("sealed %x", sealed)
	}
	got, err := ring.Open(ad, sealed)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open: %q, %v", got, err)
	}
	if bytes.Equal(ring.Seal(nil, ad, msg), sealed) {
		t.Fatal("two seals of one message are equal: nonce reused")
	}
	// Tampering with any byte, or with the additional data, fails.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if _, err := ring.Open(ad, bad); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	if _, err := ring.Open([]byte("other\x00header"), sealed); !errors.Is(err, seal.ErrAuth) {
		t.Fatalf("other ad: %v", err)
	}
	if _, err := ring.Open(ad, sealed[:seal.Overhead-1]); !errors.Is(err, seal.ErrAuth) {
		t.Fatalf("short: %v", err)
	}
	other, _ := seal.NewKeyring(k2)
	if _, err := other.Open(ad, sealed); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := seal.NewKeyring([]byte("short")); !errors.Is(err, seal.ErrShortKey) {
		t.Fatalf("short key: %v", err)
	}
}

func TestRotation(t *testing.T) {
	old, _ := seal.NewKeyring(k1)
	sealedOld := old.Seal(nil, nil, []byte("x"))
	ring, _ := seal.NewKeyring(k2, k1) // new key first, old still accepted
	if _, err := ring.Open(nil, sealedOld); err != nil {
		t.Fatalf("old key refused during rotation: %v", err)
	}
	if _, err := old.Open(nil, ring.Seal(nil, nil, []byte("y"))); err == nil {
		t.Fatal("a node with only the old key opened a message sealed with the new one")
	}
	if err := ring.Set(k2); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Open(nil, sealedOld); err == nil {
		t.Fatal("old key still accepted after rotation ended")
	}
}

// TestGuardPublish: publishes count only from a described sender, above
// its baseline, once each, within the window.
func TestGuardPublish(t *testing.T) {
	g := seal.NewGuard(8, 8, nil)
	if err := g.Publish("a", "t", 1); !errors.Is(err, seal.ErrUnknown) {
		t.Fatalf("undescribed sender: %v", err)
	}
	g.Describe("a", map[string]uint64{"t": 10})
	g.Describe("a", map[string]uint64{"t": 50}) // a later description does not move the baseline
	steps := []struct {
		topic string
		seq   uint64
		ok    bool
	}{
		{"t", 10, false}, {"t", 3, false}, {"t", 11, true}, {"t", 11, false}, {"t", 13, true}, {"t", 12, true},
		{"t", 12, false}, {"t", 20000, true}, {"t", 20000 - seal.WindowSize, false}, {"t", 20001 - seal.WindowSize, true},
		{"t", 20001 - seal.WindowSize, false}, {"t", 19999, true}, {"t", 0, false},
		{"new", 1, true}, {"new", 1, false}, // a topic not published when described: baseline 0
	}
	for i, s := range steps {
		if err := g.Publish("a", s.topic, s.seq); (err == nil) != s.ok {
			t.Fatalf("step %d (%s %d): err %v, want ok=%v", i, s.topic, s.seq, err, s.ok)
		}
	}
	// Every number of a reordered run is accepted once.
	g.Describe("b", nil)
	for _, seq := range []uint64{5, 1, 4, 2, 3, 1000, 6, 999} {
		if err := g.Publish("b", "t", seq); err != nil {
			t.Fatalf("reordered %d: %v", seq, err)
		}
	}
	g.Forget("a")
	if err := g.Publish("a", "t", 3000); !errors.Is(err, seal.ErrUnknown) {
		t.Fatalf("after Forget: %v", err)
	}
}

// TestGuardRequest: a request counts once, is refused once it expired by
// the sender's clock, and survives any reorder while it is live.
func TestGuardRequest(t *testing.T) {
	g := seal.NewGuard(8, 5, nil)
	const s = int64(1e9)
	steps := []struct {
		seq            uint64
		sent, deadline int64
		err            error
	}{
		{1, 100 * s, 5 * s, nil}, {1, 100 * s, 5 * s, seal.ErrReplay}, {0, 100 * s, 5 * s, seal.ErrReplay},
		{3, 101 * s, 5 * s, nil}, {2, 100 * s, 5 * s, nil}, // reordered, still live
		{9, 104 * s, 5 * s, nil}, {4, 100 * s, 3 * s, seal.ErrReplay}, // expired before 9 was sent
		{5, 100 * s, 4 * s, nil},          // expires just as 9 was sent: still live
		{6, 104 * s, 5 * s, seal.ErrFull}, // 1, 2, 3, 5, 9 live: the limit
	}
	for i, st := range steps {
		if i == len(steps)-1 {
			if err := g.Request("a", 10, 106*s, 5*s+106*s); err != nil { // expires 1, 2 and 5: a sweep makes room
				t.Fatalf("sweep: %v", err)
			}
			continue
		}
		if err := g.Request("a", st.seq, st.sent, st.sent+st.deadline); !errors.Is(err, st.err) {
			t.Fatalf("step %d (seq %d): %v, want %v", i, st.seq, err, st.err)
		}
	}
	if _, n := g.Len(); n != 3 {
		t.Fatalf("%d live requests remembered, want 3 (3, 9, 10)", n)
	}
	for seq := uint64(11); seq <= 12; seq++ {
		_ = g.Request("a", seq, 106*s, 200*s)
	}
	if err := g.Request("a", 13, 106*s, 200*s); !errors.Is(err, seal.ErrFull) {
		t.Fatalf("full: %v", err)
	}
	// Forget refuses what the sender sent before, and accepts what it sends after.
	g.Forget("a")
	if err := g.Request("a", 14, 106*s, 200*s); !errors.Is(err, seal.ErrReplay) {
		t.Fatalf("sent before Forget: %v", err)
	}
	if err := g.Request("a", 15, 107*s, 200*s); err != nil {
		t.Fatalf("sent after Forget: %v", err)
	}
}

// TestGuardEvicts: past maxSenders the sender heard from least recently is
// dropped and reported.
func TestGuardEvicts(t *testing.T) {
	var evicted []string
	g := seal.NewGuard(2, 8, func(id string) { evicted = append(evicted, id) })
	_ = g.Request("a", 1, 1, 2)
	_ = g.Request("b", 1, 1, 2)
	_ = g.Request("a", 2, 1, 2)
	_ = g.Request("c", 1, 1, 2)
	if senders, _ := g.Len(); senders != 2 || len(evicted) != 1 || evicted[0] != "b" {
		t.Fatalf("senders %d, evicted %v; want 2, [b]", senders, evicted)
	}
}

// FuzzOpen: nothing but the one genuine message opens (a forgery would be
// a break of the AEAD), and nothing panics.
func FuzzOpen(f *testing.F) {
	ring, _ := seal.NewKeyring(k1)
	genuineAD := []byte("ad")
	genuine := ring.Seal(nil, genuineAD, []byte("payload"))
	f.Add(genuineAD, genuine)
	f.Add([]byte{}, []byte{})
	f.Add([]byte("ad"), make([]byte, seal.Overhead))
	f.Fuzz(func(t *testing.T, ad, sealed []byte) {
		_, err := ring.Open(ad, sealed)
		if err == nil && !(bytes.Equal(ad, genuineAD) && bytes.Equal(sealed, genuine)) {
			t.Fatalf("forged message accepted: ad %x sealed %x", ad, sealed)
		}
	})
}

// TestOpenInPlace: in-place opening gives the plaintext inside the sealed
// buffer, refuses what Open refuses, and falls back to a copy when two keys
// share an id byte (a failed attempt may clobber the buffer).
func TestOpenInPlace(t *testing.T) {
	ring, _ := seal.NewKeyring(k1)
	sealed := ring.Seal(nil, []byte("ad"), []byte("payload"))
	pt, err := ring.OpenInPlace([]byte("ad"), sealed)
	if err != nil || string(pt) != "payload" {
		t.Fatalf("OpenInPlace: %q, %v", pt, err)
	}
	if &pt[0] != &sealed[seal.Overhead-16] { // id, nonce: the ciphertext starts after them
		t.Fatal("plaintext is not in the sealed buffer")
	}
	forged := ring.Seal(nil, []byte("ad"), []byte("payload"))
	forged[len(forged)-1] ^= 1
	if _, err := ring.OpenInPlace([]byte("ad"), forged); !errors.Is(err, seal.ErrAuth) {
		t.Fatalf("forged: %v", err)
	}
	// Find a second key with the same id byte as k1: the new key seals, k1
	// still opens. The message sealed with k1 must open after a failed try
	// with the other key.
	for i := 0; ; i++ {
		other := []byte(fmt.Sprintf("another key, number %08d", i))
		both, _ := seal.NewKeyring(other, k1)
		probe := both.Seal(nil, nil, nil)
		if probe[0] != sealed[0] {
			continue
		}
		msg := ring.Seal(nil, []byte("ad"), []byte("payload"))
		if pt, err := both.OpenInPlace([]byte("ad"), msg); err != nil || string(pt) != "payload" {
			t.Fatalf("shared id byte: %q, %v", pt, err)
		}
		return
	}
}

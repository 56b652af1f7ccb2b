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

func TestReplay(t *testing.T) {
	r := seal.NewReplay[string](2)
	steps := []struct {
		stream string
		seq    uint64
		ok     bool
	}{
		{"a", 1, true}, {"a", 1, false}, {"a", 3, true}, {"a", 2, true}, {"a", 2, false},
		{"a", 100, true}, {"a", 36, false}, {"a", 37, true}, {"a", 37, false}, {"a", 0, false},
		{"b", 5, true}, {"b", 5, false},
	}
	for i, s := range steps {
		err := r.Check(s.stream, s.seq)
		if (err == nil) != s.ok {
			t.Fatalf("step %d (%s %d): err %v, want ok=%v", i, s.stream, s.seq, err, s.ok)
		}
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

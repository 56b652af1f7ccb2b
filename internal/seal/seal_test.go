package seal_test

import (
	"bytes"
	"errors"
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
	r := seal.NewReplay(2)
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

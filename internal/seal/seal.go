// Package seal authenticates and encrypts message payloads with a shared
// network key (XChaCha20-Poly1305), and rejects replays (Guard).
//
// A sealed payload is: key id (1 byte) | nonce (24 bytes) | ciphertext and
// tag. The additional data (the message's name and header fields) is
// authenticated, not encrypted. Random 24-byte nonces cannot repeat in
// practice, so no nonce state is shared between processes.
package seal

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// MinKeyLen is the shortest key accepted: 128 bits.
const MinKeyLen = 16

// Overhead is what sealing adds to a payload.
const Overhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// Errors from Open and NewKeyring.
var (
	ErrShortKey   = fmt.Errorf("colugo/seal: key shorter than %d bytes", MinKeyLen)
	ErrUnknownKey = errors.New("colugo/seal: sealed with an unknown key")
	ErrAuth       = errors.New("colugo/seal: message failed authentication")
	ErrReplay     = errors.New("colugo/seal: replayed or too old")
	ErrUnknown    = errors.New("colugo/seal: publish from a sender not described since it started")
	ErrFull       = errors.New("colugo/seal: too many unexpired requests remembered for this sender")
)

type key struct {
	id   byte
	aead interface {
		Seal(dst, nonce, plaintext, additionalData []byte) []byte
		Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	}
}

// Keyring seals with its first key and opens with any of them, so that a
// network can move to a new key without a flag day. Safe for concurrent
// use.
type Keyring struct {
	mu   sync.RWMutex
	keys []key
}

// NewKeyring returns a keyring sealing with current and also opening what
// was sealed with previous keys.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	if err := k.Set(current, previous...); err != nil {
		return nil, err
	}
	return k, nil
}

// Set replaces the keys: current seals from now on; previous keys still
// open. Keys are hashed into AEAD keys, so any secret of at least
// MinKeyLen bytes works.
func (k *Keyring) Set(current []byte, previous ...[]byte) error {
	var keys []key
	for _, raw := range append([][]byte{current}, previous...) {
		if len(raw) < MinKeyLen {
			return ErrShortKey
		}
		sum := sha256.Sum256(append([]byte("colugo seal v1\x00"), raw...))
		id := sha256.Sum256(append([]byte("colugo key id v1\x00"), raw...))
		aead, err := chacha20poly1305.NewX(sum[:])
		if err != nil {
			return err
		}
		keys = append(keys, key{id: id[0], aead: aead})
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

// Seal appends the sealed form of plaintext, bound to ad, to dst.
func (k *Keyring) Seal(dst, ad, plaintext []byte) []byte {
	k.mu.RLock()
	cur := k.keys[0]
	k.mu.RUnlock()
	start := len(dst)
	dst = append(dst, cur.id)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	nonce := dst[start+1:]
	_, _ = rand.Read(nonce) // crypto/rand.Read does not fail on supported platforms
	return cur.aead.Seal(dst, nonce, plaintext, ad)
}

// Open returns the plaintext of sealed, checking it against ad.
func (k *Keyring) Open(ad, sealed []byte) ([]byte, error) { return k.open(ad, sealed, false) }

// OpenInPlace is Open, but decrypts into sealed's own bytes (the plaintext
// is a subslice of sealed), saving an allocation and a copy. The caller
// must own sealed; after a failure its bytes are undefined.
func (k *Keyring) OpenInPlace(ad, sealed []byte) ([]byte, error) { return k.open(ad, sealed, true) }

func (k *Keyring) open(ad, sealed []byte, inPlace bool) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrAuth
	}
	k.mu.RLock()
	keys := k.keys
	k.mu.RUnlock()
	id, nonce, ct := sealed[0], sealed[1:1+chacha20poly1305.NonceSizeX], sealed[1+chacha20poly1305.NonceSizeX:]
	candidates := 0
	for _, kk := range keys {
		if kk.id == id {
			candidates++
		}
	}
	// A failed attempt may have clobbered ct: decrypt in place only when
	// one key can match (ids are one byte: two keys may share one).
	inPlace = inPlace && candidates == 1
	known := false
	for _, kk := range keys {
		if kk.id != id {
			continue
		}
		known = true
		var dst []byte
		if inPlace {
			dst = ct[:0]
		}
		if pt, err := kk.aead.Open(dst, nonce, ct, ad); err == nil {
			return pt, nil
		}
	}
	if !known {
		return nil, ErrUnknownKey
	}
	return nil, ErrAuth
}

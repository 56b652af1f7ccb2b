package colugo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/colugo-go/colugo/internal/seal"
	"github.com/colugo-go/colugo/internal/wire"
	"github.com/colugo-go/colugo/transport"
)

// EnvKey is the environment variable that sets the network key of every
// node of a program (it wins over WithKey): 32 or more hex digits, or any
// other string of at least 16 bytes.
const EnvKey = "COLUGO_KEY"

// ErrUnauthenticated is returned by a request whose reply failed
// authentication (a node without the key, or a forged reply).
var ErrUnauthenticated = errors.New("colugo: message failed authentication")

// WithKey makes the node seal every payload it sends with the network key
// (XChaCha20-Poly1305: encrypted and authenticated together with the
// message's name and header) and refuse every message not sealed with it:
// publishes, requests, replies and $describe. Nodes without the key can
// neither read nor inject anything, and their attempts are counted in
// Stats().AuthFailures. previous keys are still accepted, never used to
// seal, so a network can move to a new key node by node; Node.SetKey
// finishes the move without a restart. A key is any secret of at least 16
// bytes (32 random bytes is right). Default: no key, nothing sealed.
//
// Names, header fields (codec, type, sender id, sequence numbers, times)
// and discovery records stay readable: see the threat model in the README.
func WithKey(key []byte, previous ...[]byte) NodeOption {
	return keyOption{key: key, prev: previous}
}

// SetKey replaces the node's network key while it runs: key seals from now
// on, previous keys are still accepted. It fails with ErrInvalidOption on a
// short key, and on a node created without a key (sealing cannot be turned
// on mid-flight: peers would disagree).
func (n *Node) SetKey(key []byte, previous ...[]byte) error {
	if n.keys == nil {
		return fmt.Errorf("%w: the node was created without a key", ErrInvalidOption)
	}
	if err := n.keys.Set(key, previous...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	return nil
}

// keyFromEnv returns the key COLUGO_KEY sets, if any.
func keyFromEnv() ([]byte, bool) {
	v, ok := os.LookupEnv(EnvKey)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return nil, false
	}
	if len(v) >= 32 && len(v)%2 == 0 {
		if b, err := hex.DecodeString(v); err == nil {
			return b, true
		}
	}
	return []byte(v), true
}

// adPool holds buffers for additional data: a seal's AEAD is an interface,
// so a buffer on the stack would escape anyway.
var adPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// additionalData is what a seal binds the payload to: the name and every
// header field but those the transport sets after sealing (a request's id).
func additionalData(buf []byte, name string, h *wire.Header) []byte {
	hc := *h
	if hc.Kind == transport.KindRequest || hc.Kind == transport.KindControl || hc.Kind == transport.KindCancel {
		hc.RequestID = 0
	}
	buf = wire.AppendName(buf, name)
	return hc.Append(buf)
}

// sealMsg replaces msg's payload by its sealed form. msg is the node's own.
func (n *Node) sealMsg(msg *transport.Message) {
	if n.keys == nil {
		return
	}
	msg.Header.Flags |= wire.FlagSealed
	bp := adPool.Get().(*[]byte)
	ad := additionalData((*bp)[:0], msg.Name, &msg.Header)
	msg.Payload = n.keys.Seal(make([]byte, 0, len(msg.Payload)+seal.Overhead), ad, msg.Payload)
	msg.Exclusive = true // a new buffer: the transport need not copy it
	*bp = ad[:0]
	adPool.Put(bp)
}

// replayStream names a sequence of messages whose numbers must not repeat:
// a sender's publishes on one topic, or its requests.
type replayStream struct {
	sender, topic string
	requests      bool
}

// openMsg replaces msg's sealed payload by the plaintext (in place when
// msg.Exclusive: the payload is ours), or returns an error when a keyed
// node gets a message not sealed with its key (or a keyless node gets a
// sealed one). stream, unless nil, is the sequence the message must be new
// in. msg must be the caller's to modify.
func (n *Node) openMsg(msg *transport.Message, stream *replayStream) error {
	sealed := msg.Header.Flags&wire.FlagSealed != 0
	if n.keys == nil {
		if sealed {
			return n.authFailed(msg, errors.New("sealed message, and this node has no key"))
		}
		return nil
	}
	if !sealed {
		return n.authFailed(msg, errors.New("message not sealed"))
	}
	bp := adPool.Get().(*[]byte)
	ad := additionalData((*bp)[:0], msg.Name, &msg.Header)
	var pt []byte
	var err error
	if msg.Exclusive {
		pt, err = n.keys.OpenInPlace(ad, msg.Payload)
	} else {
		pt, err = n.keys.Open(ad, msg.Payload)
	}
	*bp = ad[:0]
	adPool.Put(bp)
	if err != nil {
		return n.authFailed(msg, err)
	}
	if stream != nil {
		if err := n.replay.Check(*stream, msg.Header.Seq); err != nil {
			return n.authFailed(msg, err)
		}
	}
	msg.Payload, msg.Exclusive = pt, true
	return nil
}

func (n *Node) authFailed(msg *transport.Message, err error) error {
	n.authFailures.Add(1)
	n.log.Debug("message refused", slog.String(keyTopic, msg.Name), slog.String(keyPeer, msg.Header.Sender),
		slog.String("kind", msg.Header.Kind.String()), slog.Any(keyError, err))
	return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
}

package colugo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/colugo-go/colugo/internal/seal"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

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

// adPool holds buffers for additional data: a seal's AEAD is an interface,
// so a buffer on the stack would escape anyway.
var adPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// binding is what a sealed message is bound to besides its name and
// header, so that it is valid in one place only (see the README's "Sealed
// payloads"): a request or control request, to the node it was sent to
// (peer: its id; "" for a $describe to a node not known yet); a reply, to
// the request it answers (peer: the requester's id, seq: the request's).
type binding struct {
	peer string
	seq  uint64
}

// additionalData is what a seal binds the payload to: the name, every
// header field but the request id (which the requester's transport sets
// after sealing) and the extensions, and the binding. The extensions are
// left out so that a peer that gets the message without them (see
// Stats.ExtStripped) still opens it; sealExt authenticates them.
func additionalData(buf []byte, name string, h *wire.Header, b binding) []byte {
	hc := *h
	hc.RequestID = 0 // set by the requester's transport after sealing; the binding says what it meant
	hc.Ext = ""
	buf = wire.AppendName(buf, name)
	buf = hc.Append(buf)
	switch hc.Kind {
	case transport.KindRequest, transport.KindControl:
		buf = binary.AppendUvarint(buf, uint64(len(b.peer)))
		buf = append(buf, b.peer...)
	case transport.KindReply:
		buf = binary.AppendUvarint(buf, uint64(len(b.peer)))
		buf = append(buf, b.peer...)
		buf = binary.AppendUvarint(buf, b.seq)
	}
	return buf
}

// sealMsg replaces msg's payload by its sealed form, bound to b. msg is
// the node's own.
func (n *Node) sealMsg(msg *transport.Message, b binding) {
	if n.keys == nil {
		return
	}
	msg.Header.Flags |= wire.FlagSealed
	bp := adPool.Get().(*[]byte)
	ad := additionalData((*bp)[:0], msg.Name, &msg.Header, b)
	msg.Payload = n.keys.Seal(make([]byte, 0, len(msg.Payload)+seal.Overhead), ad, msg.Payload)
	msg.Exclusive = true // a new buffer: the transport need not copy it
	if msg.Header.Ext != "" {
		ad = extAD(ad, msg.Header.Ext, tagOf(msg.Payload))
		mac := n.keys.Seal(nil, ad, nil)
		msg.Header.Ext = string(wire.AppendExt([]byte(msg.Header.Ext), wire.ExtSealMAC, string(mac)))
	}
	*bp = ad[:0]
	adPool.Put(bp)
}

// extMACLabel starts what a header's ExtSealMAC entry authenticates, so
// that it is never the additional data of another seal.
const extMACLabel = "colugo/ext-mac\x00"

// tagLen is the length of a seal's tag, the last bytes of a sealed payload.
const tagLen = 16

// tagOf returns the tag of a sealed payload: binding the extensions to it
// binds them to this one message.
func tagOf(sealed []byte) [tagLen]byte {
	var t [tagLen]byte
	if len(sealed) >= tagLen {
		copy(t[:], sealed[len(sealed)-tagLen:])
	}
	return t
}

// extAD appends, to the payload's additional data ad, what the
// extensions' MAC covers: the label, the entries before the MAC and the
// payload's tag.
func extAD(ad []byte, ext string, tag [tagLen]byte) []byte {
	ad = append(ad, extMACLabel...)
	ad = append(ad, ext...)
	return append(ad, tag[:]...)
}

// errExtMAC is a keyed node's refusal of header extensions that the
// sender's key does not authenticate.
var errExtMAC = errors.New("colugo: header extensions not authenticated")

// splitExtMAC returns the extensions before a trailing ExtSealMAC entry
// and the MAC; ok is false when the block does not end with one.
func splitExtMAC(ext string) (entries, mac string, ok bool) {
	for rest := ext; rest != ""; {
		typ, v, r, good := wire.NextExt(rest)
		if !good {
			return "", "", false
		}
		if r == "" {
			return ext[:len(ext)-len(rest)], v, typ == wire.ExtSealMAC
		}
		rest = r
	}
	return "", "", false
}

// openExt checks the extensions of a sealed message against ad, the
// additional data its payload opened with, and tag, the payload's tag,
// and strips their MAC.
func (n *Node) openExt(h *wire.Header, ad []byte, tag [tagLen]byte) error {
	entries, mac, ok := splitExtMAC(h.Ext)
	if !ok {
		return errExtMAC
	}
	full := extAD(ad, entries, tag)
	if _, err := n.keys.Open(full, []byte(mac)); err != nil {
		return fmt.Errorf("%w: %w", errExtMAC, err)
	}
	h.Ext = entries
	return nil
}

// sendClock returns the send time of a new request: the wall clock, but
// never below the last one given, so that a clock stepped back does not
// make the node's new requests look older than its old ones to the
// servers' replay checks (Guard.Request compares send times of one
// sender).
func (n *Node) sendClock() int64 {
	for {
		last := n.lastSend.Load()
		t := max(time.Now().UnixNano(), last+1)
		if n.lastSend.CompareAndSwap(last, t) {
			return t
		}
	}
}

// openMsg replaces msg's sealed payload by the plaintext (in place when
// msg.Exclusive: the payload is ours) and checks that it is fresh, or
// returns an error (counted) when a keyed node gets a message not sealed
// with its key and binding b, a replay or a stale message, or a keyless
// node gets a sealed one. A control request may also be bound to "" (a
// $describe to a node whose id the requester did not know). msg must be
// the caller's to modify.
func (n *Node) openMsg(msg *transport.Message, b binding) error {
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
	ad := additionalData((*bp)[:0], msg.Name, &msg.Header, b)
	var tag [tagLen]byte
	if msg.Header.Ext != "" {
		tag = tagOf(msg.Payload) // before an in-place open overwrites it
	}
	var pt []byte
	var err error
	switch {
	case msg.Header.Kind == transport.KindControl:
		// Two bindings to try: never in place, which clobbers on failure.
		if pt, err = n.keys.Open(ad, msg.Payload); err != nil && b.peer != "" {
			ad = additionalData(ad[:0], msg.Name, &msg.Header, binding{})
			pt, err = n.keys.Open(ad, msg.Payload)
		}
	case msg.Exclusive:
		pt, err = n.keys.OpenInPlace(ad, msg.Payload)
	default:
		pt, err = n.keys.Open(ad, msg.Payload)
	}
	if err == nil && msg.Header.Ext != "" {
		err = n.openExt(&msg.Header, ad, tag)
	}
	*bp = ad[:0]
	adPool.Put(bp)
	if err != nil {
		return n.authFailed(msg, err)
	}
	if err := n.admit(&msg.Header, msg.Name); err != nil {
		return n.authFailed(msg, err)
	}
	msg.Payload, msg.Exclusive = pt, true
	return nil
}

// errStale is a sealed message whose send time is outside the node's
// WithSendTimeWindow.
var errStale = errors.New("colugo: send time outside the accepted window")

// admit checks that an authenticated message is fresh: its send time (with
// WithSendTimeWindow), and that it is no replay (publishes, requests and
// control requests; a reply is bound to its request, of which the
// transport takes one reply at most).
func (n *Node) admit(h *wire.Header, name string) error {
	if w := n.cfg.sealing.sendTimeWindow; w > 0 {
		if d := time.Now().UnixNano() - h.SendTime; d > int64(w) || d < -int64(w) {
			return errStale
		}
	}
	switch h.Kind {
	case transport.KindPublish:
		if h.Flags&wire.FlagTail != 0 {
			// A tail marker repeats a number subscribers that lost nothing
			// have seen: not a replay. It is taken only for a gap after
			// publishes the guard accepted (counters.noteTail), so an old
			// one replayed counts nothing.
			return nil
		}
		return n.guard.Publish(h.Sender, name, h.Seq)
	case transport.KindRequest, transport.KindControl:
		ttl := h.Deadline
		if ttl == 0 { // none given (a foreign peer): the handler gets the default
			ttl = int64(n.cfg.defaultTimeout)
		}
		expiry := h.SendTime + ttl
		if ttl > 0 && expiry < h.SendTime { // overflow
			expiry = math.MaxInt64
		}
		return n.guard.Request(h.Sender, h.Seq, h.SendTime, expiry)
	}
	return nil
}

func (n *Node) authFailed(msg *transport.Message, err error) error {
	n.authFailures.Add(1)
	n.log.Debug("message refused", slog.String(keyTopic, msg.Name), slog.String(keyPeer, msg.Header.Sender),
		slog.String("kind", msg.Header.Kind.String()), slog.Any(keyError, err))
	return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
}

// sealingConfig holds the options of a keyed node's freshness checks.
type sealingConfig struct {
	sendTimeWindow time.Duration // 0: off
	maxSenders     int
	maxRequests    int
}

var defaultSealing = sealingConfig{maxSenders: 4096, maxRequests: 1 << 20}

// newGuard checks the sealing options and returns the node's replay guard.
func (n *Node) newGuard() (*seal.Guard, error) {
	c := n.cfg.sealing
	if c.sendTimeWindow < 0 || c.maxSenders <= 0 || c.maxRequests <= 0 {
		return nil, fmt.Errorf("%w: send time window must not be negative, replay limits must be positive", ErrInvalidOption)
	}
	return seal.NewGuard(c.maxSenders, c.maxRequests, func(id string) {
		n.log.Warn("replay state of a sender dropped (WithReplayLimits)", slog.String(keyPeer, id))
	}), nil
}

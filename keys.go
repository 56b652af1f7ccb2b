package colugo

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/colugo-go/colugo/internal/seal"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
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
// message's name and header, a request also with the node it is sent to, a
// reply with the request it answers) and refuse every message not sealed
// with it: publishes, requests, replies and $describe. Nodes without the
// key can neither read nor inject anything, captured messages cannot be
// replayed (to the same node or another, before or after a restart; see
// WithSendTimeWindow and WithReplayLimits), and refusals are counted in
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
// after sealing), and the binding.
func additionalData(buf []byte, name string, h *wire.Header, b binding) []byte {
	hc := *h
	hc.RequestID = 0 // set by the requester's transport after sealing; the binding says what it meant
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
	*bp = ad[:0]
	adPool.Put(bp)
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

// WithSendTimeWindow makes a keyed node refuse sealed messages whose send
// time (the sender's clock) differs from its own clock by more than d,
// counted in Stats().AuthFailures. It bounds how long an attacker on the
// wire can hold a message back and deliver it late, which replay checks
// cannot see (the message was never delivered before). It needs clocks
// that agree within d (NTP or PTP; a Raspberry Pi has no real-time clock
// and is wrong until it syncs). Replays are refused without it. Default:
// 0, off. A negative d is invalid.
func WithSendTimeWindow(d time.Duration) NodeOption { return sendTimeWindowOption(d) }

// WithReplayLimits bounds the memory of a keyed node's replay checks:
// senders is how many sending nodes it keeps state for (default 4096; past
// it, the state of the one heard from least recently is dropped, with a
// warning: captured requests of that node to this one could then be
// replayed once), and requests how many unexpired requests of one sender it
// remembers (default 1<<20, some 40 MiB; past it, that sender's new
// requests are refused, counted in Stats().AuthFailures, until older ones
// expire). A request is remembered until its deadline has passed at the
// sender, so the need is about requests per second times deadline. Both
// must be positive.
func WithReplayLimits(senders, requests int) NodeOption {
	return replayLimitsOption{senders: senders, requests: requests}
}

type (
	sendTimeWindowOption time.Duration
	replayLimitsOption   struct{ senders, requests int }
)

func (o sendTimeWindowOption) applyNode(c *nodeConfig) {
	c.sealing.sendTimeWindow = time.Duration(o)
	if o < 0 {
		c.sealing.sendTimeWindow = -1 // invalid: NewNode refuses it
	}
}

func (o replayLimitsOption) applyNode(c *nodeConfig) {
	c.sealing.maxSenders, c.sealing.maxRequests = o.senders, o.requests
}

func (o sendTimeWindowOption) String() string {
	return fmt.Sprintf("WithSendTimeWindow(%v)", time.Duration(o))
}

func (o replayLimitsOption) String() string {
	return fmt.Sprintf("WithReplayLimits(%d, %d)", o.senders, o.requests)
}

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

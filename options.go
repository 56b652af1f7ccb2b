package colugo

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// EventsOption configures Events.
type EventsOption interface{ applyEvents(*eventsConfig) }

type eventsConfig struct{ buffer int }

type eventBufferOption int

func (o eventBufferOption) applyEvents(c *eventsConfig) { c.buffer = int(o) }
func (o eventBufferOption) String() string              { return fmt.Sprintf("WithEventBuffer(%d)", int(o)) }

// WithEventBuffer sets how many events Events queues for a reader that
// falls behind before it drops the oldest; values below 1 count as 1.
// Default: DefaultEventBuffer (1024), many times what a network of a few
// hundred nodes starting at once produces.
func WithEventBuffer(n int) EventsOption { return eventBufferOption(n) }

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

// NodeOption configures NewNode.
type NodeOption interface{ applyNode(*nodeConfig) }

// PublisherOption configures NewPublisher.
type PublisherOption interface{ applyPublisher(*topicConfig) }

// SubscribeOption configures Subscribe.
type SubscribeOption interface{ applySubscribe(*subConfig) }

// ServeOption configures Serve.
type ServeOption interface{ applyServe(*topicConfig) }

// RequestOption configures Request.
// Its method takes and returns the config by value, so that a Request's
// config stays on the stack (a pointer through an interface would escape).
type RequestOption interface {
	applyRequest(requestConfig) requestConfig
}

// Option is valid everywhere: on a Node (as its default), a publisher, a
// subscription, a server and a request.
type Option interface {
	NodeOption
	PublisherOption
	SubscribeOption
	ServeOption
	RequestOption
}

type nodeConfig struct {
	tracer         Tracer
	disc           discovery.Discovery
	tr             transport.Transport
	log            *slog.Logger
	onError        func(error)
	defaultTimeout time.Duration
	recover        bool
	codec          codec.Codec
	maxHandlers    int
	maxPeers       int
	key            []byte
	prevKeys       [][]byte
	sealing        sealingConfig
	seed           *SeedConfig // WithSeedCompat
}

type topicConfig struct {
	codec    codec.Codec
	zeroCopy bool          // publishers
	maxWait  time.Duration // publishers: WithBackPressure
	// history is WithHistory's depth: kept (publishers) or asked for
	// (subscriptions); -1 when invalid. historyBytes is WithHistoryBytes.
	history, historyBytes int
	seedVisible           bool   // publishers and servers: SeedVisible
	relay                 *Relay // WithRelay
}

type subConfig struct {
	topicConfig
	buffer     int
	queueBytes int
	budget     *QueueBudget // WithQueueBudget
	budgetSet  bool         // WithQueueBudget was given, nil or not
	policy     DropPolicy
	anyCodec   bool
}

type requestConfig struct {
	topicConfig
	failFast bool
}

// WithCodec sets the codec. On a Node it is the default for its topics and
// services; on NewPublisher, Subscribe, Serve and Request it applies to that
// one. Default: codec.JSON{}. Publishers and subscribers of a topic (and
// servers and callers of a service) must agree, or messages are refused with
// ErrCodecMismatch.
func WithCodec(c codec.Codec) Option { return codecOption{c} }

type codecOption struct{ c codec.Codec }

func (o codecOption) applyNode(c *nodeConfig)                    { c.codec = o.c }
func (o codecOption) applyPublisher(c *topicConfig)              { c.codec = o.c }
func (o codecOption) applySubscribe(c *subConfig)                { c.codec = o.c }
func (o codecOption) applyServe(c *topicConfig)                  { c.codec = o.c }
func (o codecOption) applyRequest(c requestConfig) requestConfig { c.codec = o.c; return c }
func (o codecOption) String() string                             { return fmt.Sprintf("WithCodec(%s)", codecName(o.c)) }
func codecName(c codec.Codec) string {
	if c == nil {
		return "<nil>"
	}
	return c.Name()
}

// Node options are small values, not closures, so that they print (String)
// and, where their contents allow, compare.
type (
	discoveryOption    struct{ d discovery.Discovery }
	transportOption    struct{ t transport.Transport }
	loggerOption       struct{ l *slog.Logger }
	errorHandlerOption struct{ f func(error) }
	timeoutOption      time.Duration
	recoverOption      struct{}
	maxHandlersOption  int
	maxPeersOption     int
	keyOption          struct {
		key  []byte
		prev [][]byte
	}
)

func (o discoveryOption) applyNode(c *nodeConfig)    { c.disc = o.d }
func (o transportOption) applyNode(c *nodeConfig)    { c.tr = o.t }
func (o loggerOption) applyNode(c *nodeConfig)       { c.log = o.l }
func (o errorHandlerOption) applyNode(c *nodeConfig) { c.onError = o.f }
func (o timeoutOption) applyNode(c *nodeConfig)      { c.defaultTimeout = time.Duration(o) }
func (recoverOption) applyNode(c *nodeConfig)        { c.recover = true }
func (o maxHandlersOption) applyNode(c *nodeConfig)  { c.maxHandlers = int(o) }
func (o maxPeersOption) applyNode(c *nodeConfig)     { c.maxPeers = int(o) }
func (o keyOption) applyNode(c *nodeConfig)          { c.key, c.prevKeys = o.key, o.prev }

func (o discoveryOption) String() string  { return fmt.Sprintf("WithDiscovery(%T)", o.d) }
func (o transportOption) String() string  { return fmt.Sprintf("WithTransport(%T)", o.t) }
func (loggerOption) String() string       { return "WithLogger(...)" }
func (errorHandlerOption) String() string { return "WithErrorHandler(...)" }
func (o timeoutOption) String() string {
	return fmt.Sprintf("WithDefaultTimeout(%v)", time.Duration(o))
}
func (recoverOption) String() string       { return "WithRecover()" }
func (o maxHandlersOption) String() string { return fmt.Sprintf("WithMaxHandlers(%d)", int(o)) }
func (o maxPeersOption) String() string    { return fmt.Sprintf("WithMaxPeers(%d)", int(o)) }
func (o keyOption) String() string         { return fmt.Sprintf("WithKey(<secret>, %d previous)", len(o.prev)) }

// WithDiscovery sets how the node finds peers. Default: the host-local
// registry (discovery/local) and mDNS on every multicast interface
// (discovery/mdns; skipped with a warning on a machine without one). The
// COLUGO_DISCOVERY environment variable, when set, wins over this option
// (see [EnvDiscovery]). Only a bare *local.Registry, or a host-only
// COLUGO_DISCOVERY, makes the node host-only: other Discovery values are
// opaque, so the default transport then listens on every interface.
func WithDiscovery(d discovery.Discovery) NodeOption {
	return discoveryOption{d}
}

// WithTransport sets the transport. Default: transport/zmq with ephemeral
// ports, on every interface (0.0.0.0), or on 127.0.0.1 only when the
// discovery is host-only (see [EnvDiscovery]). With host-only discovery,
// NewNode refuses a given transport that listens beyond loopback. The node
// closes the transport when it closes.
func WithTransport(t transport.Transport) NodeOption {
	return transportOption{t}
}

// WithLogger sets the node's logger. Default: none (the library is silent).
func WithLogger(l *slog.Logger) NodeOption {
	return loggerOption{l}
}

// WithErrorHandler sets a function called with each non-terminal error: a
// message that failed to decode (*DecodeError, ErrCodecMismatch), a
// subscription that became slow (ErrSlowConsumer), a reply that could not
// be sent. It is called from the node's goroutines and must not block.
// Default: none; the errors are still counted in Stats and logged at debug.
func WithErrorHandler(f func(error)) NodeOption {
	return errorHandlerOption{f}
}

// WithDefaultTimeout bounds requests whose context has no deadline.
// Default: 5s.
func WithDefaultTimeout(d time.Duration) NodeOption {
	return timeoutOption(d)
}

// WithRecover makes the node recover a panicking handler and answer its
// caller with CodeInternal. Default: off; a panic in a handler crashes the
// program, as any other panic does.
func WithRecover() NodeOption {
	return recoverOption{}
}

// WithMaxHandlers bounds the handlers running at once on the node; requests
// beyond it are answered with CodeUnavailable. Default: 1024.
func WithMaxHandlers(n int) NodeOption {
	return maxHandlersOption(n)
}

// WithMaxPeers bounds the peers the node keeps: nodes that discovery
// found, each described ($describe) and remembered. Past it, newly found
// nodes wait, not described (Stats().PeersRefused counts them; as many
// wait at most, the oldest forgotten first), and are taken as kept peers
// leave, so that a flood of discovery records (anyone on the LAN can
// announce thousands over mDNS) costs a bounded amount of work and
// memory. Each kept
// description is also bounded: a $describe reply over 16 MiB is refused,
// and all of them together hold at most 256 MiB. Default: 1024.
func WithMaxPeers(n int) NodeOption {
	return maxPeersOption(n)
}

// WithBuffer sets a subscription's channel capacity. Default: 64. Values
// that find the channel full wait in the subscription's queue
// (WithQueueBytes).
func WithBuffer(n int) SubscribeOption { return bufferOption(n) }

type bufferOption int

func (o bufferOption) applySubscribe(c *subConfig) { c.buffer = int(o) }
func (o bufferOption) String() string              { return fmt.Sprintf("WithBuffer(%d)", int(o)) }

// WithQueueBytes bounds the queue in front of a subscription's channel, in
// bytes: each queued value counts its message's payload length plus
// [QueueEntryOverhead]. While the channel has room values go straight to
// it; when it is full they wait in the queue, in order, so that a reader
// descheduled for a moment loses nothing of a burst. The drop policy
// applies at the bound (DropOldest drops the queue's oldest value,
// DropNewest the arriving one, Block waits). A value larger than the whole
// bound is still taken by an empty queue. 0 means no queue: the policy
// applies when the channel is full. Default: [DefaultQueueBytes], 64 MiB.
//
// The bound is memory a subscription holds only while its reader falls
// behind, but it is per subscription: ten stalled subscriptions on a
// Raspberry Pi can hold 640 MiB. Lower it where memory is short or where
// only the latest values matter.
func WithQueueBytes(n int) SubscribeOption { return queueBytesOption(n) }

type queueBytesOption int

func (o queueBytesOption) applySubscribe(c *subConfig) { c.queueBytes = int(o) }
func (o queueBytesOption) String() string              { return fmt.Sprintf("WithQueueBytes(%d)", int(o)) }

// WithBackPressure makes a publisher wait for subscribers that asked for
// reliable delivery instead of dropping: each Publish waits, at most
// maxWait in all and until its ctx ends, for room in the queue of every
// subscription with the Block policy, on this node and on other nodes
// (their connections' send queues, then their subscription queues, fill
// first). Such a subscriber can slow the publisher down to its pace, but
// not stop it: one that still has no room after maxWait misses the
// message, counted and reported like any slow subscriber, and is not
// waited for again until its queue has drained, so a stalled one costs at
// most maxWait per episode. Subscribers with other policies are never
// waited for. Default: off (Publish never waits). maxWait must not be
// negative; 0 is off.
func WithBackPressure(maxWait time.Duration) PublisherOption { return backPressureOption(maxWait) }

type backPressureOption time.Duration

func (o backPressureOption) applyPublisher(c *topicConfig) { c.maxWait = time.Duration(o) }
func (o backPressureOption) String() string {
	return fmt.Sprintf("WithBackPressure(%v)", time.Duration(o))
}

// DropPolicy says what a subscription does with a message that arrives while
// its queue (WithQueueBytes: by default 64 MiB in front of the channel; with
// 0, the channel itself) is full.
type DropPolicy struct {
	kind  dropKind
	block time.Duration
}

type dropKind uint8

const (
	dropOldest dropKind = iota
	dropNewest
	dropBlock
)

var (
	// DropOldest discards the oldest queued message to make room: the
	// reader sees the latest values. The default.
	DropOldest = DropPolicy{kind: dropOldest}
	// DropNewest discards the arriving message: the reader sees the oldest.
	DropNewest = DropPolicy{kind: dropNewest}
)

// Block asks for reliable delivery: when the subscription's queue
// (WithQueueBytes) is full, an arriving message waits for room instead of
// being dropped. For a publisher on another node, the wait lasts up to d
// and holds up delivery from that publisher's node to this node, whose
// connection its other publishers share (they wait too; other nodes are
// not affected); the publisher's queue for
// this node then fills, and a publisher with WithBackPressure waits for it
// (the subscription asks publishers for back-pressure), while one without
// drops for this node. For a publisher on this node, Publish waits only
// with WithBackPressure, up to its bound; without it the message is
// dropped at once. A wait that times out drops the message and demotes the
// subscription: later messages are dropped without waiting until its queue
// has drained, so a stalled reader costs a publisher (or a connection) one
// wait per episode. Drops are counted and reported like the other
// policies', and each publisher's messages keep their order. Closing the
// subscription (its ctx, [Node.Close]) ends a wait at once.
func Block(d time.Duration) DropPolicy { return DropPolicy{kind: dropBlock, block: d} }

func (p DropPolicy) String() string {
	switch p.kind {
	case dropNewest:
		return "DropNewest"
	case dropBlock:
		return fmt.Sprintf("Block(%v)", p.block)
	}
	return "DropOldest"
}

// WithDropPolicy sets what a subscription does with a message that arrives
// while its queue is full. Default: DropOldest.
func WithDropPolicy(p DropPolicy) SubscribeOption { return dropPolicyOption{p} }

// dropPolicyOption is a DropPolicy as an option: it prints as the call.
type dropPolicyOption struct{ p DropPolicy }

func (o dropPolicyOption) applySubscribe(c *subConfig) { c.policy = o.p }
func (o dropPolicyOption) String() string              { return "WithDropPolicy(" + o.p.String() + ")" }

// WithZeroCopy makes a publisher hand each payload over to colugo instead
// of copying it: with codec.Raw, Publish then costs no copy however large
// the payload, and the caller must not modify the bytes after Publish (use
// a new buffer per message, or a ring the subscribers have finished with).
// Without it, Publish copies a Raw payload of 16 KiB or more once, so that
// the caller's buffer can be reused at once (smaller ones are copied into
// the connections' buffers in any case). Other codecs encode into new
// buffers, which colugo never copies: the option changes nothing for them.
func WithZeroCopy() PublisherOption { return zeroCopyOption{} }

type zeroCopyOption struct{}

func (zeroCopyOption) applyPublisher(c *topicConfig) { c.zeroCopy = true }
func (zeroCopyOption) String() string                { return "WithZeroCopy()" }

// WithFailFast makes a request fail at once with ErrNoResponders when no
// replier is known, instead of waiting within its deadline for one to be
// discovered.
func WithFailFast() RequestOption { return failFastOption{} }

type failFastOption struct{}

func (failFastOption) applyRequest(c requestConfig) requestConfig { c.failFast = true; return c }
func (failFastOption) String() string                             { return "WithFailFast()" }

// WithAnyCodec makes a subscription of []byte take every message of the
// topic whatever its codec, and deliver the payload bytes as they are
// (with SubscribeReceived, the codec name says how to read them): for
// tools such as recorders. Default: only messages of the subscription's
// codec are taken.
func WithAnyCodec() SubscribeOption { return anyCodecOption{} }

type anyCodecOption struct{}

func (anyCodecOption) applySubscribe(c *subConfig) { c.anyCodec = true }
func (anyCodecOption) String() string              { return "WithAnyCodec()" }

// TopicOption is valid on a publisher and on a subscription.
type TopicOption interface {
	PublisherOption
	SubscribeOption
}

// MaxHistory bounds WithHistory's n, on publishers and subscriptions.
const MaxHistory = wire.MaxHistoryRequest

// DefaultHistoryBytes is a publisher's default bound on the bytes its
// history holds (WithHistoryBytes): 8 MiB per topic.
const DefaultHistoryBytes = 8 << 20

// WithHistory keeps, or asks for, the last n messages of a topic.
//
// On NewPublisher it keeps the last n messages published on the topic by
// this node, encoded, in memory, bounded also in bytes (WithHistoryBytes,
// default DefaultHistoryBytes per topic): at most n messages and about
// that many bytes, the newest always kept. The node's publishers of a
// topic share one history, as deep as the deepest asked; it lives as long
// as one of them is open and is lost with the process (a restarted
// publisher starts empty). Publishers on other nodes keep their own.
//
// On Subscribe and SubscribeReceived it asks every publisher of the topic,
// on this node and others, as each is found, for up to n of the messages it
// keeps, delivered before that publisher's live messages, in order, with
// their original sequence numbers and send times (SubscribeReceived marks
// them Replayed). A subscription with history also recovers what it missed
// from a publisher (a reconnect, a full queue on the way): the publisher
// sends what its history still holds, and only what it no longer holds
// counts in TopicStats.Gaps. A publisher that keeps no history sends live
// messages only, and ErrNoHistory is reported once per subscription and
// publisher. Live data is never held back longer than the publisher takes
// to answer (at most 2 s for one that does not).
//
// Default: 0, no history. n must be between 0 and MaxHistory.
func WithHistory(n int) TopicOption { return historyOption(n) }

// WithLastValue asks every publisher of the topic for its latest message
// (the latched value): WithHistory(1) on a subscription.
func WithLastValue() SubscribeOption { return lastValueOption{} }

// WithHistoryBytes bounds the bytes a publisher's history holds (its
// payloads and metadata, plus QueueEntryOverhead per message): the
// oldest messages are dropped past it, but never the newest, so a topic
// keeps its latest value however large. Default: DefaultHistoryBytes.
// Only with WithHistory; n must be positive.
func WithHistoryBytes(n int) PublisherOption { return historyBytesOption(n) }

type (
	historyOption      int
	lastValueOption    struct{}
	historyBytesOption int
)

func historyDepth(n int) int {
	if n < 0 || n > MaxHistory {
		return -1
	}
	return n
}

func (o historyOption) applyPublisher(c *topicConfig) { c.history = historyDepth(int(o)) }
func (o historyOption) applySubscribe(c *subConfig)   { c.history = historyDepth(int(o)) }
func (o historyOption) String() string                { return fmt.Sprintf("WithHistory(%d)", int(o)) }
func (lastValueOption) applySubscribe(c *subConfig)   { c.history = 1 }
func (lastValueOption) String() string                { return "WithLastValue()" }
func (o historyBytesOption) applyPublisher(c *topicConfig) {
	c.historyBytes = int(o)
	if o <= 0 {
		c.historyBytes = -1
	}
}
func (o historyBytesOption) String() string { return fmt.Sprintf("WithHistoryBytes(%d)", int(o)) }

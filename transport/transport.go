// Package transport defines the untyped message transport under a colugo
// Node. Implementations: transport/zmq (ZMTP 3 over TCP, the default) and
// transport/inproc (in-process, no sockets). transport/transporttest is the
// conformance suite both must pass.
//
// A transport moves [Message] values. It owns its connections and goroutines;
// it knows nothing of codecs, types or discovery. The Node tells it which
// publishers to subscribe to and which routers to send requests to, by the
// addresses discovery found.
package transport

import (
	"context"
	"errors"
	"time"

	"github.com/colugo-go/colugo/transport/wire"
)

// Header is the message header, defined in package [wire] with the rest of
// the wire format (see the README's wire format section).
type Header = wire.Header

// Kind says what a message is (publish, request, reply, cancel, control).
type Kind = wire.Kind

// Message kinds, re-exported from the wire format.
const (
	KindPublish = wire.KindPublish
	KindRequest = wire.KindRequest
	KindReply   = wire.KindReply
	KindCancel  = wire.KindCancel
	KindControl = wire.KindControl
)

// CancelDeadline is the Status of a KindCancel whose requester gave up
// because its deadline passed (0: it was cancelled). The handler's context
// then ends with context.DeadlineExceeded, although the cancel may arrive
// a little before the handler's own copy of the deadline.
const CancelDeadline uint8 = 4

// Message is one message: a topic or service name, its header and its
// payload. Once handed to a Transport method or a Handler, neither side
// modifies it.
type Message struct {
	Name    string
	Header  Header
	Payload []byte
	// Exclusive says that nothing else references Payload. On what a
	// transport delivers: a receiver with a single consumer may keep it
	// without copying (transport/zmq: every received payload is its own
	// buffer; transport/inproc shares payloads). On what is handed to
	// Publish, Request or Reply: the caller gives Payload up, so the
	// transport may keep it until sent instead of copying it.
	Exclusive bool
}

// Endpoint holds the addresses a transport listens on, as peers dial them.
type Endpoint struct {
	Router string // requests and control ("host:port" for zmq)
	Pub    string // subscriptions
	// LocalRouter and LocalPub are optional faster addresses that only
	// processes on the same host (and network namespace) can reach, such
	// as Unix domain sockets ("unix:@name" for zmq). Peers that reach them
	// use them instead of Router and Pub.
	LocalRouter, LocalPub string
}

// Handler receives what arrives at a transport. Its methods are called from
// the transport's connection goroutines, possibly concurrently, and should
// not block: a blocking handler stalls that connection (and only it). A
// HandlePublish that blocks on purpose, for a back-pressure subscription
// whose consumer is behind, slows its publisher through the connection;
// the transport does not take the wait for a lost or silent peer.
type Handler interface {
	// HandlePublish is called once per message received from a publisher
	// this transport subscribed to. msg is valid only during the call: a
	// transport may reuse it for the next message, so a callee that keeps
	// it keeps a copy of *msg. Each call has its own *msg, whose fields the
	// callee may change during the call. The callee may keep msg.Payload;
	// it may modify the payload's bytes only when Exclusive, since a
	// transport may otherwise share one payload among several subscriptions.
	HandlePublish(msg *Message)

	// HandleRequest is called for each request, control request or cancel
	// arriving at this transport's router. rw sends replies back on the
	// connection the message came from; a cancel needs no reply.
	HandleRequest(msg *Message, rw ReplyWriter)

	// HandlePeerLost is called when an outbound connection (to a publisher
	// or router at addr) is lost: closed by the peer or silent past the
	// heartbeat timeout. The transport keeps redialling subscriptions that
	// are still wanted.
	HandlePeerLost(addr string, err error)
}

// ReplyWriter sends replies to one requester. Values are comparable and
// equal for requests that came on the same connection. A ReplyWriter may
// also implement [ConnWatcher].
type ReplyWriter interface {
	// Reply queues msg for the requester. It never blocks: it returns
	// ErrQueueFull when the requester is not reading, ErrPeerLost when it has
	// gone, ErrClosed after Close. It keeps neither msg nor its payload.
	Reply(msg *Message) error
}

// ConnWatcher is an optional interface of a [ReplyWriter]: Done is closed
// when the requester's connection is gone, so that the Node cancels the
// handlers still running for it. Without it, handlers of a vanished
// requester run to their deadline.
type ConnWatcher interface {
	Done() <-chan struct{}
}

// SubscriberCounter is an optional interface of a [Transport]: Subscribers
// reports how many subscriber connections currently hold a subscription
// that matches topic. The Node adds its own in-process subscriptions.
// Without it, Publisher.Subscribers counts from discovery descriptions.
type SubscriberCounter interface {
	Subscribers(topic string) int
}

// InProcessTransport is an optional interface of a [Transport]: InProcess
// reports true when every peer is in this process (transport/inproc), so
// the Node skips discovery and the address checks meant for sockets.
type InProcessTransport interface {
	InProcess() bool
}

// Flusher is an optional interface of a [Transport]: Flush waits until
// everything queued to send so far (published messages for subscribers,
// replies for requesters) has left this transport, written to its
// connections or taken by the receiving side, or its connection has gone.
// It returns ctx's error if ctx ends first. Messages queued during Flush
// may or may not be waited for. Node.Shutdown calls it before closing.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Syncer is an optional interface of a [Transport]: Sync waits until
// every message queued before the call for a subscriber that asked for
// back-pressure (SubscribeOptions.BackPressure; one that a publish waited
// for in vain, demoted, excepted) has been handed on: written to its
// connection (taken by the operating system, which sends it even if the
// process then exits) or taken by the receiving side, or dropped with its
// connection. Other subscribers are not waited for, so that a slow one
// holds up no one, and neither is what is queued during Sync, so that it
// returns under a steady flow too. It returns ctx's error if ctx ends
// first.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Transport carries messages between nodes. All methods are safe for
// concurrent use.
type Transport interface {
	// Listen binds the transport's router and publisher endpoints and starts
	// delivering incoming traffic to h. It is called once, before any other
	// method.
	Listen(h Handler) (Endpoint, error)

	// Publish sends msg to every connected subscriber whose subscription
	// is a prefix of msg.Name+"\x00". With a zero opts.MaxWait it never
	// waits: a subscriber whose queue is full misses the message. With a
	// positive MaxWait it waits, at most MaxWait in all and until ctx ends,
	// for room in the queues of subscribers that asked for back-pressure
	// (SubscribeOptions.BackPressure) on the topic; see PublishOptions. The
	// message is queued at once for the subscribers with room, then for
	// each waited-for one as room appears, so each connection keeps the
	// order of one caller's publishes. Every miss is counted: in the
	// result, in Stats().SendDropped and in the connection's
	// SubscriberStats. The result says how many subscriber connections
	// the message was for and how many missed it. It returns ErrClosed
	// after Close, ctx's error when ctx ended while waiting (the message
	// then went to the subscribers that had room; those still waited for
	// miss it, and are not demoted). The transport keeps neither msg nor
	// its payload once Publish returns: the caller may reuse both.
	Publish(ctx context.Context, msg *Message, opts PublishOptions) (PublishResult, error)

	// Subscribe asks the publisher at pubAddr for topic. The connection is
	// made, and remade after a loss, in the background until Unsubscribe or
	// Close; messages go to Handler.HandlePublish. Subscribing again to a
	// topic replaces its options (the publisher learns of the change on
	// the connection, asynchronously, like the subscription itself).
	Subscribe(pubAddr, topic string, opts SubscribeOptions) error

	// Unsubscribe withdraws a subscription; the connection closes when it
	// has none left.
	Unsubscribe(pubAddr, topic string) error

	// Request sends msg (KindRequest or KindControl) to the router at
	// routerAddr and waits for the reply. The transport assigns the
	// request id on the wire; it neither modifies nor keeps msg or its
	// payload: the caller may reuse both once Request returns. It returns ctx's error when ctx ends first (and
	// tells the replier with a cancel), ErrPeerLost when the connection to
	// the replier dies first, ErrClosed after Close.
	Request(ctx context.Context, routerAddr string, msg *Message) (*Message, error)

	// Disconnect closes every outbound connection to addr (a router or a
	// publisher) and fails its requests in flight with ErrPeerLost. Wanted
	// subscriptions to addr are dropped too.
	Disconnect(addr string)

	// Stats returns the transport's counters.
	Stats() Stats

	// Close closes every connection and listener and waits for the
	// transport's goroutines. Requests in flight fail with ErrClosed.
	// Close is idempotent.
	Close() error
}

// SubscribeOptions are what a subscriber asks of a publisher for one topic.
type SubscribeOptions struct {
	// BackPressure asks publishers that publish with a positive
	// PublishOptions.MaxWait to wait for room in this subscriber's queue
	// instead of dropping, up to that bound. A subscriber that asks for it
	// may stop reading for a while (its consumer is slow) and slow the
	// publisher down to its pace; past the bound it is treated as any slow
	// subscriber. A Handler.HandlePublish that blocks while its consumer
	// catches up is what slows the publisher: the transport must not take
	// that for a lost or silent publisher, however long it lasts.
	BackPressure bool
}

// PublishOptions say how Publish treats a subscriber whose queue is full.
type PublishOptions struct {
	// MaxWait bounds how long one Publish call waits, in all, for room in
	// the queues of subscribers that asked for back-pressure: the waits
	// for all of them share one deadline, MaxWait after the call started,
	// so N stalled subscribers cost one MaxWait, not N. 0: never wait,
	// drop. A subscriber whose queue is still full when the bound passes
	// misses the message and is demoted: later publishes do not wait for
	// it until its queue has drained to half of what it held when
	// demoted; then it is back-pressured again. So a stalled subscriber
	// costs a publisher at most MaxWait per episode and cannot stop it.
	// Subscribers that did not ask for back-pressure are never waited for.
	MaxWait time.Duration
}

// PublishResult says what became of one published message.
type PublishResult struct {
	Subscribers int // subscriber connections the message was for
	Dropped     int // of those, how many missed it: their queue was full
}

// Stats counts what a transport dropped or refused.
type Stats struct {
	SendDropped  uint64 // messages not queued for a subscriber or requester whose queue was full
	RecvDropped  uint64 // frames refused: malformed, oversized, unknown version or kind
	PeersLost    uint64 // outbound connections lost
	ConnsRefused uint64 // inbound connections refused: failed or evicted handshakes, connection limits
	// ExtStripped counts messages sent to a peer without their header
	// extensions (Header.Ext, so their metadata), because the peer does
	// not decode them: an older colugo node or a foreign ZMTP peer. The
	// message itself is delivered.
	ExtStripped uint64
	// Seed sockets (SeedTransport), counted apart from the node's own
	// traffic above:
	// SeedNotUTF8 counts payloads refused because they are not valid
	// UTF-8, which the seed cannot receive: publishes, requests, and
	// handler replies (answered with the error reply instead).
	SeedNotUTF8 uint64
	// SeedSendDropped counts messages not queued for a seed subscriber or
	// seed request client whose queue was full.
	SeedSendDropped uint64
	// SeedRecvDropped counts what arrived from seed sockets and was
	// dropped: publishes that are not one frame, requests without an
	// empty delimiter frame (or with an envelope over 1 KiB), replies
	// that are malformed or that no request waits for (late or
	// duplicate), and messages over the transport's limits (oversized,
	// too many frames, too slow), which also close their connection.
	SeedRecvDropped uint64
	// SeedErrorReplies counts seed requests answered with the error
	// reply: the handler failed, panicked, overran the budget or replied
	// with non-UTF-8; the request's body was not one frame; or the
	// request was over the in-flight bounds (also in SeedOverload).
	SeedErrorReplies uint64
	// SeedOverload counts seed requests refused (answered at once with the
	// error reply) because their connection or server had the most
	// requests in flight that SeedServeOptions allows.
	SeedOverload uint64
	// Subscribers describes this transport's subscriber connections (the
	// peers subscribed to it), when it tracks them; nil otherwise.
	Subscribers []SubscriberStats
}

// SubscriberStats describes one subscriber connection of a publishing
// transport.
type SubscriberStats struct {
	Remote       string // the subscriber's address as this transport sees it
	Topics       int    // subscriptions on the connection
	BackPressure int    // of them, those that asked for back-pressure
	Queued       int    // messages waiting to be written
	QueuedBytes  int    // their bytes
	Dropped      uint64 // messages the connection missed: its queue was full
	// Slow: in a drop episode. Set when the connection misses a message
	// (the transport logs the episode's start once, not each miss), and
	// while it is demoted from back-pressure; cleared by the next message
	// queued for it while not demoted.
	Slow bool
}

// Errors returned by transports. The root package re-exports the ones users see.
var (
	ErrClosed      = errors.New("colugo: closed")
	ErrPeerLost    = errors.New("colugo: peer lost")
	ErrQueueFull   = errors.New("colugo: send queue full")
	ErrUnknownPeer = errors.New("colugo: unknown peer address")
	// ErrPeerSilent is wrapped, with ErrPeerLost, by the error of a
	// connection dropped because nothing arrived on it for the heartbeat
	// timeout: the peer is frozen or unreachable, not merely closing.
	ErrPeerSilent = errors.New("colugo: peer silent past the heartbeat timeout")
)

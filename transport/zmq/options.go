package zmq

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// ErrInvalidOption is wrapped by the error [New] returns for an option value
// it cannot use.
var ErrInvalidOption = errors.New("colugo/zmq: invalid option")

// Defaults of the options.
const (
	DefaultHost              = "127.0.0.1"
	DefaultMaxFrameSize      = 64 << 20
	DefaultHandshakeTimeout  = 2 * time.Second
	DefaultSendQueue         = 1 << 20
	DefaultSendQueueBytes    = 64 << 20
	DefaultHeartbeatInterval = 500 * time.Millisecond
	DefaultPeerTimeout       = 2 * time.Second
)

// Defaults of the memory bounds (issue #11): together a peer, or many, can
// pin at most about DefaultRecvBudget + DefaultHandlerBudget +
// DefaultSendBudget + DefaultSubscriptionBudget (392 MiB) of a node through
// one transport, plus 128 KiB of send queue per connection past a full
// send budget (64 MiB with DefaultMaxConns), which a small robot (a
// Raspberry Pi has 1 to 8 GiB) can afford, while one message of the
// largest default size (DefaultMaxFrameSize) still fits each of them. One
// subscriber connection that keeps up costs its queue's buffers as a
// burst passes (up to DefaultSendQueueBytes) and about 48 KiB idle.
const (
	DefaultRecvBudget           = 128 << 20
	DefaultRecvBudgetPerHost    = 64 << 20
	DefaultRecvMinRate          = 1 << 20
	DefaultHandlerBudget        = 128 << 20
	DefaultHandlerBudgetPerConn = 64 << 20
	DefaultSendBudget           = 128 << 20
	DefaultMaxSubscriptions     = 1024
	DefaultMaxSubscriptionBytes = 256 << 10
	DefaultSubscriptionBudget   = 8 << 20
)

// Defaults of the limits on accepted connections.
const (
	DefaultGreetingTimeout      = 500 * time.Millisecond
	DefaultMaxHandshakes        = 256
	DefaultMaxHandshakesPerAddr = 64
	DefaultMaxConns             = 512
	DefaultMaxConnsPerListener  = 256
	DefaultMaxConnsPerAddr      = 256
)

// Option configures a [Transport]. Options are comparable values; build them
// with the With* functions.
type Option interface {
	apply(*config)
}

type config struct {
	host             string
	maxFrame         int64
	handshakeTimeout time.Duration
	sendQueue        int
	sendQueueBytes   int
	heartbeat        time.Duration
	peerTimeout      time.Duration
	log              *slog.Logger
	unix             bool
	recvBudget       int64
	recvPerHost      int64
	recvMinRate      int64
	handlerBudget    int64
	handlerPerConn   int64
	sendBudget       int64
	maxSubs          int
	maxSubBytes      int
	subBudget        int64

	greetingTimeout      time.Duration
	maxHandshakes        int
	maxHandshakesPerAddr int
	maxConns             int
	maxConnsPerListener  int
	maxConnsPerAddr      int
}

func defaultConfig() config {
	return config{
		host:             DefaultHost,
		maxFrame:         DefaultMaxFrameSize,
		handshakeTimeout: DefaultHandshakeTimeout,
		sendQueue:        DefaultSendQueue,
		sendQueueBytes:   DefaultSendQueueBytes,
		heartbeat:        DefaultHeartbeatInterval,
		peerTimeout:      DefaultPeerTimeout,
		log:              slog.New(slog.DiscardHandler),
		unix:             runtime.GOOS == "linux",
		recvBudget:       DefaultRecvBudget,
		recvPerHost:      DefaultRecvBudgetPerHost,
		recvMinRate:      DefaultRecvMinRate,
		handlerBudget:    DefaultHandlerBudget,
		handlerPerConn:   DefaultHandlerBudgetPerConn,
		sendBudget:       DefaultSendBudget,
		maxSubs:          DefaultMaxSubscriptions,
		maxSubBytes:      DefaultMaxSubscriptionBytes,
		subBudget:        DefaultSubscriptionBudget,

		greetingTimeout:      DefaultGreetingTimeout,
		maxHandshakes:        DefaultMaxHandshakes,
		maxHandshakesPerAddr: DefaultMaxHandshakesPerAddr,
		maxConns:             DefaultMaxConns,
		maxConnsPerListener:  DefaultMaxConnsPerListener,
		maxConnsPerAddr:      DefaultMaxConnsPerAddr,
	}
}

func (c *config) validate() error {
	switch {
	case c.maxFrame < 1024:
		return fmt.Errorf("%w: max frame size %d < 1024", ErrInvalidOption, c.maxFrame)
	case c.handshakeTimeout <= 0:
		return fmt.Errorf("%w: handshake timeout %v", ErrInvalidOption, c.handshakeTimeout)
	case c.sendQueue < 1:
		return fmt.Errorf("%w: send queue %d", ErrInvalidOption, c.sendQueue)
	case c.sendQueueBytes < 1:
		return fmt.Errorf("%w: send queue bytes %d", ErrInvalidOption, c.sendQueueBytes)
	case c.heartbeat <= 0:
		return fmt.Errorf("%w: heartbeat interval %v", ErrInvalidOption, c.heartbeat)
	case c.peerTimeout <= c.heartbeat:
		return fmt.Errorf("%w: peer timeout %v not above heartbeat interval %v", ErrInvalidOption, c.peerTimeout, c.heartbeat)
	case c.log == nil:
		return fmt.Errorf("%w: nil logger", ErrInvalidOption)
	case c.recvBudget < 1 || c.recvPerHost < 1 || c.recvPerHost > c.recvBudget:
		return fmt.Errorf("%w: receive budget %d, per host %d", ErrInvalidOption, c.recvBudget, c.recvPerHost)
	case c.recvMinRate < 1:
		return fmt.Errorf("%w: minimum receive rate %d", ErrInvalidOption, c.recvMinRate)
	case c.handlerBudget < 1 || c.handlerPerConn < 1 || c.handlerPerConn > c.handlerBudget:
		return fmt.Errorf("%w: handler budget %d, per connection %d", ErrInvalidOption, c.handlerBudget, c.handlerPerConn)
	case c.sendBudget < 1:
		return fmt.Errorf("%w: send budget %d", ErrInvalidOption, c.sendBudget)
	case c.maxSubs < 1 || c.maxSubBytes < 1 || c.subBudget < 1:
		return fmt.Errorf("%w: subscription bounds %d, %d bytes, %d bytes in all", ErrInvalidOption, c.maxSubs, c.maxSubBytes, c.subBudget)
	case c.greetingTimeout <= 0:
		return fmt.Errorf("%w: greeting timeout %v", ErrInvalidOption, c.greetingTimeout)
	case c.maxHandshakes < 1, c.maxHandshakesPerAddr < 1:
		return fmt.Errorf("%w: handshake limits %d, %d per address", ErrInvalidOption, c.maxHandshakes, c.maxHandshakesPerAddr)
	case c.maxConns < 1, c.maxConnsPerListener < 1, c.maxConnsPerAddr < 1:
		return fmt.Errorf("%w: connection limits %d, %d per listener, %d per address",
			ErrInvalidOption, c.maxConns, c.maxConnsPerListener, c.maxConnsPerAddr)
	}
	return nil
}

type hostOption string

func (o hostOption) apply(c *config) { c.host = string(o) }
func (o hostOption) String() string  { return fmt.Sprintf("WithHost(%q)", string(o)) }

// WithHost sets the host (an IP address or name) both listeners bind to;
// Listen reports "host:port" endpoints on it. Default: "127.0.0.1"
// ([DefaultHost]), so nothing is reachable from another machine unless asked.
func WithHost(host string) Option { return hostOption(host) }

type maxFrameOption int64

func (o maxFrameOption) apply(c *config) { c.maxFrame = int64(o) }
func (o maxFrameOption) String() string  { return fmt.Sprintf("WithMaxFrameSize(%d)", int64(o)) }

// WithMaxFrameSize caps the size of one received ZMTP frame and of the sum
// of the frames of one message, in bytes. A peer announcing more is
// disconnected before anything is allocated for it, and the refusal is counted
// in Stats().RecvDropped. At least 1024. Default: 64 MiB
// ([DefaultMaxFrameSize]).
func WithMaxFrameSize(n int64) Option { return maxFrameOption(n) }

type handshakeOption time.Duration

func (o handshakeOption) apply(c *config) { c.handshakeTimeout = time.Duration(o) }
func (o handshakeOption) String() string {
	return fmt.Sprintf("WithHandshakeTimeout(%v)", time.Duration(o))
}

// WithHandshakeTimeout bounds the TCP connect plus ZMTP handshake of every
// dialled connection, and the handshake of every accepted one: a client that
// connects and stays silent is dropped after d. Default: 2 s
// ([DefaultHandshakeTimeout]).
func WithHandshakeTimeout(d time.Duration) Option { return handshakeOption(d) }

type sendQueueOption int

func (o sendQueueOption) apply(c *config) { c.sendQueue = int(o) }
func (o sendQueueOption) String() string  { return fmt.Sprintf("WithSendQueue(%d)", int(o)) }

// WithSendQueue sets the length, in messages, of each connection's send
// queue. When a subscriber's queue is full, publishes to it are dropped and
// counted in Stats().SendDropped; a full requester queue makes Reply return
// transport.ErrQueueFull. Default: 1<<20 ([DefaultSendQueue]), twice
// what the default byte bound (WithSendQueueBytes) lets in of 64-byte
// messages (about 500,000), so that the byte bound is the one that binds:
// a burst is bounded by its bytes, not by its count.
func WithSendQueue(n int) Option { return sendQueueOption(n) }

type sendQueueBytesOption int

func (o sendQueueBytesOption) apply(c *config) { c.sendQueueBytes = int(o) }
func (o sendQueueBytesOption) String() string  { return fmt.Sprintf("WithSendQueueBytes(%d)", int(o)) }

// WithSendQueueBytes bounds, in bytes, what each connection's send queue
// holds unwritten (messages with their frame headers: a 64-byte colugo
// publish takes about 150), besides WithSendQueue's count of messages:
// past it a subscriber misses publishes (or, with back-pressure, makes
// Publish wait) and Reply returns transport.ErrQueueFull, as when the
// queue is full. One message of any size can always wait. The default
// absorbs a burst of 100,000 messages of 64 bytes, 10,000 of 1 KiB or
// 1,000 of 64 KiB published as fast as Publish returns, whatever the
// subscriber's read speed. Memory: the queue's buffers are kept until the
// batch being written is all written, so a subscriber that reads slowly
// pins at most about twice this, one that stops reading about this much,
// and less in practice, since a payload of 512 bytes or more is held once
// for all the subscribers it is queued for; WithSendBudget bounds all the
// queues together (so the default costs a Raspberry Pi at most 128 MiB
// plus 128 KiB per connection, however many subscribers stall). Default:
// 64 MiB ([DefaultSendQueueBytes]).
func WithSendQueueBytes(n int) Option { return sendQueueBytesOption(n) }

type heartbeatOption time.Duration

func (o heartbeatOption) apply(c *config) { c.heartbeat = time.Duration(o) }
func (o heartbeatOption) String() string {
	return fmt.Sprintf("WithHeartbeatInterval(%v)", time.Duration(o))
}

// WithHeartbeatInterval sets how often a ZMTP PING is sent on every
// connection, so that peers see traffic on idle links. Default: 500 ms
// ([DefaultHeartbeatInterval]).
func WithHeartbeatInterval(d time.Duration) Option { return heartbeatOption(d) }

type peerTimeoutOption time.Duration

func (o peerTimeoutOption) apply(c *config) { c.peerTimeout = time.Duration(o) }
func (o peerTimeoutOption) String() string {
	return fmt.Sprintf("WithPeerTimeout(%v)", time.Duration(o))
}

// WithPeerTimeout sets how long a connection may stay without a single byte
// read before it is closed as lost (requests on it fail with
// transport.ErrPeerLost; Handler.HandlePeerLost is called for outbound ones).
// Loss is detected between d and 1.25·d after the last byte. It must exceed
// the heartbeat interval. Default: 2 s ([DefaultPeerTimeout]).
func WithPeerTimeout(d time.Duration) Option { return peerTimeoutOption(d) }

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) apply(c *config) { c.log = o.l }
func (o loggerOption) String() string  { return "WithLogger(…)" }

// WithLogger sets the logger: Info for listening, lost peers and the start
// of a subscriber connection's drop episode (once, with its address and
// topic, not per missed message), Debug for
// refused connections and dropped frames, Warn for failed accepts and for a
// panic in a handshake (a bug) contained at a connection. Default: a logger that discards
// everything (never slog.Default).
func WithLogger(l *slog.Logger) Option { return loggerOption{l} }

type unixOption bool

func (o unixOption) apply(c *config) { c.unix = bool(o) }
func (o unixOption) String() string  { return fmt.Sprintf("zmq.WithUnixSockets(%v)", bool(o)) }

// WithUnixSockets says whether the transport also listens on two abstract
// Unix domain sockets (Endpoint.LocalRouter, LocalPub), which peers on the
// same host and network namespace use instead of TCP: about half the round
// trip. Default: true on Linux (the only system with abstract sockets).
func WithUnixSockets(on bool) Option { return unixOption(on) }

type recvBudgetOption struct{ all, perHost int64 }

func (o recvBudgetOption) apply(c *config) { c.recvBudget, c.recvPerHost = o.all, o.perHost }
func (o recvBudgetOption) String() string {
	return fmt.Sprintf("WithRecvBudget(%d, %d)", o.all, o.perHost)
}

// WithRecvBudget bounds the bytes of received messages being assembled: at
// most all bytes for the whole transport, and perHost for the connections
// from one remote host (by IP address; local Unix socket peers count as one
// host). A message takes its bytes when its frame headers announce them,
// all at once, before anything is allocated; messages up to 32 KiB (the
// connection's read buffer) take nothing. A connection whose next frame
// does not fit stops reading until bytes are released (TCP then slows its
// sender), so a few peers that announce large messages and never finish
// them cannot make the node allocate without bound; WithRecvMinRate
// bounds how long they hold the bytes. One message of any size is let in
// when nothing else holds bytes. perHost must not exceed all. Defaults:
// 128 MiB ([DefaultRecvBudget]) and 64 MiB ([DefaultRecvBudgetPerHost]),
// so two messages of the default maximum size can arrive at once, from two
// hosts.
func WithRecvBudget(all, perHost int64) Option { return recvBudgetOption{all, perHost} }

type recvMinRateOption int64

func (o recvMinRateOption) apply(c *config) { c.recvMinRate = int64(o) }
func (o recvMinRateOption) String() string  { return fmt.Sprintf("WithRecvMinRate(%d)", int64(o)) }

// WithRecvMinRate sets the slowest rate, in bytes per second, at which a
// message that takes from the receive budget (see WithRecvBudget) may
// arrive: a message of n bytes must be complete within the peer timeout
// plus n/rate after its first frame header, or its connection is closed
// (counted in Stats().RecvDropped) and its budget freed. Default: 1 MiB/s
// ([DefaultRecvMinRate]): a 64 MiB message gets 66 s.
func WithRecvMinRate(bytesPerSecond int64) Option { return recvMinRateOption(bytesPerSecond) }

type handlerBudgetOption struct{ all, perConn int64 }

func (o handlerBudgetOption) apply(c *config) { c.handlerBudget, c.handlerPerConn = o.all, o.perConn }
func (o handlerBudgetOption) String() string {
	return fmt.Sprintf("WithHandlerBudget(%d, %d)", o.all, o.perConn)
}

// WithHandlerBudget bounds the bytes of received requests held by their
// handlers (from delivery until their reply is queued, the request is
// cancelled, its connection closes, or the handler lets go of the
// payload): at most all bytes for the whole transport and perConn for the
// requests of one connection. When a request does not fit, the reader of
// its connection waits before delivering it (and reads nothing meanwhile)
// instead of holding more. A request of any size is let in when its
// connection holds nothing and nothing else does either. perConn must not
// exceed all. Requests under 32 KiB are not counted. Defaults: 128 MiB
// ([DefaultHandlerBudget]) and 64 MiB ([DefaultHandlerBudgetPerConn]).
func WithHandlerBudget(all, perConn int64) Option { return handlerBudgetOption{all, perConn} }

type sendBudgetOption int64

func (o sendBudgetOption) apply(c *config) { c.sendBudget = int64(o) }
func (o sendBudgetOption) String() string  { return fmt.Sprintf("WithSendBudget(%d)", int64(o)) }

// WithSendBudget bounds the bytes waiting in all connections' send queues
// together, besides each queue's WithSendQueueBytes: past it, publishes are
// dropped (counted in Stats().SendDropped) and Reply returns
// transport.ErrQueueFull, except that each connection may still queue up
// to 128 KiB, so that subscribers that keep up are not starved by stalled
// ones holding the budget. A back-pressure subscriber (more than 128 KiB
// behind) waits for the budget as for its own queue, within the same
// deadline, and is demoted like one whose queue stayed full. A payload
// shared by several queues (one publish to several subscribers) counts
// once. So subscribers that never read cost at most this much together
// plus 128 KiB each, however many connect. Default: 128 MiB
// ([DefaultSendBudget]), and with the default connection limits
// (WithMaxConns, 512) at most 192 MiB in all.
func WithSendBudget(n int64) Option { return sendBudgetOption(n) }

type subLimitsOption struct {
	perConn, perConnBytes int
	all                   int64
}

func (o subLimitsOption) apply(c *config) {
	c.maxSubs, c.maxSubBytes, c.subBudget = o.perConn, o.perConnBytes, o.all
}
func (o subLimitsOption) String() string {
	return fmt.Sprintf("WithSubscriptionLimits(%d, %d, %d)", o.perConn, o.perConnBytes, o.all)
}

// WithSubscriptionLimits bounds the subscriptions subscribers hold at this
// transport's publisher: perConn distinct prefixes and perConnBytes bytes of
// prefixes per subscriber connection, and all bytes for all of them
// together, each prefix counting its length plus 64 bytes of bookkeeping.
// A subscription past a bound is dropped, counted in Stats().RecvDropped and
// logged; the connection and its other subscriptions stay (closing it
// would make a colugo subscriber redial and resend the same set for ever).
// A colugo subscriber holds one prefix per topic it subscribes to at that
// publisher, so 1024 is far more than a robot's nodes need, and 1024
// names of up to 192 bytes fit 256 KiB; 65536 (the old bound) cost 26 MiB
// per connection. Defaults: 1024 prefixes
// ([DefaultMaxSubscriptions]), 256 KiB ([DefaultMaxSubscriptionBytes]) and
// 8 MiB ([DefaultSubscriptionBudget]).
func WithSubscriptionLimits(perConn, perConnBytes int, all int64) Option {
	return subLimitsOption{perConn, perConnBytes, all}
}

type greetingOption time.Duration

func (o greetingOption) apply(c *config) { c.greetingTimeout = time.Duration(o) }
func (o greetingOption) String() string {
	return fmt.Sprintf("WithGreetingTimeout(%v)", time.Duration(o))
}

// WithGreetingTimeout bounds how long an accepted connection may take to
// send its 64-byte ZMTP greeting, the first thing a peer sends; one that
// connects and stays silent, or trickles, is dropped after d, and the rest
// of its handshake has the handshake timeout. Dialled connections have the
// handshake timeout only. Default: 500 ms ([DefaultGreetingTimeout]).
func WithGreetingTimeout(d time.Duration) Option { return greetingOption(d) }

type handshakeLimitOption struct{ total, perAddr int }

func (o handshakeLimitOption) apply(c *config) {
	c.maxHandshakes, c.maxHandshakesPerAddr = o.total, o.perAddr
}
func (o handshakeLimitOption) String() string {
	return fmt.Sprintf("WithMaxHandshakes(%d, %d)", o.total, o.perAddr)
}

// WithMaxHandshakes caps the accepted connections in handshake at once: in
// all, and from one remote address (an IP; every Unix-socket peer is the same
// address). A new connection beyond a cap does not wait: it evicts the oldest
// connection in handshake, of its own address if that address is at its
// cap, else of all; the evicted one is closed and counted in
// Stats().ConnsRefused. So silent or slow connections cost a bounded number
// of goroutines and cannot keep new peers out. Both at least 1. Default:
// 256 in all ([DefaultMaxHandshakes]), 64 per address
// ([DefaultMaxHandshakesPerAddr]).
func WithMaxHandshakes(total, perAddr int) Option { return handshakeLimitOption{total, perAddr} }

type connLimitOption struct{ total, perListener, perAddr int }

func (o connLimitOption) apply(c *config) {
	c.maxConns, c.maxConnsPerListener, c.maxConnsPerAddr = o.total, o.perListener, o.perAddr
}
func (o connLimitOption) String() string {
	return fmt.Sprintf("WithMaxConns(%d, %d, %d)", o.total, o.perListener, o.perAddr)
}

// WithMaxConns caps the accepted connections past their handshake: in all,
// on each listener (the TCP and Unix PUB and ROUTER listeners), and from one
// remote address (an IP; every Unix-socket peer is the same address, as is
// every node on this host that connects over TCP from 127.0.0.1). A new
// connection beyond a cap is taken, and one already established within
// that cap's scope is closed to make room (counted in Stats().ConnsRefused,
// logged at Debug): first one that never sent a message (no subscription,
// no request: an idle socket), oldest first, else the one whose last
// message is oldest. So a process holding idle connections cannot lock
// out new peers, even from this host's own address, while peers that use
// their connections keep them. Connections this transport dials are not
// counted. An idle one costs two goroutines
// and about 48 KiB (measured on linux/amd64), most of it its 32 KiB read
// buffer. All at least 1. Default: 512 in all ([DefaultMaxConns]),
// 256 per listener ([DefaultMaxConnsPerListener]) and 256 per address
// ([DefaultMaxConnsPerAddr]): room for over a hundred local nodes, each
// with a subscription and a request connection.
func WithMaxConns(total, perListener, perAddr int) Option {
	return connLimitOption{total, perListener, perAddr}
}

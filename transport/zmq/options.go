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
	DefaultSendQueue         = 1024
	DefaultSendQueueBytes    = 64 << 20
	DefaultHeartbeatInterval = 500 * time.Millisecond
	DefaultPeerTimeout       = 2 * time.Second
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

	greetingTimeout      time.Duration
	maxHandshakes        int
	maxHandshakesPerAddr int
	maxConns             int
	maxConnsPerListener  int
	maxConnsPerAddr      int
	// zmq4Recv reads with zmq4's Conn.RecvMsg instead of recv.go's
	// reader; set by this package's tests and benchmarks only.
	zmq4Recv bool
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
// transport.ErrQueueFull. Default: 1024 ([DefaultSendQueue]).
func WithSendQueue(n int) Option { return sendQueueOption(n) }

type sendQueueBytesOption int

func (o sendQueueBytesOption) apply(c *config) { c.sendQueueBytes = int(o) }
func (o sendQueueBytesOption) String() string  { return fmt.Sprintf("WithSendQueueBytes(%d)", int(o)) }

// WithSendQueueBytes bounds, in bytes, what each connection's send queue
// holds, besides WithSendQueue's count of messages: past it a subscriber
// misses publishes and Reply returns transport.ErrQueueFull, as when the
// queue is full. One message of any size can always wait. A subscriber
// that stops reading costs at most this much memory, and less in practice:
// a large payload is held once for all its subscribers. Default: 64 MiB
// ([DefaultSendQueueBytes]).
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

// WithLogger sets the logger: Info for listening and lost peers, Debug for
// refused connections and dropped frames, Warn for failed accepts and for a
// panic of zmq4 contained at a connection. Default: a logger that discards
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
// connection beyond a cap is refused, counted in Stats().ConnsRefused and
// logged at Debug; established connections are never evicted. Connections
// this transport dials are not counted. An idle one costs two goroutines
// and about 48 KiB (measured on linux/amd64), most of it its 32 KiB read
// buffer. All at least 1. Default: 512 in all ([DefaultMaxConns]),
// 256 per listener ([DefaultMaxConnsPerListener]) and 256 per address
// ([DefaultMaxConnsPerAddr]): room for over a hundred local nodes, each
// with a subscription and a request connection.
func WithMaxConns(total, perListener, perAddr int) Option {
	return connLimitOption{total, perListener, perAddr}
}

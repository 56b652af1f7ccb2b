package transport

import (
	"context"
	"errors"
	"time"
)

// ErrNotUTF8 is a payload refused for seed sockets: the seed stops receiving
// on the first frame that is not valid UTF-8.
var ErrNotUTF8 = errors.New("colugo/transport: payload is not valid UTF-8, which the seed cannot receive")

// SeedTransport is implemented by transports that also speak the frames of
// the Python colugo (the seed): one TCP socket per topic or service, one
// frame per message (the payload alone), and REQ envelopes
// ([id, "", body]) on requests. transport/zmq implements it; a Node in
// seed compatibility mode needs it.
//
// None of it carries a header: no codec, type, sender, sequence or
// deadline crosses. The seed decodes every frame it receives as UTF-8 and
// stops receiving on the first that is not, so what is sent to seed
// sockets must be valid UTF-8: the implementation refuses and counts
// anything else, never sends it.
type SeedTransport interface {
	// SeedPublisher listens for seed subscribers of one topic, on a port
	// of its own.
	SeedPublisher() (SeedPublisher, error)

	// SeedSubscribe connects to the seed publisher at addr (subscribing to
	// everything, as the seed does) and calls deliver with each one-frame
	// message's payload, from one goroutine per connection, in order. It
	// redials after a loss until stop is called; stop waits for deliver
	// to return. Messages of another shape are dropped and counted.
	SeedSubscribe(addr string, deliver func(payload []byte)) (stop func(), err error)

	// SeedServe listens for seed request clients of one service, on a port
	// of its own, and answers each request with h's reply. It always
	// answers, within opts.Budget: a handler that fails, panics or
	// overruns is answered with opts.ErrorReply (a seed client that gets
	// no answer in time is dead until a new server record appears).
	SeedServe(h SeedHandler, opts SeedServeOptions) (SeedServer, error)

	// SeedRequest sends payload to the seed reply server at addr and waits
	// for its reply, until ctx ends. Requests to one server share one
	// connection and are correlated by the id the server echoes; the seed
	// has no deadline or cancel on the wire, so a late reply is dropped.
	// A server that never answers delays only its own callers.
	SeedRequest(ctx context.Context, addr string, payload []byte) ([]byte, error)

	// SeedDisconnect closes the connection to the seed reply server at
	// addr, if any, failing its pending requests with ErrPeerLost: its
	// record went away.
	SeedDisconnect(addr string)
}

// SeedPublisher sends to the seed subscribers of one topic.
type SeedPublisher interface {
	// Port is the port it listens on.
	Port() int
	// Publish sends payload as one frame to every connected subscriber
	// with room; sent says how many were sent it and dropped how many
	// missed it. Payloads that are not valid UTF-8 are refused
	// (ErrNotUTF8) and counted.
	Publish(payload []byte) (sent, dropped int, err error)
	// Subscribers is the number of connected seed subscribers.
	Subscribers() int
	// Close stops listening and closes its connections.
	Close() error
}

// SeedServer is a seed-style reply server of one service.
type SeedServer interface {
	// Port is the port it listens on.
	Port() int
	// Close stops listening, answers what is in flight with the error
	// reply and closes its connections.
	Close() error
}

// SeedHandler answers one seed request. ctx ends when the budget does.
type SeedHandler func(ctx context.Context, payload []byte) ([]byte, error)

// SeedServeOptions configures SeedServe.
type SeedServeOptions struct {
	// Budget bounds how long a request may take before it is answered
	// with ErrorReply; zero means 1.5 s, below the seed client's 2 s.
	Budget time.Duration
	// ErrorReply is the payload sent when the handler fails or overruns
	// (default: empty). It must be valid UTF-8.
	ErrorReply []byte
	// MaxInFlight and MaxInFlightPerConn bound the requests being
	// handled at once, by the server and on one connection: a request
	// over either bound is answered at once with ErrorReply (and counted
	// in Stats.SeedOverload), so a flood costs bounded memory and still
	// gets answers. A seed client has one request in flight per
	// connection, or a few with REQ_RELAXED. Zero means 256 and 16.
	MaxInFlight, MaxInFlightPerConn int
}

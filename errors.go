package colugo

import (
	"context"
	"errors"
	"fmt"

	"github.com/colugo-go/colugo/transport"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrClosed is returned by every operation on a closed Node, Publisher or
	// Server, and by requests still in flight when their Node closes.
	ErrClosed = transport.ErrClosed
	// ErrPeerLost is returned by a request whose replier vanished (closed,
	// crashed, unreachable, or silent past the heartbeat timeout) before it
	// answered.
	ErrPeerLost = transport.ErrPeerLost
	// ErrNoResponders is returned by a request when no node serves the
	// service: at once with [WithFailFast], else when the deadline passes
	// with none found (then wrapped together with context.DeadlineExceeded).
	ErrNoResponders = errors.New("colugo: no responders")
	// ErrSlowConsumer is reported to the error handler when a subscription
	// (or a Node.Events channel) starts dropping messages because its reader
	// does not keep up, and on a publishing node when a subscriber
	// connection starts missing a topic's messages (its send queue is
	// full); once per episode, not once per drop. A subscription's episode
	// ends at a delivery that drops nothing, a publisher's at a publish
	// that no connection missed.
	ErrSlowConsumer = errors.New("colugo: slow consumer")
	// ErrCodecMismatch is reported when a message's codec (or, for codecs
	// with strict type names such as protobuf, its type) differs from the
	// receiver's. The message is dropped and counted.
	ErrCodecMismatch = errors.New("colugo: codec mismatch")
	// ErrInvalidOption is returned by constructors given an invalid option,
	// name or environment setting.
	ErrInvalidOption = errors.New("colugo: invalid option")
	// ErrNoValue is returned by Latest when every publisher of the topic
	// it asked answered that it keeps no message of it.
	ErrNoValue = errors.New("colugo: no value")
	// ErrNoHistory is reported to the error handler, once per subscription
	// and publisher, when a subscription asked for history (WithHistory,
	// WithLastValue) from a publisher that keeps none: the subscription
	// gets that publisher's live messages only. Tools show it (colugo
	// doctor).
	ErrNoHistory = errors.New("colugo: publisher keeps no history")
)

// DecodeError reports a payload that could not be decoded into the
// receiver's type, or whose codec or type did not match. It unwraps to the
// codec's error or to ErrCodecMismatch.
type DecodeError struct {
	Topic  string // topic or service name
	Codec  string // the codec name the message carried
	Type   string // the type name the message carried
	Sender string // the sending node's id
	Err    error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("colugo: decoding %q from %s (codec %s, type %s): %v", e.Topic, e.Sender, e.Codec, e.Type, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Code classifies a failure that crossed the wire from a replier.
type Code uint8

// Error codes carried in reply headers.
const (
	// CodeUnknown: the handler returned an error without a code.
	CodeUnknown Code = 1 + iota
	// CodeNotFound: the handler reports that what was asked for does not
	// exist. colugo never sends it itself; it is the application's, and it
	// does not match ErrNoResponders (see CodeNotServed).
	CodeNotFound
	// CodeInvalidArgument: the request payload did not decode.
	CodeInvalidArgument
	// CodeDeadlineExceeded: the handler's context expired.
	CodeDeadlineExceeded
	// CodeInternal: the handler panicked (recovered with WithRecover).
	CodeInternal
	// CodeUnavailable: the node is closing or has too many requests in
	// flight.
	CodeUnavailable
	// CodeCodecMismatch: the request's codec or type differs from the
	// server's.
	CodeCodecMismatch
	// CodeNotServed: the node does not serve the service (it stopped
	// between discovery and the request). Only colugo sends it; it matches
	// ErrNoResponders. A handler's Errorf(CodeNotServed, ...) arrives as
	// CodeUnknown, so that an application cannot pass for "nobody serves
	// this".
	CodeNotServed
)

var codeNames = [...]string{"ok", "unknown", "not_found", "invalid_argument", "deadline_exceeded", "internal", "unavailable", "codec_mismatch", "not_served"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

// RemoteError is a failure reported by the replier: the handler returned an
// error, panicked, or the request could not be served there.
type RemoteError struct {
	Service string
	Code    Code
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("colugo: %s: remote %s: %s", e.Service, e.Code, e.Message)
}

// Unwrap lets errors.Is match the sentinels that codes stand for:
// ErrCodecMismatch, ErrNoResponders for CodeNotServed (not for the
// application's CodeNotFound), and
// context.DeadlineExceeded, since the handler's deadline is the caller's.
func (e *RemoteError) Unwrap() error {
	switch e.Code {
	case CodeCodecMismatch:
		return ErrCodecMismatch
	case CodeNotServed:
		return ErrNoResponders
	case CodeDeadlineExceeded:
		return context.DeadlineExceeded
	}
	return nil
}

// CodedError lets a handler choose the code its caller sees. Return
// colugo.Errorf(code, ...) from a handler; other errors arrive as
// CodeUnknown.
type CodedError struct {
	Code Code
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// Errorf returns an error that a handler can return so that its caller's
// RemoteError carries code.
func Errorf(code Code, format string, args ...any) error {
	return &CodedError{Code: code, Err: fmt.Errorf(format, args...)}
}

// CodeOf returns the code of a RemoteError or CodedError in err's chain,
// or 0 when there is none.
func CodeOf(err error) Code {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	var ce *CodedError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// ErrUnauthenticated is returned by a request whose reply failed
// authentication (a node without the key, or a forged reply).
var ErrUnauthenticated = errors.New("colugo: message failed authentication")

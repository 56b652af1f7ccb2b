package colugo

// Per-message metadata (issue 13, item 8).
//
// Design. Metadata travels in the header's extension block (package
// transport/wire: FlagExt and a list of typed entries after the version 1
// fields), one wire.ExtMetadata entry per key. The typed API does not
// change: like gRPC, metadata rides on the context.
//
//   - Outgoing: WithMetadata(ctx, md) encodes md once, checking its
//     bounds; Publish, Request and RequestAll called with that ctx send it
//     (and fail with ErrInvalidMetadata, before sending anything, when md
//     is out of bounds). A ctx without metadata costs a ctx.Value lookup
//     and no allocation.
//   - Incoming: a handler reads IncomingMetadata(ctx); a subscriber reads
//     Received[T].Metadata. Incoming metadata is not outgoing metadata:
//     a handler that passes its ctx to another Request sends nothing
//     unless it calls WithMetadata (tracing propagates on its own).
//   - Same node: local delivery and local requests carry the same
//     metadata, without a transport.
//   - Peers that do not decode extensions (older colugo nodes, foreign
//     ZMTP peers) get the message without its metadata, counted in the
//     transport's Stats().ExtStripped: delivered, metadata lost.
//   - With a network key, the extension block is authenticated: the
//     sender appends a wire.ExtSealMAC entry, a seal of nothing over the
//     message's additional data, the entries before it and the payload's
//     tag; a receiver refuses (ErrUnauthenticated, counted) a message
//     whose entries are altered, forged or moved to another message. The
//     payload's own seal still covers the version 1 header only, so that
//     a node that gets the message without extensions opens it. What a
//     key cannot stop: an attacker on the path removing the whole block
//     (the message then arrives as from an older node, without metadata).

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/colugo-go/colugo/transport/wire"
)

// Metadata is a message's per-message metadata: a small set of string
// pairs, such as a trace context. Keys are 1 to MaxMetadataKey bytes of
// lowercase ASCII letters, digits, '-', '_' and '.'; values are UTF-8, at
// most MaxMetadataValue bytes; at most MaxMetadataEntries pairs, and at
// most MaxMetadataBytes of keys and values in all.
type Metadata map[string]string

// Bounds on Metadata, checked by WithMetadata's users (Publish, Request,
// RequestAll): beyond them, they return an error wrapping
// ErrInvalidMetadata and send nothing.
const (
	MaxMetadataEntries = wire.MaxMetadata    // 16
	MaxMetadataKey     = wire.MaxMetaKey     // 64 bytes
	MaxMetadataValue   = wire.MaxMetaValue   // 1024 bytes
	MaxMetadataBytes   = 3 * wire.MaxExt / 4 // 3072 bytes of keys and values
)

// ErrInvalidMetadata is wrapped by the error of a Publish or Request whose
// context holds metadata out of Metadata's bounds.
var ErrInvalidMetadata = errors.New("colugo: invalid metadata")

type outgoingKey struct{}

// outgoing is metadata as WithMetadata encoded it: ext, the extension
// block, or err.
type outgoing struct {
	ext string
	err error
}

// WithMetadata returns a copy of ctx that carries md: a Publish, Request
// or RequestAll made with it sends md with its message. It replaces any
// metadata set on ctx before. md is encoded (and checked) at once: later
// changes to md have no effect.
func WithMetadata(ctx context.Context, md Metadata) context.Context {
	ext, err := encodeMetadata(md)
	return context.WithValue(ctx, outgoingKey{}, &outgoing{ext: ext, err: err})
}

// outgoingExt returns the extension block for the metadata on ctx: "" when
// there is none.
func outgoingExt(ctx context.Context) (string, error) {
	o, _ := ctx.Value(outgoingKey{}).(*outgoing)
	if o == nil {
		return "", nil
	}
	return o.ext, o.err
}

type incomingKey struct{}

// IncomingMetadata returns the metadata of the request a handler is
// serving, from the handler's ctx; nil when the request had none or ctx
// is not a handler's. The map is the caller's.
func IncomingMetadata(ctx context.Context) Metadata {
	ext, _ := ctx.Value(incomingKey{}).(string)
	return decodeMetadata(ext)
}

// encodeMetadata checks md and returns its extension block.
func encodeMetadata(md Metadata) (string, error) {
	if len(md) == 0 {
		return "", nil
	}
	if len(md) > MaxMetadataEntries {
		return "", fmt.Errorf("%w: %d entries, at most %d", ErrInvalidMetadata, len(md), MaxMetadataEntries)
	}
	total := 0
	var b []byte
	for k, v := range md {
		if err := checkMetadataKey(k); err != nil {
			return "", err
		}
		if len(v) > MaxMetadataValue {
			return "", fmt.Errorf("%w: value of %q is %d bytes, at most %d", ErrInvalidMetadata, k, len(v), MaxMetadataValue)
		}
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("%w: value of %q is not UTF-8", ErrInvalidMetadata, k)
		}
		total += len(k) + len(v)
		b = wire.AppendMetadataEntry(b, k, v)
	}
	if total > MaxMetadataBytes {
		return "", fmt.Errorf("%w: %d bytes of keys and values, at most %d", ErrInvalidMetadata, total, MaxMetadataBytes)
	}
	return string(b), nil
}

func checkMetadataKey(k string) error {
	if len(k) == 0 || len(k) > MaxMetadataKey {
		return fmt.Errorf("%w: key %q: 1 to %d bytes", ErrInvalidMetadata, k, MaxMetadataKey)
	}
	for i := range len(k) {
		switch c := k[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("%w: key %q: only a-z, 0-9, '-', '_' and '.'", ErrInvalidMetadata, k)
		}
	}
	return nil
}

// decodeMetadata returns the metadata entries of an extension block,
// skipping the entries of other types; nil for none. A receiver takes
// what it gets (within wire.MaxExt): the bounds are the sender's.
func decodeMetadata(ext string) Metadata {
	var md Metadata
	for rest := ext; rest != ""; {
		typ, v, r, ok := wire.NextExt(rest)
		if !ok {
			break
		}
		rest = r
		if typ != wire.ExtMetadata {
			continue // a future extension, or a seal's MAC
		}
		k, val, ok := wire.MetadataEntry(v)
		if !ok {
			continue
		}
		if md == nil {
			md = make(Metadata, 4)
		}
		md[k] = val
	}
	return md
}

// incomingCtx is a local request's handler context when the caller sent
// metadata: the handler sees it as incoming, and not as its own outgoing
// metadata.
type incomingCtx struct {
	context.Context
	ext string
}

func (c *incomingCtx) Value(key any) any {
	switch key.(type) {
	case incomingKey:
		return c.ext
	case outgoingKey:
		return (*outgoing)(nil)
	}
	return c.Context.Value(key)
}

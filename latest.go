package colugo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/transport/wire"
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
	var none Received[T]
	if err := wire.CheckName(topic); err != nil {
		return none, fmt.Errorf("%w: topic: %w", ErrInvalidOption, err)
	}
	cfg := subConfig{topicConfig: topicConfig{codec: node.cfg.codec}}
	for _, o := range opts {
		if o != nil {
			o.applySubscribe(&cfg)
		}
	}
	c := cfg.codec
	if cfg.anyCodec {
		if _, ok := any(new(T)).(*[]byte); !ok {
			return none, fmt.Errorf("%w: WithAnyCodec needs T = []byte", ErrInvalidOption)
		}
		c = codec.Raw{}
	}
	if c == nil {
		return none, fmt.Errorf("%w: nil codec", ErrInvalidOption)
	}
	targets, err := node.waitPublishers(ctx, topic)
	if err != nil {
		return none, err
	}
	type answer struct {
		r   wire.HistoryReply
		err error
	}
	answers := make(chan answer, len(targets))
	for _, t := range targets {
		go func() {
			r, err := node.fetchHistory(ctx, t.router, t.id, topic, 1, 0)
			answers <- answer{r, err}
		}()
	}
	var best *wire.HistoryEntry
	var failed []error
	for range targets {
		a := <-answers
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		for i := range a.r.Entries {
			if e := &a.r.Entries[i]; best == nil || newer(&e.Header, &best.Header) {
				best = e
			}
		}
	}
	if err := ctx.Err(); err != nil && best == nil {
		return none, err
	}
	if best == nil {
		if len(failed) > 0 {
			return none, fmt.Errorf("%w on %q: %d of %d publishers did not answer: %w", ErrNoValue, topic, len(failed), len(targets), errors.Join(failed...))
		}
		return none, fmt.Errorf("%w on %q: none of its %d publishers keeps one", ErrNoValue, topic, len(targets))
	}
	h := &best.Header
	_, strict := c.(codec.TypeNamer)
	if !cfg.anyCodec && (h.Codec != c.Name() || (strict && h.Type != typeName[T](c))) {
		return none, &DecodeError{Topic: topic, Codec: h.Codec, Type: h.Type, Sender: h.Sender,
			Err: fmt.Errorf("%w: expected codec %s, type %s", ErrCodecMismatch, c.Name(), typeName[T](c))}
	}
	var v T
	if err := c.Unmarshal(best.Payload, &v); err != nil {
		return none, &DecodeError{Topic: topic, Codec: h.Codec, Type: h.Type, Sender: h.Sender, Err: err}
	}
	return Received[T]{Value: v, Codec: h.Codec, Type: h.Type, Sender: h.Sender, Seq: h.Seq,
		SendTime: time.Unix(0, h.SendTime), RecvTime: time.Now(), Metadata: decodeMetadata(h.Ext), Replayed: true}, nil
}

// newer reports whether a is newer than b by Latest's order: send time,
// then sender id.
func newer(a, b *wire.Header) bool {
	if a.SendTime != b.SendTime {
		return a.SendTime > b.SendTime
	}
	return a.Sender > b.Sender
}

// historyTarget is a publisher to ask for history.
type historyTarget struct{ id, router string }

// waitPublishers returns the publishers of topic this node knows, waiting
// for the first to be known.
func (n *Node) waitPublishers(ctx context.Context, topic string) ([]historyTarget, error) {
	for {
		n.mu.Lock()
		var ts []historyTarget
		if n.pubs[topic] != nil {
			ts = append(ts, historyTarget{id: n.id})
		}
		for _, p := range n.peers {
			if !p.visible() || slices.ContainsFunc(ts, func(t historyTarget) bool { return t.id == p.desc.ID }) {
				continue
			}
			if slices.ContainsFunc(p.desc.Topics, func(t TopicInfo) bool { return t.Name == topic }) {
				ts = append(ts, historyTarget{id: p.desc.ID, router: p.dialRouter})
			}
		}
		changed := n.changed
		n.mu.Unlock()
		if len(ts) > 0 {
			return ts, nil
		}
		tick := time.NewTimer(20 * time.Millisecond) // a publisher of this node's own does not close changed
		select {
		case <-tick.C:
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.ctx.Done():
			tick.Stop()
			return nil, ErrClosed
		}
		tick.Stop()
	}
}

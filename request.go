package colugo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// target is where a request goes: a peer's router, or this node.
type target struct {
	router string // "" for this node
	local  *serviceCore
	seed   string    // a seed reply server's address (WithSeedCompat); router is ""
	info   *PeerInfo // who serves there
}

// Request sends req to one node serving the service name and waits for its
// reply. It blocks until the reply arrives or ctx ends; a ctx without a
// deadline gets the node's default (WithDefaultTimeout, 5s). The remaining
// time travels with the request, so the handler's ctx expires with the
// caller's, and giving up cancels the handler.
//
// With several servers, requests go round robin over them. With none known,
// Request waits within its deadline for one to be discovered, unless
// WithFailFast. A request is sent at most once. Errors: ctx's error,
// ErrNoResponders (with the ctx error when it waited), ErrPeerLost (the
// server vanished first), *RemoteError (the handler failed), *DecodeError
// (the reply did not decode, or ErrCodecMismatch), ErrClosed, or the
// codec's marshal error. Request keeps nothing of req once it returns.
func Request[Req, Resp any](ctx context.Context, node *Node, name string, req Req, opts ...RequestOption) (Resp, error) {
	if tr := node.cfg.tracer; tr != nil {
		ctx, end := tr.Start(ctx, SpanRequest, name, nil)
		resp, err := request[Req, Resp](ctx, node, name, req, opts)
		end(err)
		return resp, err
	}
	return request[Req, Resp](ctx, node, name, req, opts)
}

func request[Req, Resp any](ctx context.Context, node *Node, name string, req Req, opts []RequestOption) (Resp, error) {
	var zero Resp
	ctx, cancel, o, err := prepareRequest(ctx, node, name, req, opts)
	if err != nil {
		return zero, err
	}
	defer cancel()
	counters := node.svcCounter(name)
	counters.requests.Add(1)
	out, codecName, replyType, owned, err := node.request(ctx, name, o.codec.Name(), o.typ, o.payload, o.failFast)
	if err == nil {
		var resp Resp
		if resp, err = decodeReply[Resp](o.codec, name, codecName, replyType, out, owned); err == nil {
			return resp, nil
		}
	}
	counters.failed.Add(1)
	return zero, err
}

// preparedRequest is a request ready to send: what prepareRequest made of it.
type preparedRequest struct {
	codec    codec.Codec
	typ      string // the request's type name
	payload  []byte
	failFast bool
}

// prepareRequest is what Request and RequestAll do first: apply the
// options, refuse a closed node, bound ctx by the node's default timeout
// when it has no deadline (the caller defers cancel), and encode req.
func prepareRequest[Req any](ctx context.Context, node *Node, name string, req Req, opts []RequestOption) (context.Context, context.CancelFunc, preparedRequest, error) {
	cfg := requestConfig{topicConfig: topicConfig{codec: node.cfg.codec}}
	for _, o := range opts {
		if o != nil {
			cfg = o.applyRequest(cfg)
		}
	}
	if cfg.codec == nil {
		return ctx, nil, preparedRequest{}, fmt.Errorf("%w: nil codec", ErrInvalidOption)
	}
	if node.closed.Load() {
		return ctx, nil, preparedRequest{}, ErrClosed
	}
	payload, err := marshal(cfg.codec, req)
	if err != nil {
		return ctx, nil, preparedRequest{}, fmt.Errorf("colugo: encoding request for %q: %w", name, err)
	}
	cancel := context.CancelFunc(noCancel)
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, node.cfg.defaultTimeout)
	}
	return ctx, cancel, preparedRequest{codec: cfg.codec, typ: typeName[Req](cfg.codec), payload: payload, failFast: cfg.failFast}, nil
}

func noCancel() {}

// request is the untyped core of Request: it picks a server and returns
// the reply payload, its codec and type names and whether the payload is
// the caller's to keep (see send).
func (n *Node) request(ctx context.Context, name, codecName, typ string, payload []byte, failFast bool) ([]byte, string, string, bool, error) {
	if _, err := outgoingExt(ctx); err != nil {
		return nil, "", "", false, err
	}
	t, err := n.pickTarget(ctx, name, failFast)
	if err != nil {
		return nil, "", "", false, err
	}
	return n.send(ctx, t, name, codecName, typ, payload)
}

// rawName is codec.Raw's name: its payloads alias the caller's bytes.
var rawName = codec.Raw{}.Name()

// reqPool holds request Messages: transports do not keep them.
var reqPool = sync.Pool{New: func() any { return new(transport.Message) }}

// send makes one request to target t. owned says that nothing else
// references the reply payload (it came off a connection), so decoding may
// keep it.
func (n *Node) send(ctx context.Context, t target, name, codecName, typ string, payload []byte) (out []byte, replyCodec, replyType string, owned bool, err error) {
	ext, err := outgoingExt(ctx)
	if err != nil {
		return nil, "", "", false, err
	}
	if t.local != nil {
		out, err = n.requestLocal(ctx, t.local, name, codecName, typ, payload, ext)
		return out, t.local.info.Codec, t.local.info.ReplyType, false, err // the handler's bytes
	}
	if t.seed != "" {
		return n.sendSeed(ctx, t.seed, codecName, payload)
	}
	dl, _ := ctx.Deadline()
	seq := n.reqSeq.Add(1)
	req := reqPool.Get().(*transport.Message) // the transport does not keep it
	*req = transport.Message{Name: name, Header: wire.Header{
		Kind: transport.KindRequest, Codec: codecName, Type: typ, Sender: n.id, Seq: seq,
		SendTime: n.sendClock(), Deadline: max(int64(time.Until(dl)), 1), Ext: ext,
	}, Payload: payload, Exclusive: codecName != rawName} // Raw's bytes are the caller's
	n.sealMsg(req, binding{peer: t.info.ID}) // valid at that node only, in this incarnation
	rep, err := n.tr.Request(ctx, t.router, req)
	*req = transport.Message{}
	reqPool.Put(req)
	if err != nil {
		if errors.Is(err, ErrPeerLost) {
			n.markDown(t.router)
		}
		return nil, "", "", false, err
	}
	if err = n.openMsg(rep, binding{peer: n.id, seq: seq}); err != nil { // the reply to this request only
		return nil, "", "", false, err
	}
	if rep.Header.Status != 0 {
		return nil, "", "", false, &RemoteError{Service: name, Code: Code(rep.Header.Status), Message: rep.Header.Error}
	}
	return rep.Payload, rep.Header.Codec, rep.Header.Type, rep.Exclusive, nil
}

// requestLocal serves a request for a service on this same node, with the
// same semantics as a remote one: its own goroutine, the caller's deadline,
// codec checks.
func (n *Node) requestLocal(ctx context.Context, svc *serviceCore, name, codecName, typ string, payload []byte, ext string) ([]byte, error) {
	if codecName != svc.info.Codec || (svc.strict && typ != svc.info.Type) {
		svc.c.decodeErrors.Add(1)
		return nil, &RemoteError{Service: name, Code: CodeCodecMismatch,
			Message: fmt.Sprintf("server expects codec %s, type %s", svc.info.Codec, svc.info.Type)}
	}
	type result struct {
		out  []byte
		code Code
		msg  string
	}
	done := make(chan result, 1)
	// The handler may outlive this call (ctx ends first), and the caller may
	// then reuse what it sent (codec.Raw aliases it): the handler gets a copy.
	payload = bytes.Clone(payload)
	var hctx context.Context = ctx
	if ext != "" || ctx.Value(incomingKey{}) != nil { // a handler's ctx: its incoming metadata is not the new request's
		hctx = &incomingCtx{Context: ctx, ext: ext}
	}
	hctx, cancel := context.WithCancel(hctx)
	stop := context.AfterFunc(n.ctx, cancel) // Close cancels local handlers too
	n.handlers.Add(1)
	n.mu.Lock()
	started := n.goLocked(func() {
		defer n.handlerDone()
		defer cancel()
		defer stop()
		out, code, msg := n.run(hctx, svc, payload, true) // our copy
		done <- result{out, code, msg}
	})
	n.mu.Unlock()
	if !started {
		n.handlerDone()
		stop()
		cancel()
		return nil, ErrClosed
	}
	select {
	case r := <-done:
		if r.code != 0 {
			return nil, &RemoteError{Service: name, Code: r.code, Message: r.msg}
		}
		return r.out, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.ctx.Done():
		return nil, ErrClosed
	}
}

// Reply is one server's answer to RequestAll.
type Reply[Resp any] struct {
	From  PeerInfo // the server's node (name, id, addresses)
	Value Resp
	Err   error // as Request would return it for this server
}

// RequestAll sends req to every node serving name (this one included) at
// once and waits for all their replies, or for ctx to end (then the
// servers that did not answer have ctx's error). Like Request, it waits
// within ctx for at least one server to be known unless WithFailFast, and
// returns ErrNoResponders when none is; it asks the servers known then, so
// call [Node.WaitServers] first to be sure of reaching n of them. The
// replies come in no particular order. Each server gets the request at
// most once.
func RequestAll[Req, Resp any](ctx context.Context, node *Node, name string, req Req, opts ...RequestOption) ([]Reply[Resp], error) {
	if tr := node.cfg.tracer; tr != nil {
		ctx, end := tr.Start(ctx, SpanRequest, name, nil)
		replies, err := requestAll[Req, Resp](ctx, node, name, req, opts)
		end(err)
		return replies, err
	}
	return requestAll[Req, Resp](ctx, node, name, req, opts)
}

func requestAll[Req, Resp any](ctx context.Context, node *Node, name string, req Req, opts []RequestOption) ([]Reply[Resp], error) {
	ctx, cancel, o, err := prepareRequest(ctx, node, name, req, opts)
	if err != nil {
		return nil, err
	}
	defer cancel()
	c, payload := o.codec, o.payload
	if _, err := node.pickTarget(ctx, name, o.failFast); err != nil { // waits for a first server
		return nil, err
	}
	node.mu.Lock()
	ts := node.targetsLocked(name)
	node.mu.Unlock()
	if len(ts) == 0 {
		return nil, fmt.Errorf("%w: for %q", ErrNoResponders, name)
	}
	counters := node.svcCounter(name)
	typ := o.typ
	replies := make([]Reply[Resp], len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Go(func() { // each ends with its request, bounded by ctx
			counters.requests.Add(1)
			r := &replies[i]
			r.From = *t.info
			out, codecName, replyType, owned, err := node.send(ctx, t, name, c.Name(), typ, payload)
			if err == nil {
				r.Value, err = decodeReply[Resp](c, name, codecName, replyType, out, owned)
			}
			if err != nil {
				counters.failed.Add(1)
				r.Err = err
			}
		})
	}
	wg.Wait()
	return replies, nil
}

// decodeReply decodes a reply payload into Resp. Like topics and requests,
// a reply must carry the caller's codec and, for codecs whose type names
// are an identity (protobuf), the caller's type name: a reply with no type
// name (a server from before replies carried one, or a foreign one) is
// refused there too, since nothing says that its bytes are a Resp. For
// other codecs the type name is not checked, nor for a []byte Resp, which
// takes the bytes as sent whatever their type (tools such as colugo call,
// whose codec.Passthrough codec names the request's type, decode them
// with the server's advertised reply type).
func decodeReply[Resp any](c codec.Codec, name, codecName, typ string, out []byte, owned bool) (Resp, error) {
	if codecName != c.Name() {
		var zero Resp
		return zero, &DecodeError{Topic: name, Codec: codecName, Type: typ, Err: fmt.Errorf("%w: reply codec %s, request codec %s", ErrCodecMismatch, codecName, c.Name())}
	}
	if _, strict := c.(codec.TypeNamer); strict && !isBytes[Resp]() && typ != seedReplyType {
		if want := typeName[Resp](c); typ != want {
			var zero Resp
			return zero, &DecodeError{Topic: name, Codec: codecName, Type: typ, Err: fmt.Errorf("%w: reply type %q, caller expects %s", ErrCodecMismatch, typ, want)}
		}
	}
	if resp, ok := rawValue[Resp](c, out, owned); ok {
		return resp, nil
	}
	resp, err := decode[Resp](c, out)
	if err != nil {
		return resp, &DecodeError{Topic: name, Codec: codecName, Type: typ, Err: err}
	}
	return resp, nil
}

// isBytes reports whether T is []byte.
func isBytes[T any]() bool {
	var zero T
	_, ok := any(zero).([]byte)
	return ok
}

// WaitServers blocks until at least want servers of service are known and
// reachable: those a Request or RequestAll would use now, that is this
// node's own Server of it, if any, and every peer that has answered
// $describe listing service and to which no request has since failed for
// want of a connection. It is the twin of [Publisher.WaitSubscribers]:
// call it before RequestAll to reach want servers, or in tests. It checks
// whenever the peer catalog changes. It returns nil, ctx's error, or
// ErrClosed when the node closes. Safe for concurrent use.
func (n *Node) WaitServers(ctx context.Context, service string, want int) error {
	return n.waitUntil(ctx, 0, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		ts, ok := n.targets[service]
		if !ok {
			ts = n.targetsLocked(service)
			n.targets[service] = ts
		}
		return len(ts) >= want
	})
}

// pickTarget chooses the next server of name round robin, waiting within
// ctx for one to appear unless failFast.
func (n *Node) pickTarget(ctx context.Context, name string, failFast bool) (target, error) {
	for {
		if n.closed.Load() {
			return target{}, ErrClosed
		}
		if m := n.rotations.Load(); m != nil {
			if r := (*m)[name]; r != nil {
				return r.next(), nil
			}
		}
		n.mu.Lock()
		if n.closed.Load() {
			n.mu.Unlock()
			return target{}, ErrClosed
		}
		ts, ok := n.targets[name]
		if !ok {
			ts = n.targetsLocked(name)
			n.targets[name] = ts
		}
		if len(ts) > 0 {
			r := n.rotationLocked(name, ts)
			n.mu.Unlock()
			return r.next(), nil
		}
		changed := n.changed
		n.mu.Unlock()
		if failFast {
			return target{}, fmt.Errorf("%w: for %q", ErrNoResponders, name)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return target{}, fmt.Errorf("%w: for %q: %w", ErrNoResponders, name, ctx.Err())
		case <-n.ctx.Done():
			return target{}, ErrClosed
		}
	}
}

// rotation is the servers of one service and its round-robin position,
// for requests to pick from without a lock.
type rotation struct {
	ts  []target // at least one
	pos *atomic.Uint64
}

func (r *rotation) next() target {
	i := r.pos.Add(1) - 1
	return r.ts[i%uint64(len(r.ts))]
}

// rotationLocked adds name's servers ts to the rotations (copy on write:
// a node serves and calls a handful of services).
func (n *Node) rotationLocked(name string, ts []target) *rotation {
	pos := n.rr[name]
	if pos == nil {
		pos = new(atomic.Uint64)
		n.rr[name] = pos // kept across catalog changes, so the rotation stays fair
	}
	r := &rotation{ts: ts, pos: pos}
	m := make(map[string]*rotation)
	if old := n.rotations.Load(); old != nil {
		maps.Copy(m, *old)
	}
	m[name] = r
	n.rotations.Store(&m)
	return r
}

// clearTargetsLocked forgets every service's servers, after a change of
// peers or services.
func (n *Node) clearTargetsLocked() {
	clear(n.targets)
	n.rotations.Store(nil)
}

// targetsLocked lists the servers of name: this node first, then peers by
// router address, a stable order that makes the rotation fair.
func (n *Node) targetsLocked(name string) []target {
	var ts []target
	if s := n.services[name]; s != nil {
		self := PeerInfo{ID: n.id, Name: n.name, Version: Version, Router: n.ep.Router, Pub: n.ep.Pub}
		ts = append(ts, target{local: s, info: &self})
	}
	var remote []target
	for _, p := range n.peers {
		if !p.visible() || p.down {
			continue
		}
		if slices.ContainsFunc(p.desc.Services, func(s TopicInfo) bool { return s.Name == name }) {
			remote = append(remote, target{router: p.dialRouter, info: p.desc})
		}
	}
	slices.SortFunc(remote, func(a, b target) int { return strings.Compare(a.router, b.router) })
	ts = append(ts, remote...)
	if n.seed != nil {
		ts = append(ts, n.seed.seedTargets(name)...)
	}
	return ts
}

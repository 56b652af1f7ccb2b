package colugo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// inflightKey names a running handler by the connection its request came
// on and the request id, which is unique only per connection: so a cancel
// is taken only from that connection (the transport sends cancels
// unsealed, and another peer could claim the sender id).
type inflightKey struct {
	rw transport.ReplyWriter // comparable in both transports: one value per connection
	id uint64
}

// Server serves one service on a node; see Serve.
type Server struct {
	node *Node
	core *serviceCore
	seed *seedServer // SeedVisible; nil without
}

// serviceCore is the untyped half of a served service.
type serviceCore struct {
	info   TopicInfo
	strict bool
	c      *counters
	// call decodes the request, runs the handler and encodes its result.
	// owned says that nothing else references payload (see rawValue).
	call func(ctx context.Context, payload []byte, owned bool) ([]byte, error)
}

// Serve makes node answer requests for the service name with handler. The
// handler runs in its own goroutine per request, owned by the node; its ctx
// carries the caller's remaining deadline and is cancelled when the caller
// gives up or the node closes. An error returned by the handler reaches the
// caller as a *RemoteError (CodeUnknown, or the code of an error made with
// Errorf). A panic crashes the program unless the node has WithRecover.
// One node serves a name once; several nodes may serve the same name, and
// callers then spread their requests over them.
func Serve[Req, Resp any](node *Node, name string, handler func(context.Context, Req) (Resp, error), opts ...ServeOption) (*Server, error) {
	if err := wire.CheckName(name); err != nil || name[0] == '$' {
		return nil, fmt.Errorf("%w: service name %q: must be 1-255 bytes of UTF-8, no NUL, not starting with $", ErrInvalidOption, name)
	}
	if handler == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	cfg := topicConfig{codec: node.cfg.codec}
	for _, o := range opts {
		if o != nil {
			o.applyServe(&cfg)
		}
	}
	if cfg.codec == nil {
		return nil, fmt.Errorf("%w: nil codec", ErrInvalidOption)
	}
	if cfg.seedVisible {
		if node.seed == nil {
			return nil, fmt.Errorf("%w: SeedVisible needs a node WithSeedCompat", ErrInvalidOption)
		}
		if err := checkSeedName(name); err != nil {
			return nil, err
		}
	}
	c := cfg.codec
	_, strict := c.(codec.TypeNamer)
	core := &serviceCore{
		info: TopicInfo{Name: name, Codec: c.Name(), Type: typeName[Req](c), Schema: schemaOf[Req](c),
			JSONSchema: jsonSchemaOf[Req](c), ReplyType: typeName[Resp](c), ReplySchema: schemaOf[Resp](c),
			ReplyJSONSchema: jsonSchemaOf[Resp](c), Relay: cfg.relay},
		strict: strict,
		call: func(ctx context.Context, payload []byte, owned bool) ([]byte, error) {
			req, ok := rawValue[Req](c, payload, owned)
			if !ok {
				var err error
				if req, err = decode[Req](c, payload); err != nil {
					return nil, &CodedError{Code: CodeInvalidArgument, Err: fmt.Errorf("decoding request: %w", err)}
				}
			}
			resp, err := handler(ctx, req)
			if err != nil {
				return nil, err
			}
			out, err := marshal(c, resp)
			if err != nil {
				return nil, &CodedError{Code: CodeInternal, Err: fmt.Errorf("encoding reply: %w", err)}
			}
			return out, nil
		},
	}
	node.mu.Lock()
	if err := node.acceptingLocked(); err != nil {
		node.mu.Unlock()
		return nil, err
	}
	if node.services[name] != nil {
		node.mu.Unlock()
		return nil, fmt.Errorf("%w: service %q is already served by this node", ErrInvalidOption, name)
	}
	core.c = node.svcCounterLocked(name)
	node.services[name] = core
	node.publishServedLocked()
	node.notifyChangedLocked() // wakes requests and WaitServers waiting for a server
	node.mu.Unlock()
	srv := &Server{node: node, core: core}
	if cfg.seedVisible {
		ss, err := node.seed.serve(core)
		if err != nil {
			_ = srv.Close()
			return nil, err
		}
		srv.seed = ss
	}
	node.catalogChanged()
	return srv, nil
}

// Close stops serving; requests already running finish. Idempotent.
func (s *Server) Close() error {
	n := s.node
	n.mu.Lock()
	removed := n.services[s.core.info.Name] == s.core
	if removed {
		delete(n.services, s.core.info.Name)
		n.publishServedLocked()
		n.clearTargetsLocked()
	}
	n.mu.Unlock()
	if removed {
		if s.seed != nil {
			s.seed.close()
		}
		n.catalogChanged()
	}
	return nil
}

// publishServedLocked refreshes the request path's copy of services.
func (n *Node) publishServedLocked() {
	m := maps.Clone(n.services)
	n.served.Store(&m)
}

// run calls the handler for one request and returns the reply header status
// and payload.
func (n *Node) run(ctx context.Context, svc *serviceCore, payload []byte, owned bool) (out []byte, code Code, msg string) {
	if n.cfg.recover {
		defer func() {
			if r := recover(); r != nil {
				n.log.Error("handler panicked", slog.String(keyService, svc.info.Name), slog.Any("panic", r))
				out, code, msg = nil, CodeInternal, fmt.Sprint("handler panicked: ", r)
			}
		}()
	}
	var end func(error)
	if tr := n.cfg.tracer; tr != nil {
		ctx, end = tr.Start(ctx, SpanServe, svc.info.Name, IncomingMetadata(ctx))
	}
	out, err := svc.call(ctx, payload, owned)
	if end != nil {
		end(err)
	}
	svc.c.served.Add(1)
	if err == nil {
		return out, 0, ""
	}
	svc.c.handlerErrs.Add(1)
	code = CodeOf(err)
	switch {
	case code == CodeNotServed: // colugo's own: a handler cannot claim nobody serves this
		code = CodeUnknown
	case code != 0:
	case errors.Is(err, context.DeadlineExceeded):
		code = CodeDeadlineExceeded
	default:
		code = CodeUnknown
	}
	if code == CodeInvalidArgument {
		svc.c.decodeErrors.Add(1)
	}
	return nil, code, err.Error()
}

// serveRequest handles what arrives at the node's router. It runs on a
// transport goroutine and must not block: handlers get goroutines of their
// own.
func (n *Node) serveRequest(msg *transport.Message, rw transport.ReplyWriter) {
	h := &msg.Header
	switch h.Kind {
	case transport.KindCancel:
		n.reqMu.Lock()
		hc := n.inflight[inflightKey{rw, h.RequestID}]
		n.reqMu.Unlock()
		if hc != nil {
			cause := context.Canceled
			if h.Status == transport.CancelDeadline { // the caller's deadline, which may be a little ahead of ours
				cause = context.DeadlineExceeded
			}
			hc.cancel(cause)
		}
		return
	case transport.KindRequest, transport.KindControl:
		if n.keys != nil || h.Flags&wire.FlagSealed != 0 {
			// msg is ours: the transport made it for this request.
			if err := n.openMsg(msg, binding{peer: n.id}); err != nil {
				return // no answer: a node without the key learns nothing
			}
		}
	default:
		return
	}
	switch h.Kind {
	case transport.KindControl:
		if msg.Name == wire.HistoryService {
			n.serveHistory(msg, rw)
			return
		}
		if msg.Name != describeService {
			n.replyError(rw, msg, CodeNotServed, errUnknownControl)
			return
		}
		payload, err := n.describeJSON()
		if err != nil {
			n.replyError(rw, msg, CodeInternal, err.Error())
			return
		}
		if len(payload) > maxDescription && !n.describeTooLarge.Swap(true) {
			// Peers refuse it (errDescriptionTooLarge): say so here, once.
			n.log.Warn("this node's $describe is over 16 MiB: peers will not list it (fewer or smaller schemas?)",
				slog.Int("bytes", len(payload)))
			n.report(fmt.Errorf("colugo: this node's $describe is %d bytes, over the %d that peers accept: they will not list it", len(payload), maxDescription))
		}
		n.reply(rw, msg, "json", "colugo.PeerInfo", payload, 0, "")
		return
	case transport.KindRequest:
	default:
		return
	}

	var svc *serviceCore
	if m := n.served.Load(); m != nil {
		svc = (*m)[msg.Name]
	}
	if svc == nil {
		n.replyError(rw, msg, CodeNotServed, "service not served here")
		return
	}
	if h.Codec != svc.info.Codec || (svc.strict && h.Type != svc.info.Type) {
		svc.c.decodeErrors.Add(1)
		n.report(&DecodeError{Topic: msg.Name, Codec: h.Codec, Type: h.Type, Sender: h.Sender,
			Err: fmt.Errorf("%w: server expects codec %s, type %s", ErrCodecMismatch, svc.info.Codec, svc.info.Type)})
		n.replyError(rw, msg, CodeCodecMismatch, fmt.Sprintf("server expects codec %s, type %s", svc.info.Codec, svc.info.Type))
		return
	}
	if h.Deadline < 0 {
		n.replyError(rw, msg, CodeDeadlineExceeded, "the request's deadline had passed when it arrived")
		return
	}
	// draining is read after the increment: a request that Shutdown's
	// count of running handlers missed sees that it is draining.
	if n.handlers.Add(1) > int64(n.cfg.maxHandlers) || n.closed.Load() || n.draining.Load() {
		n.handlerDone()
		n.replyError(rw, msg, CodeUnavailable, "too many requests in flight, or closing")
		return
	}
	// The handler's deadline is the caller's. A request without one (a
	// foreign peer) gets the node's default, so a requester that vanishes
	// cannot hold handlers for ever.
	timeout := time.Duration(h.Deadline)
	if timeout == 0 {
		timeout = n.cfg.defaultTimeout
	}
	s := &serving{n: n, svc: svc, msg: msg, rw: rw, key: inflightKey{rw, h.RequestID}}
	s.handlerCtx.init(n.ctx, timeout)
	s.handlerCtx.md = h.Ext
	n.reqMu.Lock() // Close sets closed under it: goLocked is safe under it
	n.inflight[s.key] = &s.handlerCtx
	if d, ok := rw.(transport.ConnWatcher); ok && !n.watched[rw] {
		if n.goLocked(func() { n.watchRequester(rw, d.Done()) }) {
			n.watched[rw] = true
		}
	}
	started := n.startLocked()
	if started {
		go s.serve() // one allocation for the goroutine; goLocked would add a closure
	} else {
		delete(n.inflight, s.key)
	}
	n.reqMu.Unlock()
	if !started {
		n.handlerDone()
		n.replyError(rw, msg, CodeUnavailable, "closing")
	}
}

// serving is one request being handled: its context, and what the
// handler's goroutine needs, in one allocation.
type serving struct {
	handlerCtx
	n   *Node
	svc *serviceCore
	msg *transport.Message
	rw  transport.ReplyWriter
	key inflightKey
}

func (s *serving) serve() {
	n := s.n
	defer n.wg.Done()     // startLocked's
	defer n.handlerDone() // after the reply is queued, which Shutdown flushes
	out, code, errMsg := n.run(&s.handlerCtx, s.svc, s.msg.Payload, s.msg.Exclusive)
	n.reqMu.Lock()
	delete(n.inflight, s.key)
	n.reqMu.Unlock()
	s.cancel(context.Canceled) // releases its timer, if the handler armed one
	n.reply(s.rw, s.msg, s.svc.info.Codec, s.svc.info.ReplyType, out, code, errMsg)
}

// watchRequester cancels the handlers of a requester whose connection is
// gone: nobody can receive their replies any more. One goroutine per
// requester connection, not per request.
func (n *Node) watchRequester(rw transport.ReplyWriter, done <-chan struct{}) {
	select {
	case <-done:
	case <-n.ctx.Done():
	}
	n.reqMu.Lock()
	defer n.reqMu.Unlock()
	for k, hc := range n.inflight {
		if k.rw == rw {
			hc.cancel(context.Canceled)
		}
	}
	delete(n.watched, rw)
}

func (n *Node) replyError(rw transport.ReplyWriter, req *transport.Message, code Code, msg string) {
	n.reply(rw, req, req.Header.Codec, "", nil, code, msg)
}

func (n *Node) reply(rw transport.ReplyWriter, req *transport.Message, codecName, typ string, payload []byte, code Code, errMsg string) {
	rep := &transport.Message{Name: req.Name, Header: wire.Header{
		Kind: transport.KindReply, Status: uint8(code), Codec: codecName, Type: typ, Sender: n.id,
		RequestID: req.Header.RequestID, SendTime: time.Now().UnixNano(), Error: errMsg,
	}, Payload: payload, Exclusive: codecName != rawName} // Raw's bytes are the handler's
	n.sealMsg(rep, binding{peer: req.Header.Sender, seq: req.Header.Seq})
	err := rw.Reply(rep)
	if err != nil {
		n.log.Debug("reply not sent", slog.String(keyService, req.Name), slog.Any(keyError, err))
	}
}

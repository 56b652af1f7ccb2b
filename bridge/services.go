package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// exportService serves the local service name on NATS by rule r: a queue
// subscription for requests and one for the service's description, both
// in a queue group named after the subject, so that the sites exporting
// one service share its load. The caller holds b.mu.
func (b *Bridge) exportService(name string, r Service) ([]*nats.Subscription, error) {
	global := joinPrefix(r.Prefix, name)
	subj := subject(b.cfg.Root, kindService, global)
	var last lastRequest // only the subscription's goroutine uses it
	req, err := b.nc.QueueSubscribe(subj, subj, func(m *nats.Msg) { b.serveNATS(name, r, m, &last) })
	if err != nil {
		return nil, err
	}
	isubj := subject(b.cfg.Root, kindInfo, global)
	info, err := b.nc.QueueSubscribe(isubj, isubj, func(m *nats.Msg) { b.describe(name, m) })
	if err != nil {
		_ = req.Unsubscribe()
		return nil, err
	}
	return []*nats.Subscription{req, info}, nil
}

// describe answers an importer's question: the service's TopicInfo (codec,
// types, schemas), as JSON, from a local server's $describe.
func (b *Bridge) describe(name string, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	for _, p := range b.node.Peers() {
		for _, s := range p.Services {
			if s.Name == name {
				data, err := json.Marshal(s)
				if err == nil {
					// The site, so the importer's $describe can say where
					// the service is from.
					r := nats.NewMsg(m.Reply)
					r.Header.Set(hOrigin, b.cfg.Site)
					r.Data = data
					_ = m.RespondMsg(r)
					return
				}
			}
		}
	}
	r := nats.NewMsg(m.Reply)
	r.Header.Set(hStatus, strconv.Itoa(int(colugo.CodeNotServed)))
	_ = m.RespondMsg(r)
}

// lastRequest keeps, for one exported service's NATS subscription, what
// its last request needed that the next one mostly needs again: the
// metadata context of the last origin (when the request carried nothing
// but its origin) and the request options of the last codec and type.
type lastRequest struct {
	origin lastOrigin
	parent context.Context // the ctx origin.mctx was made on

	codec, typ string
	opts       []colugo.RequestOption
}

// serveNATS forwards a request from NATS to a local server of name, with
// the remaining deadline, and replies on NATS. Only the subscription's
// goroutine calls it, with that subscription's last.
func (b *Bridge) serveNATS(name string, r Service, m *nats.Msg, last *lastRequest) {
	if m.Reply == "" {
		b.st.exp.badHeader.Add(1)
		return
	}
	in, ok := parseHeaderLast(m.Header, &last.origin)
	if !ok {
		b.st.exp.badHeader.Add(1)
		b.replyError(m, "", colugo.CodeInvalidArgument, "bridge: malformed request header")
		return
	}
	if m.Header.Get(hOrigin) == b.cfg.Site {
		b.st.exp.loop.Add(1)
		b.replyError(m, in.codec, colugo.CodeUnavailable, "bridge: request from this site")
		return
	}
	if r.MaxPayload > 0 && len(m.Data) > r.MaxPayload {
		b.st.exp.payload.Add(1)
		b.replyError(m, in.codec, colugo.CodeInvalidArgument, fmt.Sprintf("bridge: request of %d bytes, above max_payload %d", len(m.Data), r.MaxPayload))
		return
	}
	select {
	case b.inflightExp <- struct{}{}:
	default:
		b.st.exp.limit.Add(1)
		b.replyError(m, in.codec, colugo.CodeUnavailable, "bridge: too many requests in flight")
		return
	}
	b.mu.Lock()
	parent := b.ctx
	b.mu.Unlock()
	// The request's metadata on the bridge's ctx: last's, when it is its
	// origin alone (as most requests), else its own.
	mctx := in.mctx
	if mctx == nil || last.parent != parent {
		mctx = colugo.WithMetadata(parent, in.md)
		if len(in.md) == 1 {
			last.origin.mctx, last.parent = mctx, parent
		}
	}
	if last.opts == nil || in.codec != last.codec || in.typ != last.typ {
		last.codec, last.typ = in.codec, in.typ
		last.opts = []colugo.RequestOption{colugo.WithCodec(codec.Passthrough(in.codec, in.typ)), colugo.WithFailFast()}
	}
	opts := last.opts
	if !b.goRun(func() {
		defer func() { <-b.inflightExp }()
		var ctx context.Context
		var cancel context.CancelFunc
		if d := deadline(m.Header); d > 0 {
			ctx, cancel = context.WithTimeout(mctx, d)
		} else {
			ctx, cancel = context.WithCancel(mctx)
		}
		defer cancel()
		b.st.exp.requests.Add(1)
		resp, err := colugo.Request[[]byte, []byte](ctx, b.node, name, m.Data, opts...)
		if err != nil {
			b.st.exp.requestErrors.Add(1)
			code, msg := codeOf(err)
			b.replyError(m, in.codec, code, msg)
			return
		}
		out := nats.NewMsg(m.Reply)
		out.Header = b.header(in.codec, "", b.id, nil)
		out.Data = resp
		if err := m.RespondMsg(out); err != nil {
			b.st.exp.link.Add(1)
		}
	}) {
		<-b.inflightExp
	}
}

// codeOf turns a local request's error into the code and message a NATS
// reply carries.
func codeOf(err error) (colugo.Code, string) {
	var re *colugo.RemoteError
	switch {
	case errors.As(err, &re):
		return re.Code, re.Message
	case errors.Is(err, colugo.ErrNoResponders):
		return colugo.CodeNotServed, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return colugo.CodeDeadlineExceeded, err.Error()
	case errors.Is(err, colugo.ErrCodecMismatch):
		return colugo.CodeCodecMismatch, err.Error()
	case errors.Is(err, colugo.ErrClosed), errors.Is(err, colugo.ErrPeerLost), errors.Is(err, context.Canceled):
		return colugo.CodeUnavailable, err.Error()
	}
	return colugo.CodeUnknown, err.Error()
}

func (b *Bridge) replyError(m *nats.Msg, codecName string, code colugo.Code, msg string) {
	out := nats.NewMsg(m.Reply)
	out.Header = b.header(codecName, "", b.id, nil)
	out.Header[hStatus] = []string{strconv.Itoa(int(code))}
	out.Header[hError] = []string{msg}
	if err := m.RespondMsg(out); err != nil {
		b.st.exp.link.Add(1)
	}
}

// importService asks NATS for the description of rule r's service until
// an exporter answers, then serves it on the bridge's node with the
// service's codec and types, forwarding each request to NATS.
func (b *Bridge) importService(ctx context.Context, r Service) {
	global := joinPrefix(r.Prefix, r.Name)
	isubj := subject(b.cfg.Root, kindInfo, global)
	wait := 50 * time.Millisecond
	var info colugo.TopicInfo
	var remote string // the describing exporter's site ("" from an older bridge)
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := b.nc.RequestWithContext(qctx, isubj, nil)
		cancel()
		if err == nil && m.Header.Get(hStatus) == "" && json.Unmarshal(m.Data, &info) == nil && info.Codec != "" {
			remote = m.Header.Get(hOrigin)
			break
		}
		if ctx.Err() != nil {
			return
		}
		// Nobody exports it yet, or the link is down: ask again, less
		// often as time goes by.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
	subj := subject(b.cfg.Root, kindService, global)
	srv, err := colugo.Serve(b.node, r.Name, func(hctx context.Context, req []byte) (replyBytes, error) {
		return b.forward(hctx, subj, r, info, req)
	}, colugo.WithCodec(serviceCodec(info)), colugo.WithRelay(colugo.Relay{Via: "nats", Remote: remote, Name: subj}))
	if err != nil {
		b.st.imp.failed.Add(1)
		return
	}
	b.mu.Lock()
	if ctx.Err() != nil {
		b.mu.Unlock()
		_ = srv.Close()
		return
	}
	b.servers = append(b.servers, srv)
	b.imported = append(b.imported, r.Name)
	b.mu.Unlock()
}

// forward sends a local request to NATS and turns the reply back into the
// handler's result.
func (b *Bridge) forward(ctx context.Context, subj string, r Service, info colugo.TopicInfo, req []byte) (replyBytes, error) {
	md := colugo.IncomingMetadata(ctx)
	if md[mdOrigin] != "" {
		b.st.imp.loop.Add(1)
		return nil, colugo.Errorf(colugo.CodeUnavailable, "bridge: request came from NATS (%s): not sent back", md[mdOrigin])
	}
	if r.MaxPayload > 0 && len(req) > r.MaxPayload {
		b.st.imp.payload.Add(1)
		return nil, colugo.Errorf(colugo.CodeInvalidArgument, "bridge: request of %d bytes, above max_payload %d", len(req), r.MaxPayload)
	}
	select {
	case b.inflightImp <- struct{}{}:
		defer func() { <-b.inflightImp }()
	default:
		b.st.imp.limit.Add(1)
		return nil, colugo.Errorf(colugo.CodeUnavailable, "bridge: too many requests in flight")
	}
	m := nats.NewMsg(subj)
	m.Header = b.header(info.Codec, info.Type, b.id, md)
	if d, ok := ctx.Deadline(); ok {
		m.Header[hTimeout] = []string{strconv.FormatInt(int64(time.Until(d)), 10)}
	}
	m.Data = req
	b.st.imp.requests.Add(1)
	resp, err := b.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		b.st.imp.requestErrors.Add(1)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return nil, colugo.Errorf(colugo.CodeUnavailable, "bridge: no responders on NATS for %s", subj)
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			return nil, colugo.Errorf(colugo.CodeDeadlineExceeded, "bridge: %s: %v", subj, err)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		b.st.imp.link.Add(1)
		return nil, colugo.Errorf(colugo.CodeUnavailable, "bridge: NATS: %v", err)
	}
	if s := resp.Header.Get(hStatus); s != "" && s != "0" {
		b.st.imp.requestErrors.Add(1)
		code, err := strconv.Atoi(s)
		if err != nil || code < 0 || code > 255 {
			b.st.imp.badHeader.Add(1)
			return nil, colugo.Errorf(colugo.CodeUnknown, "bridge: malformed reply status %q", s)
		}
		c, msg := colugo.Code(code), resp.Header.Get(hError)
		if c == colugo.CodeNotServed {
			// A handler cannot send CodeNotServed (colugo keeps it for
			// itself): the nearest the caller can act on.
			return nil, colugo.Errorf(colugo.CodeUnavailable, "bridge: not served on the remote site: %s", msg)
		}
		return nil, colugo.Errorf(c, "%s", msg)
	}
	if c := resp.Header.Get(hCodec); c != info.Codec {
		b.st.imp.badHeader.Add(1)
		return nil, colugo.Errorf(colugo.CodeCodecMismatch, "bridge: reply codec %q, service codec %s", c, info.Codec)
	}
	return resp.Data, nil
}

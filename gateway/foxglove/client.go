package foxglove

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// frame is one queued WebSocket message: text, or binary as head then
// body (a message's payload, shared by all clients).
type frame struct {
	text bool
	head []byte
	body []byte
}

func (f frame) size() int { return len(f.head) + len(f.body) + 64 }

// client is one connection: its queue, subscriptions and advertised
// channels.
type client struct {
	g    *Gateway
	conn *websocket.Conn

	mu       sync.Mutex
	queue    []frame
	bytes    int
	dropping bool // an episode of drops, warned once, ends when the queue empties
	wake     chan struct{}
	kicked   bool

	dropped atomic.Uint64

	// Under g.mu.
	subs     map[uint32]uint32 // subscription id -> channel id
	chanSubs map[uint32]uint32 // channel id -> subscription id
	graphSub bool              // subscribed to connectionGraph updates

	// Reader goroutine only.
	pubs    map[uint32]clientPub
	schemas int           // bytes of the pubs' schemas, at most maxClientSchemas
	calls   chan struct{} // semaphore of calls in flight

	callBytes atomic.Int64 // the requests of calls in flight: added by the reader, released by the calls
}

func (g *Gateway) serve(conn *websocket.Conn) {
	c := &client{g: g, conn: conn, wake: make(chan struct{}, 1),
		subs: map[uint32]uint32{}, chanSubs: map[uint32]uint32{},
		pubs: map[uint32]clientPub{}, calls: make(chan struct{}, maxCalls)}
	ctx, cancel := context.WithCancel(g.ctx)
	defer cancel()
	g.mu.Lock()
	if g.closed {
		g.admitted--
		g.mu.Unlock()
		conn.CloseNow()
		return
	}
	caps := []string{"services", "connectionGraph"}
	if g.cfg.allowPublish {
		caps = append(caps, "clientPublish")
	}
	c.sendJSONLocked(map[string]any{"op": "serverInfo", "name": "colugo", "version": colugo.Version,
		"capabilities": caps, "supportedEncodings": []string{"json", "protobuf"},
		"metadata": map[string]string{"version": colugo.Version}, "sessionId": g.node.ID()})
	chans := make([]map[string]any, 0, len(g.channels))
	for _, ch := range g.channels {
		chans = append(chans, ch.adv)
	}
	c.sendJSONLocked(map[string]any{"op": "advertise", "channels": chans})
	svcs := make([]map[string]any, 0, len(g.services))
	for _, s := range g.services {
		svcs = append(svcs, s.adv)
	}
	if len(svcs) > 0 {
		c.sendJSONLocked(map[string]any{"op": "advertiseServices", "services": svcs})
	}
	g.clients[c] = struct{}{}
	g.connected.Add(1)
	g.mu.Unlock()

	var calls sync.WaitGroup
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); c.write(ctx) }()
	defer func() {
		cancel()
		conn.CloseNow()
		<-writerDone
		calls.Wait()
		for id := range c.pubs {
			c.unadvertise(id)
		}
		g.mu.Lock()
		for cid := range c.chanSubs {
			c.dropChannelLocked(cid)
		}
		delete(g.clients, c)
		g.connected.Add(-1)
		g.admitted-- // with connected: a client seen gone has its place free
		g.gone.Add(c.dropped.Load())
		g.mu.Unlock()
		if len(c.pubs) > 0 {
			g.sync() // its channels go
		}
	}()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		o, err := decodeOp(typ == websocket.MessageText, data)
		if err != nil {
			c.refuse(err.Error())
			continue
		}
		c.handle(ctx, o, &calls)
	}
}

// refuse answers bad input with a status error and counts it.
func (c *client) refuse(msg string) {
	c.dropped.Add(1)
	c.status(2, msg)
}

func (c *client) status(level int, msg string) {
	c.g.mu.RLock()
	c.sendJSONLocked(map[string]any{"op": "status", "level": level, "message": msg})
	c.g.mu.RUnlock()
}

func (c *client) handle(ctx context.Context, o *op, calls *sync.WaitGroup) {
	g := c.g
	switch o.Op {
	case "subscribe":
		g.mu.Lock()
		var errs, start []string
		for _, s := range o.Subscriptions {
			ch, ok := g.chanByID[s.ChannelID]
			switch {
			case !ok:
				errs = append(errs, fmt.Sprintf("subscribe: no channel %d", s.ChannelID))
			case hasKey(c.subs, s.ID):
				errs = append(errs, fmt.Sprintf("subscribe: subscription id %d in use", s.ID))
			case hasKey(c.chanSubs, s.ChannelID):
				errs = append(errs, fmt.Sprintf("subscribe: channel %d already subscribed", s.ChannelID))
			default:
				if g.acquireTopicLocked(ch.key.topic) {
					start = append(start, ch.key.topic)
				}
				c.subs[s.ID], c.chanSubs[s.ChannelID] = s.ChannelID, s.ID
			}
		}
		if len(start) > 0 {
			g.graphChangedLocked()
		}
		g.mu.Unlock()
		for _, topic := range start {
			if err := g.startTopic(topic); err != nil {
				errs = append(errs, fmt.Sprintf("subscribe: %s: %v", topic, err))
			}
		}
		c.refuseAll(errs)
	case "unsubscribe":
		g.mu.Lock()
		var errs []string
		for _, id := range o.SubscriptionIDs {
			cid, ok := c.subs[id]
			if !ok {
				errs = append(errs, fmt.Sprintf("unsubscribe: no subscription %d", id))
				continue
			}
			c.dropChannelLocked(cid)
		}
		g.mu.Unlock()
		c.refuseAll(errs)
	case "advertise":
		if !g.cfg.allowPublish {
			c.refuse("advertise: client publishing is not allowed (clientPublish capability off)")
			return
		}
		var errs []string
		for _, ch := range o.Channels {
			if err := c.advertise(ch); err != nil {
				errs = append(errs, fmt.Sprintf("advertise %d (%s): %v", ch.ID, truncate(ch.Topic, 128), err))
			}
		}
		if len(errs) < len(o.Channels) {
			g.sync() // the other clients see the new channels
		}
		c.refuseAll(errs)
	case "unadvertise":
		if !g.cfg.allowPublish {
			c.refuse("unadvertise: client publishing is not allowed")
			return
		}
		gone := 0
		for _, id := range o.ChannelIDs {
			if c.unadvertise(id) {
				gone++
			}
		}
		if gone > 0 {
			g.sync()
		}
	case nameClientMessageData:
		if !g.cfg.allowPublish {
			c.refuse("clientMessageData: client publishing is not allowed")
			return
		}
		p, ok := c.pubs[o.ID]
		if !ok {
			c.refuse(fmt.Sprintf("clientMessageData: no client channel %d", o.ID))
			return
		}
		if err := p.pub.Publish(ctx, o.Payload); err != nil {
			c.refuse(fmt.Sprintf("clientMessageData: %v", err))
		}
	case nameServiceCallRequest:
		c.call(ctx, o, calls)
	case "subscribeConnectionGraph":
		g.mu.Lock()
		if !c.graphSub {
			c.graphSub = true
			c.sendGraphLocked()
		}
		g.mu.Unlock()
	case "unsubscribeConnectionGraph":
		g.mu.Lock()
		c.graphSub = false
		g.mu.Unlock()
	}
}

func hasKey(m map[uint32]uint32, k uint32) bool { _, ok := m[k]; return ok }

func (c *client) refuseAll(errs []string) {
	for i, e := range errs {
		if i == 8 { // bound the answer to one op
			c.refuse(fmt.Sprintf("… and %d more errors", len(errs)-i))
			return
		}
		c.refuse(e)
	}
}

func (c *client) advertise(ch clientChannel) error {
	if _, ok := c.pubs[ch.ID]; ok {
		return errors.New("channel id in use")
	}
	if len(c.pubs) >= maxClientChannels {
		return fmt.Errorf("more than %d client channels", maxClientChannels)
	}
	var schema, jsonSchema []byte
	switch ch.Encoding {
	case "json":
		// A client's JSON Schema is the channel's for the other clients.
		if ch.SchemaEncoding == "jsonschema" && ch.Schema != "" && json.Valid([]byte(ch.Schema)) {
			jsonSchema = []byte(ch.Schema)
		}
	case "protobuf":
		if ch.Schema != "" {
			b, err := base64.StdEncoding.DecodeString(ch.Schema)
			if err != nil {
				return fmt.Errorf("protobuf schema is not base64: %v", err)
			}
			schema = b
		}
	default:
		return fmt.Errorf("encoding %q: clients publish json or protobuf", truncate(ch.Encoding, 32))
	}
	held := len(schema) + len(jsonSchema)
	if c.schemas+held > maxClientSchemas {
		return fmt.Errorf("schema of %d bytes: this client's channels' schemas would pass %d bytes together", held, maxClientSchemas)
	}
	typ := ch.SchemaName
	if typ == "" && ch.Encoding == "json" {
		typ = "json.RawMessage"
	}
	p, err := colugo.NewPublisher[[]byte](c.g.node, ch.Topic, colugo.WithCodec(codec.PassthroughSchema(ch.Encoding, typ, schema)))
	if err != nil {
		return err
	}
	k := chanKey{ch.Topic, ch.Encoding, typ}
	c.pubs[ch.ID] = clientPub{pub: p, key: k, schema: held}
	c.schemas += held
	g := c.g
	g.mu.Lock()
	if o, ok := g.own[k]; ok {
		o.refs++
	} else {
		g.own[k] = &ownPub{info: colugo.TopicInfo{Name: ch.Topic, Codec: ch.Encoding, Type: typ, Schema: schema, JSONSchema: jsonSchema}, refs: 1}
	}
	g.mu.Unlock()
	return nil
}

// clientPub is a channel a client advertised: the node's publisher for it.
type clientPub struct {
	pub    *colugo.Publisher[[]byte]
	key    chanKey
	schema int // bytes of its schema held
}

// unadvertise closes the client's channel id, if it has one, and reports
// whether it had.
func (c *client) unadvertise(id uint32) bool {
	p, ok := c.pubs[id]
	if !ok {
		return false
	}
	_ = p.pub.Close()
	delete(c.pubs, id)
	c.schemas -= p.schema
	g := c.g
	g.mu.Lock()
	if o := g.own[p.key]; o != nil {
		if o.refs--; o.refs <= 0 {
			delete(g.own, p.key)
		}
	}
	g.mu.Unlock()
	return true
}

func (c *client) call(ctx context.Context, o *op, calls *sync.WaitGroup) {
	g := c.g
	g.mu.RLock()
	s, ok := g.svcByID[o.ID]
	g.mu.RUnlock()
	fail := func(msg string) {
		g.mu.RLock()
		c.sendJSONLocked(map[string]any{"op": "serviceCallFailure", "serviceId": o.ID, "callId": o.CallID, "message": msg})
		g.mu.RUnlock()
	}
	refuse := func(msg string) { // the gateway's refusal, not the service's answer: counted
		c.dropped.Add(1)
		fail(msg)
	}
	switch {
	case !ok:
		refuse(fmt.Sprintf("no service %d", o.ID))
		return
	case o.Encoding != s.requestEncoding:
		refuse(fmt.Sprintf("%s takes encoding %s, not %q", s.info.Name, s.requestEncoding, truncate(o.Encoding, 32)))
		return
	}
	// Only this goroutine adds to callBytes: what it reads can only shrink
	// before the Add. One call is always taken, whatever its size.
	size := int64(len(o.Payload))
	if held := c.callBytes.Load(); held > 0 && held+size > maxCallBytes {
		refuse(fmt.Sprintf("calls in flight hold %d bytes: a request of %d would pass %d", held, size, maxCallBytes))
		return
	}
	select {
	case c.calls <- struct{}{}:
	default:
		refuse(fmt.Sprintf("more than %d calls in flight", maxCalls))
		return
	}
	c.callBytes.Add(size)
	payload := append([]byte(nil), o.Payload...)
	calls.Add(1)
	go func() {
		defer calls.Done()
		defer func() { <-c.calls }()
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		resp, err := colugo.Request[[]byte, []byte](cctx, g.node, s.info.Name, payload, colugo.WithCodec(codec.Passthrough(s.info.Codec, s.info.Type)))
		c.callBytes.Add(-size) // before the answer, after which the client may call again
		if err != nil {
			var re *colugo.RemoteError
			if errors.As(err, &re) {
				fail(fmt.Sprintf("%s: %s", re.Code, re.Message))
			} else {
				fail(err.Error())
			}
			return
		}
		head := make([]byte, 13+len(o.Encoding))
		head[0] = opServiceCallResponse
		binary.LittleEndian.PutUint32(head[1:], o.ID)
		binary.LittleEndian.PutUint32(head[5:], o.CallID)
		binary.LittleEndian.PutUint32(head[9:], uint32(len(o.Encoding)))
		copy(head[13:], o.Encoding)
		c.push(frame{head: head, body: resp}, false)
	}()
}

// dropChannelLocked ends the client's subscription of channel cid, if any.
func (c *client) dropChannelLocked(cid uint32) {
	sid, ok := c.chanSubs[cid]
	if !ok {
		return
	}
	delete(c.chanSubs, cid)
	delete(c.subs, sid)
	if ch, ok := c.g.chanByID[cid]; ok {
		c.g.releaseTopicLocked(ch.key.topic)
	}
}

// sendJSONLocked queues a control message. Called under g.mu (read or
// write).
func (c *client) sendJSONLocked(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.push(frame{text: true, body: b}, true)
}

// sendData queues a messageData frame; a full queue drops it.
func (c *client) sendData(sid uint32, t uint64, payload []byte) {
	head := make([]byte, 13)
	head[0] = opMessageData
	binary.LittleEndian.PutUint32(head[1:], sid)
	binary.LittleEndian.PutUint64(head[5:], t)
	c.push(frame{head: head, body: payload}, false)
}

// push queues f. Data (and responses) past the queue bound are dropped,
// with one status warning per episode, but an empty queue takes one
// however large (so a message larger than the bound still reaches a
// client that keeps up: it is in memory already, shared by the clients);
// control messages may go up to twice the bound, and a client past that
// is disconnected: it does not read at all.
func (c *client) push(f frame, control bool) {
	limit := c.g.cfg.queue
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kicked {
		return
	}
	if control && c.bytes+f.size() > 2*limit {
		c.kicked = true
		c.dropped.Add(1)
		c.conn.CloseNow() // it reads nothing: no close handshake to wait for
		return
	}
	if !control && c.bytes > 0 && c.bytes+f.size() > limit {
		c.dropped.Add(1)
		if !c.dropping {
			c.dropping = true
			b, _ := json.Marshal(map[string]any{"op": "status", "level": 1, "id": "colugo.dropping",
				"message": fmt.Sprintf("client too slow: dropping messages (send queue of %d bytes full)", limit)})
			f = frame{text: true, body: b}
		} else {
			return
		}
	}
	c.queue = append(c.queue, f)
	c.bytes += f.size()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// write sends queued frames until ctx ends or a write fails.
func (c *client) write(ctx context.Context) {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.dropping = false // caught up: the drop episode ends
			c.mu.Unlock()
			select {
			case <-c.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		f := c.queue[0]
		c.queue[0] = frame{}
		c.queue = c.queue[1:]
		c.mu.Unlock()
		if err := c.writeFrame(ctx, f); err != nil {
			c.conn.CloseNow()
			return
		}
		c.mu.Lock()
		c.bytes -= f.size()
		c.mu.Unlock()
	}
}

func (c *client) writeFrame(ctx context.Context, f frame) error {
	if f.text {
		return c.conn.Write(ctx, websocket.MessageText, f.body)
	}
	w, err := c.conn.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		return err
	}
	_, _ = w.Write(f.head)
	_, _ = w.Write(f.body)
	if err := w.Close(); err != nil {
		return err
	}
	if f.head[0] == opMessageData {
		c.g.sent.Add(1)
	}
	return nil
}

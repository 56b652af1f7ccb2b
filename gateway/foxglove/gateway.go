// Package foxglove is a gateway from a colugo network to browsers and
// tools speaking the Foxglove WebSocket protocol (foxglove/ws-protocol,
// docs/spec.md): Foxglove, Lichtblick and @foxglove/ws-protocol clients.
//
// Topics become channels, one per (topic, codec, type) that a peer
// publishes: codec json has encoding "json" (schema: the topic's JSON
// Schema, schemaEncoding "jsonschema", when the publisher advertises one,
// else empty), protobuf has encoding "protobuf" (schemaName: the full
// message name, schema: the base64 FileDescriptorSet), and raw has
// encoding "colugo.raw": opaque bytes, schemaName the publisher's type
// name, no schema. Services are advertised the same way and called with a
// 5 s deadline. Each client has a bounded send queue: a client that reads
// too slowly loses its own messages, never slowing the network or other
// clients.
//
// What the gateway holds is bounded: its topics' subscriptions queue at
// most WithTopicBudget together while the fan-out to clients lags; at most
// WithMaxClients clients connect, each with a send queue of
// WithClientQueue (twice that for control messages), frames of at most
// 16 MiB, at most 64 service calls in flight holding 16 MiB of requests
// together, and at most 256 advertised channels whose schemas hold 4 MiB
// together.
package foxglove

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/colugo-go/colugo"
)

// Subprotocols the gateway accepts: foxglove.sdk.v1 is what current
// clients and foxglove_bridge 3.x speak, foxglove.websocket.v1 what older
// clients offer; the wire format is the same.
const (
	SubprotocolSDK       = "foxglove.sdk.v1"
	SubprotocolWebsocket = "foxglove.websocket.v1"
)

// EncodingRaw is the channel encoding of topics with colugo's raw codec:
// the payload is the publisher's bytes, uninterpreted.
const EncodingRaw = "colugo.raw"

// DefaultClientQueue is a client's default send queue bound in bytes.
const DefaultClientQueue = 16 << 20

// DefaultTopicBudget is the default bound of what all the topics'
// subscriptions queue together, in bytes: 64 MiB, what one colugo
// subscription may queue by default (colugo.DefaultQueueBytes), so that a
// gateway of many topics holds no more than one ordinary subscriber does.
const DefaultTopicBudget = 64 << 20

// DefaultMaxClients is the default bound on connected clients: a few
// Foxglove or Lichtblick windows and pages per robot, with room to spare,
// while bounding what clients' queues hold together (each up to twice
// WithClientQueue).
const DefaultMaxClients = 32

// callTimeout is the deadline of a service call made for a client.
const callTimeout = 5 * time.Second

// maxCalls bounds one client's service calls in flight.
const maxCalls = 64

// maxCallBytes bounds the requests of one client's calls in flight
// together: a frame's worth, where maxCalls frames could hold 1 GiB.
const maxCallBytes = readLimit

// maxClientSchemas bounds the schemas of one client's advertised channels
// together: each is held for the connection's life (protobuf ones in the
// node's catalog too) and sent to every client.
const maxClientSchemas = 4 << 20

// maxClientChannels bounds the channels one client may advertise.
const maxClientChannels = 256

// readLimit bounds one client frame.
const readLimit = 16 << 20

// Option configures a Gateway.
type Option interface {
	apply(*config)
	String() string
}

type config struct {
	allowPublish bool
	token        string
	origins      []string
	queue        int
	topicBudget  int
	maxClients   int
}

type (
	allowPublishOption bool
	tokenOption        string
	originsOption      []string
	queueOption        int
	topicBudgetOption  int
	maxClientsOption   int
)

func (o allowPublishOption) apply(c *config) { c.allowPublish = bool(o) }
func (o tokenOption) apply(c *config)        { c.token = string(o) }
func (o originsOption) apply(c *config)      { c.origins = append(c.origins, o...) }
func (o queueOption) apply(c *config)        { c.queue = int(o) }
func (o topicBudgetOption) apply(c *config)  { c.topicBudget = int(o) }
func (o maxClientsOption) apply(c *config)   { c.maxClients = int(o) }

func (o allowPublishOption) String() string { return fmt.Sprintf("WithAllowPublish(%t)", bool(o)) }
func (o tokenOption) String() string        { return "WithToken(…)" } // never print the secret
func (o originsOption) String() string      { return fmt.Sprintf("WithAllowedOrigins(%q)", []string(o)) }
func (o queueOption) String() string        { return fmt.Sprintf("WithClientQueue(%d)", int(o)) }
func (o topicBudgetOption) String() string  { return fmt.Sprintf("WithTopicBudget(%d)", int(o)) }
func (o maxClientsOption) String() string   { return fmt.Sprintf("WithMaxClients(%d)", int(o)) }

// WithAllowPublish lets clients advertise channels and publish on them
// (the clientPublish capability), json and protobuf only. Default: off.
func WithAllowPublish(allow bool) Option { return allowPublishOption(allow) }

// WithToken makes the gateway refuse (401) connections that do not give
// token, as ?token= or as "Authorization: Bearer token". Default: none.
func WithToken(token string) Option { return tokenOption(token) }

// WithAllowedOrigins admits browsers from these origins besides the
// gateway's own: host patterns ("example.com", "*.example.com") or, with
// "://", whole origins, matched with path.Match. Default: only requests
// with no Origin header or one naming the request's host.
func WithAllowedOrigins(patterns ...string) Option { return originsOption(patterns) }

// WithClientQueue bounds each client's send queue in bytes (default
// DefaultClientQueue): messages and service replies past it are dropped
// for that client, with a status warning once per episode (until the
// queue empties). An empty queue takes one however large, so a message
// larger than the bound reaches a client that keeps up. Control messages (advertisements, status) may take up
// to twice the bound; a client past that reads nothing and is
// disconnected.
func WithClientQueue(bytes int) Option { return queueOption(bytes) }

// WithTopicBudget bounds in bytes what the gateway's topic subscriptions
// (one per topic that clients subscribe to, shared by them) queue all
// together while the fan-out to clients lags: one colugo.QueueBudget for
// them all, of which one topic may take the whole. Default:
// DefaultTopicBudget, 64 MiB for all topics together. At the bound each
// topic drops its own oldest messages (colugo.DropOldest), counted in the
// node's Stats (Topics[topic].Dropped), not in the gateway's. Beyond it,
// each topic holds at most three messages: one past the bound (a topic
// with nothing queued still takes one), one waiting in its channel and the
// one being fanned out. New refuses a bound below 1.
func WithTopicBudget(bytes int) Option { return topicBudgetOption(bytes) }

// WithMaxClients bounds the clients connected at once, counted from the
// WebSocket handshake: past it a connection is refused with 503 Service
// Unavailable, and counted in Stats.Refused. Default: DefaultMaxClients.
// New refuses a bound below 1.
func WithMaxClients(n int) Option { return maxClientsOption(n) }

// Stats counts what a gateway did.
type Stats struct {
	Clients  int    // connected clients
	Channels int    // channels advertised
	Sent     uint64 // messageData frames written to clients
	// Dropped sums every client's losses, of clients connected and gone:
	// messages (and service replies) dropped because its queue was full,
	// and its ops refused as bad input (malformed or unknown ops, short
	// frames, unknown channels, services or ids, calls in the wrong
	// encoding, publishing when not allowed), each answered with a status
	// error or a serviceCallFailure. Failures that services answer are
	// not counted.
	Dropped uint64
	// Refused counts connections refused because WithMaxClients clients
	// were connected.
	Refused uint64
}

// chanKey is what makes a channel.
type chanKey struct{ topic, codec, typ string }

type channel struct {
	id  uint32
	key chanKey
	adv map[string]any // the advertise entry
}

type service struct {
	id              uint32
	key             chanKey // name, codec, request type
	info            colugo.TopicInfo
	adv             map[string]any
	requestEncoding string
}

// topicSub is the one colugo subscription of a topic, shared by all
// clients subscribed to any of its channels.
type topicSub struct {
	cancel context.CancelFunc // nil while startTopic makes it
	refs   int
}

// Gateway serves the Foxglove WebSocket protocol for a node.
type Gateway struct {
	node *colugo.Node
	cfg  config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.RWMutex
	closed    bool
	clients   map[*client]struct{}
	channels  map[chanKey]*channel
	chanByID  map[uint32]*channel
	services  map[chanKey]*service
	svcByID   map[uint32]*service
	topics    map[string]*topicSub
	own       map[chanKey]*ownPub // topics clients publish through this node
	peers     []colugo.PeerInfo   // as last synced
	graph     graph               // as last sent to graph subscribers
	nextChan  uint32
	nextSvc   uint32
	admitted  int                 // connections past the handshake's checks, not yet left: at most cfg.maxClients
	budget    *colugo.QueueBudget // the topic subscriptions' queues', together
	refused   atomic.Uint64
	sent      atomic.Uint64
	gone      atomic.Uint64 // drops of clients that have left
	connected atomic.Int64
}

// New returns a gateway for node, which it uses and does not close. It
// follows node's peers (Node.Events) until Close.
func New(node *colugo.Node, opts ...Option) (*Gateway, error) {
	if node == nil {
		return nil, errors.New("foxglove: nil node")
	}
	cfg := config{queue: DefaultClientQueue, topicBudget: DefaultTopicBudget, maxClients: DefaultMaxClients}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if cfg.queue <= 0 {
		return nil, fmt.Errorf("foxglove: WithClientQueue(%d): want a positive bound", cfg.queue)
	}
	if cfg.topicBudget <= 0 {
		return nil, fmt.Errorf("foxglove: WithTopicBudget(%d): want a positive bound", cfg.topicBudget)
	}
	if cfg.maxClients <= 0 {
		return nil, fmt.Errorf("foxglove: WithMaxClients(%d): want a positive bound", cfg.maxClients)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{node: node, cfg: cfg, ctx: ctx, cancel: cancel, budget: colugo.NewQueueBudget(cfg.topicBudget),
		clients: map[*client]struct{}{}, channels: map[chanKey]*channel{}, chanByID: map[uint32]*channel{},
		services: map[chanKey]*service{}, svcByID: map[uint32]*service{}, topics: map[string]*topicSub{},
		own: map[chanKey]*ownPub{}}
	events := node.Events(ctx)
	g.sync()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for range events {
			// Every event means the catalog may have changed: Peers gives
			// the whole current set, which covers dropped events too.
			g.sync()
		}
	}()
	return g, nil
}

// Close disconnects every client and stops the gateway's goroutines. It
// leaves the node open.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.closed = true
	cs := make([]*client, 0, len(g.clients))
	for c := range g.clients {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	g.cancel()
	for _, c := range cs {
		c.conn.CloseNow()
	}
	g.wg.Wait()
	return nil
}

// Stats returns the gateway's counts.
func (g *Gateway) Stats() Stats {
	g.mu.RLock()
	defer g.mu.RUnlock()
	s := Stats{Clients: int(g.connected.Load()), Channels: len(g.channels), Sent: g.sent.Load(), Dropped: g.gone.Load(),
		Refused: g.refused.Load()}
	for c := range g.clients {
		s.Dropped += c.dropped.Load()
	}
	return s
}

// ServeHTTP upgrades the request, on any path, to a Foxglove WebSocket
// connection and serves it until the client leaves or the gateway closes.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cfg.token != "" && !g.tokenOK(r) {
		http.Error(w, "foxglove: missing or wrong token", http.StatusUnauthorized)
		return
	}
	if !offers(r, SubprotocolSDK) && !offers(r, SubprotocolWebsocket) {
		http.Error(w, "foxglove: offer subprotocol "+SubprotocolSDK+" or "+SubprotocolWebsocket, http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		http.Error(w, "foxglove: gateway closed", http.StatusServiceUnavailable)
		return
	}
	if g.admitted >= g.cfg.maxClients {
		g.mu.Unlock()
		g.refused.Add(1)
		http.Error(w, fmt.Sprintf("foxglove: the gateway has as many clients as it takes (%d)", g.cfg.maxClients), http.StatusServiceUnavailable)
		return
	}
	g.admitted++ // given back by serve, or below if Accept fails
	g.wg.Add(1)
	g.mu.Unlock()
	defer g.wg.Done()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{SubprotocolSDK, SubprotocolWebsocket},
		OriginPatterns: g.cfg.origins,
	})
	if err != nil {
		g.mu.Lock()
		g.admitted--
		g.mu.Unlock()
		return // Accept has answered
	}
	conn.SetReadLimit(readLimit)
	g.serve(conn)
}

func (g *Gateway) tokenOK(r *http.Request) bool {
	got := r.URL.Query().Get("token")
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		got = strings.TrimPrefix(a, "Bearer ")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(g.cfg.token)) == 1
}

// offers reports whether the request offers subprotocol p.
func offers(r *http.Request, p string) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, s := range strings.Split(h, ",") {
			if strings.TrimSpace(s) == p {
				return true
			}
		}
	}
	return false
}

// sync brings channels and services in line with the node's peers,
// advertising what appeared and unadvertising what went.
func (g *Gateway) sync() {
	peers := g.node.Peers()
	wantCh := map[chanKey]colugo.TopicInfo{}
	wantSvc := map[chanKey]colugo.TopicInfo{}
	for _, p := range peers {
		for _, t := range p.Topics {
			k := chanKey{t.Name, t.Codec, t.Type}
			if old, ok := wantCh[k]; !ok || (len(old.Schema) == 0 && len(old.JSONSchema) == 0) {
				wantCh[k] = t
			}
		}
		for _, s := range p.Services {
			k := chanKey{s.Name, s.Codec, s.Type}
			if _, ok := wantSvc[k]; !ok {
				wantSvc[k] = s
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.peers = peers
	// What clients publish through this node is a channel for the other
	// clients too (Peers does not list the node itself).
	for k, o := range g.own {
		if _, ok := wantCh[k]; !ok {
			wantCh[k] = o.info
		}
	}
	var added []map[string]any
	var removed []uint32
	for k, ch := range g.channels {
		if _, ok := wantCh[k]; !ok {
			removed = append(removed, ch.id)
			for c := range g.clients { // before the channel goes: it names the topic
				c.dropChannelLocked(ch.id)
			}
			delete(g.channels, k)
			delete(g.chanByID, ch.id)
		}
	}
	for k, t := range wantCh {
		if _, ok := g.channels[k]; ok {
			continue
		}
		g.nextChan++
		ch := &channel{id: g.nextChan, key: k, adv: channelAdvert(g.nextChan, t)}
		g.channels[k], g.chanByID[ch.id] = ch, ch
		added = append(added, ch.adv)
	}
	var svcAdded []map[string]any
	var svcRemoved []uint32
	for k, s := range g.services {
		if _, ok := wantSvc[k]; !ok {
			svcRemoved = append(svcRemoved, s.id)
			delete(g.services, k)
			delete(g.svcByID, s.id)
		}
	}
	for k, t := range wantSvc {
		if _, ok := g.services[k]; ok {
			continue
		}
		g.nextSvc++
		s := newService(g.nextSvc, k, t)
		g.services[k], g.svcByID[s.id] = s, s
		svcAdded = append(svcAdded, s.adv)
	}
	for c := range g.clients {
		if len(removed) > 0 {
			c.sendJSONLocked(map[string]any{"op": "unadvertise", "channelIds": removed})
		}
		if len(added) > 0 {
			c.sendJSONLocked(map[string]any{"op": "advertise", "channels": added})
		}
		if len(svcRemoved) > 0 {
			c.sendJSONLocked(map[string]any{"op": "unadvertiseServices", "serviceIds": svcRemoved})
		}
		if len(svcAdded) > 0 {
			c.sendJSONLocked(map[string]any{"op": "advertiseServices", "services": svcAdded})
		}
	}
	g.graphChangedLocked()
}

// encodingOf is the Foxglove encoding of a colugo codec.
func encodingOf(codecName string) string {
	switch codecName {
	case "json", "protobuf":
		return codecName
	case "raw":
		return EncodingRaw
	}
	return "colugo." + codecName
}

// schemaOf is the schema, its encoding, for a type of codec codecName.
func schemaOf(codecName string, schema, jsonSchema []byte) (s, enc string) {
	switch codecName {
	case "json":
		if len(jsonSchema) > 0 {
			return string(jsonSchema), "jsonschema"
		}
	case "protobuf":
		if len(schema) > 0 {
			return base64.StdEncoding.EncodeToString(schema), "protobuf"
		}
	}
	return "", ""
}

func channelAdvert(id uint32, t colugo.TopicInfo) map[string]any {
	schema, schemaEnc := schemaOf(t.Codec, t.Schema, t.JSONSchema)
	adv := map[string]any{"id": id, "topic": t.Name, "encoding": encodingOf(t.Codec), "schemaName": t.Type, "schema": schema}
	if schemaEnc != "" {
		adv["schemaEncoding"] = schemaEnc
	}
	return adv
}

func newService(id uint32, k chanKey, t colugo.TopicInfo) *service {
	desc := func(typ string, schema, jsonSchema []byte) map[string]any {
		s, enc := schemaOf(t.Codec, schema, jsonSchema)
		return map[string]any{"encoding": encodingOf(t.Codec), "schemaName": typ, "schemaEncoding": enc, "schema": s}
	}
	req, resp := desc(t.Type, t.Schema, t.JSONSchema), desc(t.ReplyType, t.ReplySchema, t.ReplyJSONSchema)
	// requestSchema and responseSchema are the older spec's fields, which
	// older clients read; newer ones read request and response.
	adv := map[string]any{"id": id, "name": t.Name, "type": t.Type, "request": req, "response": resp,
		"requestSchema": req["schema"], "responseSchema": resp["schema"]}
	return &service{id: id, key: k, info: t, adv: adv, requestEncoding: encodingOf(t.Codec)}
}

// acquireTopicLocked takes a reference on topic's colugo subscription
// and reports whether the caller must make it (startTopic, after
// unlocking): making one announces the node's catalog, which must not
// hold up every topic's fan-out under g.mu.
func (g *Gateway) acquireTopicLocked(topic string) (start bool) {
	if ts, ok := g.topics[topic]; ok {
		ts.refs++
		return false
	}
	g.topics[topic] = &topicSub{refs: 1}
	return true
}

// startTopic makes topic's colugo subscription for the entry that
// acquireTopicLocked made, unless that entry is gone by then (every client
// left it, or the gateway closed). A failure ends every client's
// subscription of the topic and is returned.
func (g *Gateway) startTopic(topic string) error {
	g.mu.RLock()
	ts := g.topics[topic]
	g.mu.RUnlock()
	if ts == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(g.ctx)
	// The budget is the bound, which one topic may take whole. A buffer
	// of 1: values waiting in the channel are not counted in the budget,
	// and the default 64 per topic, of any size, would escape it.
	msgs, err := colugo.SubscribeReceived[[]byte](ctx, g.node, topic, colugo.WithAnyCodec(), colugo.WithBuffer(1),
		colugo.WithQueueBytes(g.cfg.topicBudget), colugo.WithQueueBudget(g.budget), colugo.WithDropPolicy(colugo.DropOldest))
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		cancel()
		if g.topics[topic] == ts {
			for c := range g.clients {
				for cid := range c.chanSubs {
					if ch, ok := g.chanByID[cid]; ok && ch.key.topic == topic {
						c.dropChannelLocked(cid)
					}
				}
			}
			delete(g.topics, topic)
			g.graphChangedLocked()
		}
		return err
	}
	if g.closed || g.topics[topic] != ts {
		cancel() // left while it was being made
		return nil
	}
	ts.cancel = cancel
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for m := range msgs {
			g.fanOut(topic, m)
		}
	}()
	return nil
}

// releaseTopicLocked drops a reference on topic's subscription, ending it
// on the last.
func (g *Gateway) releaseTopicLocked(topic string) {
	ts, ok := g.topics[topic]
	if !ok {
		return
	}
	if ts.refs--; ts.refs <= 0 {
		if ts.cancel != nil {
			ts.cancel()
		} // else startTopic sees the entry gone and ends what it makes
		delete(g.topics, topic)
		g.graphChangedLocked()
	}
}

// fanOut queues m for every client subscribed to its channel; it never
// blocks on a client.
func (g *Gateway) fanOut(topic string, m colugo.Received[[]byte]) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	ch, ok := g.channels[chanKey{topic, m.Codec, m.Type}]
	if !ok {
		return
	}
	t := uint64(m.SendTime.UnixNano())
	for c := range g.clients {
		if sid, ok := c.chanSubs[ch.id]; ok {
			c.sendData(sid, t, m.Value)
		}
	}
}

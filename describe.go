package colugo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/internal/jsonschema"
	"github.com/colugo-go/colugo/transport"
)

// describeService is the control request every node answers with its
// PeerInfo as JSON.
const describeService = "$describe"

// PeerInfo describes a node: what $describe returns and Peers lists.
type PeerInfo struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	Version       string      `json:"version"`
	Router        string      `json:"router"`
	Pub           string      `json:"pub"`
	LocalRouter   string      `json:"local_router,omitempty"` // same-host only (Unix socket): preferred when reachable
	LocalPub      string      `json:"local_pub,omitempty"`
	Topics        []TopicInfo `json:"topics"`        // published
	Subscriptions []TopicInfo `json:"subscriptions"` // subscribed
	Services      []TopicInfo `json:"services"`      // served
	// Drops is what the node had lost as a publisher when it was
	// described, nil when nothing: for tools (colugo doctor).
	Drops *PublisherDrops `json:"drops,omitempty"`
	// Status holds the node's status documents (Node.SetStatus) by name,
	// as they were when it was described; nil when it has none. A bridge
	// tells its site, link and counts under "bridge".
	Status map[string]json.RawMessage `json:"status,omitempty"`

	size int // bytes of the $describe reply it was decoded from: what a kept peer's description counts
}

// PublisherDrops is a publishing node's count of what its subscribers
// missed, as its $describe tells.
type PublisherDrops struct {
	// Topics holds TopicStats.Missed of the topics with misses.
	Topics map[string]uint64 `json:"topics,omitempty"`
	// Subscribers lists the subscriber connections that missed messages
	// (at most maxDropRows), from the transport's Stats.
	Subscribers []transport.SubscriberStats `json:"subscribers,omitempty"`
}

// maxDropRows bounds the subscriber connections a $describe lists, sent or
// taken.
const maxDropRows = 64

// TopicInfo names a topic or service with its codec and type. For a
// service, Type is the request's and ReplyType the reply's. Schema (and
// ReplySchema) is the codec's description of the type when it has one
// (codec.Describer: protobuf gives a FileDescriptorSet), so tools can
// decode without the program's types. With the JSON codec, JSONSchema
// (and ReplyJSONSchema) is a JSON Schema (draft 2020-12) of the type's
// encoding, derived from the Go type by reflection when the publisher or
// service is made (subscriptions carry none); it is left out (nil) when the type has
// none (the codec is not JSON, or encoding/json cannot encode the type)
// or when it would be longer than 16 KiB, and peers drop one longer than
// that.
type TopicInfo struct {
	Name            string          `json:"name"`
	Codec           string          `json:"codec"`
	Type            string          `json:"type"`
	Schema          []byte          `json:"schema,omitempty"`
	JSONSchema      json.RawMessage `json:"json_schema,omitempty"`
	ReplyType       string          `json:"reply_type,omitempty"`
	ReplySchema     []byte          `json:"reply_schema,omitempty"`
	ReplyJSONSchema json.RawMessage `json:"reply_json_schema,omitempty"`
	// History is, for a published topic, how many messages the node keeps
	// for late subscribers (WithHistory; 0: none) and, for a subscription,
	// how many it asked for.
	History int `json:"history,omitempty"`
	// Relay, when set, says the node relays the topic or service from or
	// to another network (WithRelay): a bridge's imports and exports.
	Relay *Relay `json:"relay,omitempty"`
}

// maxJSONSchema bounds a TopicInfo's JSONSchema (and ReplyJSONSchema), so
// that a huge type cannot swell $describe: a longer schema is not sent,
// and one received is dropped.
const maxJSONSchema = 16 << 10

// jsonSchemaOf is T's JSON Schema when c is the JSON codec, nil otherwise
// or when T has none within maxJSONSchema.
func jsonSchemaOf[T any](c codec.Codec) json.RawMessage {
	switch c.(type) {
	case codec.JSON, *codec.JSON:
	default:
		return nil
	}
	b, err := jsonschema.Generate(reflect.TypeFor[T](), maxJSONSchema)
	if err != nil {
		return nil
	}
	return b
}

// boundJSONSchemas drops a peer's schemas that are over maxJSONSchema or
// null.
func boundJSONSchemas(infos []TopicInfo) {
	for i := range infos {
		for _, s := range []*json.RawMessage{&infos[i].JSONSchema, &infos[i].ReplyJSONSchema} {
			if len(*s) > maxJSONSchema || string(*s) == "null" {
				*s = nil
			}
		}
	}
}

// catalogHashLocked summarises what peers learn from $describe, so they
// re-read it when it changes.
func (n *Node) catalogHashLocked() string {
	var lines []string
	for _, p := range n.pubs {
		lines = append(lines, "t\x00"+p.info.Name+"\x00"+p.info.Codec+"\x00"+p.info.Type+"\x00"+strconv.Itoa(p.info.History))
	}
	for _, s := range n.services {
		lines = append(lines, "s\x00"+s.info.Name+"\x00"+s.info.Codec+"\x00"+s.info.Type)
	}
	for t, ss := range n.subs { // peers count subscribers (Publisher.Subscribers)
		lines = append(lines, "u\x00"+t+"\x00"+strconv.Itoa(len(ss)))
	}
	for name := range n.status { // the names only: their contents change at will
		lines = append(lines, "x\x00"+name)
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// catalogChanged re-announces the node after its publishers, services or
// subscriptions changed. Called without n.mu. The caller announces, as
// one would expect, unless an announcement is under way on another
// goroutine: then that one announces again once done, with the state of
// the time, so a burst of changes (a thousand Subscribe calls at once)
// costs a few announcements (registry writes, mDNS updates), not one
// each, and its callers do not queue behind one another.
func (n *Node) catalogChanged() {
	n.mu.Lock()
	n.catalog = n.catalogHashLocked()
	n.mu.Unlock()
	n.announceAgain.Store(true)
	for n.announcing.CompareAndSwap(false, true) {
		for n.announceAgain.Swap(false) {
			n.mu.Lock()
			self := n.selfLocked()
			n.mu.Unlock()
			if n.closed.Load() {
				break
			}
			if err := n.disc.Update(self); err != nil {
				n.log.Warn("discovery update failed", slog.Any(keyError, err))
			}
		}
		n.announcing.Store(false)
		if !n.announceAgain.Load() { // else a change came after the last check: announce it
			return
		}
	}
}

// description is what $describe returns: a PeerInfo and, from a keyed
// node, each topic's publish sequence number at the time (seqs), which a
// peer takes as the baseline of its replay checks (seal.Guard.Describe).
type description struct {
	PeerInfo
	Seqs map[string]uint64 `json:"seqs,omitempty"`
}

// describeJSON is the payload of this node's $describe reply.
func (n *Node) describeJSON() ([]byte, error) {
	d := description{PeerInfo: n.describe()}
	d.Status = n.statusDocs() // not under n.mu: the status functions may use the node
	if n.keys != nil {
		n.mu.Lock()
		seqs := maps.Clone(n.seqs)
		n.mu.Unlock()
		// Not under n.mu: a back-pressured publish holds its topic's lock
		// while the transport waits (up to its maxWait), which must not
		// stall the node.
		d.Seqs = make(map[string]uint64, len(seqs))
		for t, s := range seqs {
			// Under the topic's lock: every publish numbered up to the
			// value read has been handed to the transport, so none can
			// reach a subscription made after this reply.
			d.Seqs[t] = s.baseline()
		}
	}
	return json.Marshal(d)
}

// describe returns what this node tells peers about itself.
func (n *Node) describe() PeerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	info := PeerInfo{ID: n.id, Name: n.name, Version: Version, Router: n.ep.Router, Pub: n.ep.Pub,
		LocalRouter: n.ep.LocalRouter, LocalPub: n.ep.LocalPub,
		Topics: []TopicInfo{}, Subscriptions: []TopicInfo{}, Services: []TopicInfo{}}
	for _, p := range n.pubs {
		info.Topics = append(info.Topics, p.info)
	}
	for _, ss := range n.subs {
		for _, s := range ss {
			info.Subscriptions = append(info.Subscriptions, s.info)
		}
	}
	for _, s := range n.services {
		info.Services = append(info.Services, s.info)
	}
	info.Drops = n.dropsLocked()
	byName := func(a, b TopicInfo) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(info.Topics, byName)
	slices.SortFunc(info.Subscriptions, byName)
	slices.SortFunc(info.Services, byName)
	return info
}

// dropsLocked is what describe tells of this node's publisher-side losses.
func (n *Node) dropsLocked() *PublisherDrops {
	var d PublisherDrops
	for name, c := range n.counters {
		if m := c.missed.Load(); m > 0 {
			if d.Topics == nil {
				d.Topics = map[string]uint64{}
			}
			d.Topics[name] = m
		}
	}
	for _, s := range n.tr.Stats().Subscribers {
		if s.Dropped > 0 && len(d.Subscribers) < maxDropRows {
			d.Subscribers = append(d.Subscribers, s)
		}
	}
	if d.Topics == nil && d.Subscribers == nil {
		return nil
	}
	return &d
}

func decodeDescription(b []byte) (*PeerInfo, error) {
	var info PeerInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("colugo: bad $describe reply: %w", err)
	}
	if info.ID == "" || info.Router == "" {
		return nil, errors.New("colugo: bad $describe reply: no id or router")
	}
	boundJSONSchemas(info.Topics)
	boundJSONSchemas(info.Subscriptions)
	boundJSONSchemas(info.Services)
	boundRelays(info.Topics)
	boundRelays(info.Subscriptions)
	boundRelays(info.Services)
	boundStatus(&info)
	if info.Drops != nil && len(info.Drops.Subscribers) > maxDropRows {
		info.Drops.Subscribers = info.Drops.Subscribers[:maxDropRows]
	}
	return &info, nil
}

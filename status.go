package colugo

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Relay says that a node relays a topic or service between its own network
// and another, as a bridge does: what it publishes or serves comes from
// there, what it subscribes to goes there. WithRelay sets it; a node's
// $describe carries it as TopicInfo.Relay.
type Relay struct {
	// Via names the means, e.g. "nats" for the NATS bridge. A Relay
	// without it is none.
	Via string `json:"via"`
	// Remote names the other side, when known: for a bridge, the remote
	// site.
	Remote string `json:"remote,omitempty"`
	// Name is the topic's or service's name on the other side: for a
	// bridge, the NATS subject.
	Name string `json:"name,omitempty"`
}

// maxRelayField bounds each field of a Relay: WithRelay cuts a longer
// one, and a peer's Relay with a longer one is dropped.
const maxRelayField = 255

// RelayOption is valid on a publisher, a subscription and a server.
type RelayOption interface {
	PublisherOption
	SubscribeOption
	ServeOption
}

// WithRelay marks a publisher, subscription or server as relaying: its
// TopicInfo in the node's $describe carries r (TopicInfo.Relay), so that
// tools (colugo doctor) tell relayed topics and services from the node's
// own. It changes nothing else. Fields longer than 255 bytes are cut (on
// a UTF-8 boundary); a Relay without Via marks nothing. Default: none.
func WithRelay(r Relay) RelayOption {
	r = Relay{Via: cut(r.Via, maxRelayField), Remote: cut(r.Remote, maxRelayField), Name: cut(r.Name, maxRelayField)}
	if r.Via == "" {
		return relayOption{}
	}
	return relayOption{&r}
}

type relayOption struct{ r *Relay }

func (o relayOption) applyPublisher(c *topicConfig) { c.relay = o.r }
func (o relayOption) applySubscribe(c *subConfig)   { c.relay = o.r }
func (o relayOption) applyServe(c *topicConfig)     { c.relay = o.r }
func (o relayOption) String() string {
	if o.r == nil {
		return "WithRelay()"
	}
	return fmt.Sprintf("WithRelay(%s %s %s)", o.r.Via, o.r.Remote, o.r.Name)
}

// cut returns s, or its longest prefix of valid UTF-8 within n bytes.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// boundRelays drops a peer's relays that are out of bounds.
func boundRelays(infos []TopicInfo) {
	for i := range infos {
		if r := infos[i].Relay; r != nil &&
			(r.Via == "" || len(r.Via) > maxRelayField || len(r.Remote) > maxRelayField || len(r.Name) > maxRelayField) {
			infos[i].Relay = nil
		}
	}
}

// MaxStatusBytes bounds a status document (SetStatus) in its JSON
// encoding: a longer one is left out of the node's $describe, and one
// received is dropped.
const MaxStatusBytes = 16 << 10

// Bounds on status documents, sent or taken: how many a node carries, and
// their names' length.
const (
	maxStatusDocs = 8
	maxStatusName = 64
)

// SetStatus makes this node's $describe carry a status document named
// name, PeerInfo.Status[name]: the JSON encoding of what f returns, called
// each time the node is described, so that the document is current then.
// f is called without the node's locks (it may use the node), possibly
// on several goroutines at once; it should be quick, since the $describe
// reply waits for it. A nil f removes the document. SetStatus is safe for
// concurrent use.
//
// A document that cannot be encoded, or whose encoding is longer than
// MaxStatusBytes, is left out; peers drop such a document too.
//
// Peers read a node's $describe when it joins and again when its catalog
// changes. The names of its status documents belong to the catalog:
// setting a new name, or removing one, has peers read it again. A new
// value of f's does not, so that a status whose counters move all the time
// costs nothing until someone asks: a peer's Peers shows the document as
// of the last time the peer described the node, and a tool that wants it
// current describes the node afresh (colugo doctor and colugo nodes start
// a node of their own, which does).
//
// name is 1 to 64 bytes of 'a'-'z', '0'-'9', '.', '-' and '_'; a node
// carries at most 8 documents. Errors: ErrInvalidOption for another name,
// or a ninth one.
func (n *Node) SetStatus(name string, f func() any) error {
	if !validStatusName(name) {
		return fmt.Errorf("%w: status name %q: 1 to %d bytes of a-z, 0-9, '.', '-', '_'", ErrInvalidOption, name, maxStatusName)
	}
	n.mu.Lock()
	_, had := n.status[name]
	switch {
	case f == nil && !had:
		n.mu.Unlock()
		return nil
	case f == nil:
		delete(n.status, name)
	case !had && len(n.status) >= maxStatusDocs:
		n.mu.Unlock()
		return fmt.Errorf("%w: more than %d status documents", ErrInvalidOption, maxStatusDocs)
	default:
		if n.status == nil {
			n.status = map[string]func() any{}
		}
		n.status[name] = f
	}
	n.mu.Unlock()
	if f == nil || !had { // the names changed: peers read $describe again
		n.catalogChanged()
	}
	return nil
}

func validStatusName(name string) bool {
	if name == "" || len(name) > maxStatusName {
		return false
	}
	for i := range len(name) {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// statusDocs calls the node's status functions, without n.mu, and returns
// their documents, nil when there are none.
func (n *Node) statusDocs() map[string]json.RawMessage {
	n.mu.Lock()
	fs := maps.Clone(n.status)
	n.mu.Unlock()
	var out map[string]json.RawMessage
	for name, f := range fs {
		b, err := json.Marshal(f())
		if err != nil || len(b) > MaxStatusBytes || string(b) == "null" {
			continue
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[name] = b
	}
	return out
}

// boundStatus drops a peer's status documents that are out of bounds, and
// keeps the first maxStatusDocs of the others, by name.
func boundStatus(info *PeerInfo) {
	for name, doc := range info.Status {
		if !validStatusName(name) || len(doc) > MaxStatusBytes || string(doc) == "null" {
			delete(info.Status, name)
		}
	}
	if len(info.Status) > maxStatusDocs {
		for _, name := range slices.Sorted(maps.Keys(info.Status))[maxStatusDocs:] {
			delete(info.Status, name)
		}
	}
	if len(info.Status) == 0 {
		info.Status = nil
	}
}

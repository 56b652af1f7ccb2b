// Package discovery defines how colugo nodes find each other, and provides
// Static (fixed seed addresses) and Multi (several mechanisms at once).
// discovery/local finds nodes on the same host through a registry directory;
// discovery/mdns (separate package) finds them on a LAN.
//
// A Discovery announces one node (itself) and reports the others as
// [Event] values. It says who exists and where; liveness and catalogs
// (topics, services) are confirmed by the Node over the transport.
package discovery

import (
	"errors"
	"fmt"
)

// Peer describes a node as discovery sees it.
type Peer struct {
	// ID is unique per node process. Static seeds start with no ID; the
	// Node learns it from the peer's $describe reply.
	ID string
	// Name is the node's name as given to NewNode; not unique.
	Name string
	// Router is the address of the node's request endpoint ("host:port").
	Router string
	// Pub is the address of the node's publisher endpoint; may be empty
	// when the mechanism cannot carry it (static seeds).
	Pub string
	// Catalog is a short hash of the node's topics and services. When it
	// changes, the Node re-reads the peer's $describe.
	Catalog string
}

// Key identifies a peer across events: its ID, or its router address when
// the ID is not known yet.
func (p Peer) Key() string {
	if p.ID != "" {
		return p.ID
	}
	return "addr:" + p.Router
}

// EventKind says what happened to a peer.
type EventKind uint8

// Event kinds.
const (
	Joined EventKind = 1 + iota
	Updated
	Left
)

func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Updated:
		return "updated"
	case Left:
		return "left"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event reports a peer that joined, changed (address or catalog) or left.
type Event struct {
	Kind EventKind
	Peer Peer
}

// Discovery announces this node and reports the others.
//
// A Discovery value is used by one Node: Start once, then Update any number
// of times, then Close. Implementations never report the announcing node
// itself (same ID).
type Discovery interface {
	// Start announces self and starts looking for peers. Events arrive on
	// the returned channel until Close; the implementation closes the
	// channel when Close returns. Events for one peer arrive in order.
	// The consumer must keep reading; implementations may coalesce or
	// drop Updated events for a consumer that lags, never Joined or Left.
	Start(self Peer) (<-chan Event, error)

	// Update re-announces self after its Catalog (or addresses) changed.
	Update(self Peer) error

	// Close withdraws the announcement, stops looking, waits for the
	// implementation's goroutines and closes the event channel. It is
	// idempotent.
	Close() error
}

// A Settler is a Discovery that can tell when its first look is over: when
// it has reported every peer that it could find as it started. The Node
// waits for it in [github.com/colugo-go/colugo.Node.WaitDiscovered], so
// that a tool or bridge can act on the whole network rather than on
// whichever peers answered first.
type Settler interface {
	// Settled returns a channel that is closed once every peer the first
	// look found has been sent on Start's channel (events sent before it
	// closes are in that channel, or were read from it). It is the same
	// channel on every call and is never closed before Start succeeds; a
	// Discovery whose Start failed or that was closed first may leave it
	// open for ever.
	Settled() <-chan struct{}
}

// Errors shared by implementations.
var (
	ErrClosed  = errors.New("colugo/discovery: closed")
	ErrStarted = errors.New("colugo/discovery: already started")
)

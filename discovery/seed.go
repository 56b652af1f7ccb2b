package discovery

import "fmt"

// SeedKind is the kind of socket a node of the Python colugo (the seed)
// announces: its TXT socket_type, a ZeroMQ socket type number.
type SeedKind uint8

// Seed socket kinds: only servers are announced.
const (
	SeedPub SeedKind = 1 // a publisher (ZeroMQ PUB)
	SeedRep SeedKind = 4 // a reply server (ZeroMQ REP)
)

func (k SeedKind) String() string {
	switch k {
	case SeedPub:
		return "pub"
	case SeedRep:
		return "rep"
	}
	return fmt.Sprintf("SeedKind(%d)", uint8(k))
}

// SeedSocket is one announced socket of a seed node: the seed announces
// one DNS-SD instance per publisher and reply server, named
// _<topic>._<node uuid>, whose TXT carries topic, socket_type and
// node_uuid.
type SeedSocket struct {
	// Instance is the DNS-SD instance name: the socket's identity across
	// events.
	Instance string
	// Topic is the topic (or service) name the socket carries.
	Topic string
	Kind  SeedKind
	// UUID is the seed node's node_uuid: new for every start of it.
	UUID string
	// Addr is where the socket listens ("ip:port", IPv4).
	Addr string
	// Colugo marks the seed-style record of a colugo-go node's
	// seed-visible topic or service (its TXT has colugo-go=1): a node in
	// seed compatibility mode ignores these, since it reaches that node on
	// colugo's own wire, where its messages would otherwise arrive twice.
	Colugo bool
}

// SeedEvent reports a seed socket that appeared (Joined) or went (Left:
// a goodbye, or its records expired). Updated is never reported: the seed
// ignores updates too, and a seed node that restarts is a new instance.
type SeedEvent struct {
	Kind   EventKind
	Socket SeedSocket
}

// SeedDirectory finds the sockets of seed nodes and announces seed-style
// records for this node's seed-visible topics and services (discovery/mdns
// implements it on the seed's own service type). It is separate from a
// Discovery: a seed socket is not a colugo node (no $describe, no
// liveness), and a node without seed compatibility pays nothing for it.
//
// A SeedDirectory is used by one Node: Start once, Announce any number of
// times, then Close.
type SeedDirectory interface {
	// Start starts looking for seed sockets. Events arrive on the returned
	// channel until Close, which closes it. Events of one instance arrive
	// in order; the consumer must keep reading.
	Start() (<-chan SeedEvent, error)

	// Announce registers a seed-style record for one socket of this node,
	// listening on port on the addresses the directory announces; name
	// must be one the seed can carry. Each call uses a fresh node uuid, so
	// that seed clients see a new instance after any change or restart.
	// withdraw sends the goodbye; it is idempotent.
	Announce(name string, kind SeedKind, port int) (withdraw func() error, err error)

	// Close withdraws every record, stops looking and closes the event
	// channel. It is idempotent.
	Close() error
}

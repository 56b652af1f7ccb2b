package colugo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// Timing of the node's own housekeeping.
const (
	describeTimeout = 2 * time.Second
	// localProbeTimeout bounds the check that a peer's same-host address
	// reaches it (a Unix socket answers in microseconds, or not at all).
	localProbeTimeout = 300 * time.Millisecond
	refreshInterval   = time.Second            // re-describes peers that discovery cannot tell about changes (static seeds) or that failed
	tailInterval      = 500 * time.Millisecond // tail markers for topics whose latest publish a subscriber missed (sendTails)
	tailQuiet         = 50 * time.Millisecond  // ... that have not been published on for this long
	closeWarnAfter    = 5 * time.Second
)

// peer is a node found by discovery, with what $describe told about it.
type peer struct {
	key        string
	info       discovery.Peer
	desc       *PeerInfo // nil until described
	pubAddr    string    // where to subscribe
	dialRouter string    // where to send requests: Router, or LocalRouter when reachable
	describing bool
	tried      bool            // a $describe of it has ended (answered or not)
	again      bool            // describe again when the current one ends
	down       bool            // a request to it failed; skipped until described again
	self       bool            // a seed that turned out to be this node
	dup        bool            // the same node as another peer entry (found twice)
	announced  bool            // Joined was emitted to Events watchers
	checking   bool            // a liveness check is running
	lost       bool            // stopped answering: reported Left, asked again by refresh
	subscribed map[string]bool // topic -> back-pressure asked
}

// Peers returns the nodes this node has found and described, sorted by name
// then ID. It does not include the node itself.
func (n *Node) Peers() []PeerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []PeerInfo
	for _, p := range n.peers {
		if p.visible() {
			out = append(out, *p.desc)
		}
	}
	slices.SortFunc(out, func(a, b PeerInfo) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// notifyChangedLocked wakes requests waiting for a replier.
func (n *Node) notifyChangedLocked() {
	n.clearTargetsLocked()
	close(n.changed)
	n.changed = make(chan struct{})
}

// runDiscovery applies discovery events and periodically re-describes peers
// whose changes discovery cannot report. When settled (nil: no Settler)
// closes, it applies the events discovery sent before, then closes
// n.settled; a discovery whose channel ends first has nothing more to
// find, so that closes n.settled too.
func (n *Node) runDiscovery(events <-chan discovery.Event, settled <-chan struct{}) {
	tick := time.NewTicker(refreshInterval)
	defer tick.Stop()
	tails := time.NewTicker(tailInterval)
	defer tails.Stop()
	defer func() {
		if settled != nil {
			n.markSettled()
		}
	}()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			n.onEvent(ev)
		case <-settled:
			for drained := false; !drained; {
				select {
				case ev, ok := <-events:
					if !ok {
						return
					}
					n.onEvent(ev)
				default:
					drained = true
				}
			}
			settled = nil
			n.markSettled()
		case <-tick.C:
			n.refresh()
		case <-tails.C:
			n.sendTails()
		case <-n.ctx.Done():
			return
		}
	}
}

func (n *Node) markSettled() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.settled)
	n.notifyChangedLocked() // wakes WaitDiscovered
}

func (n *Node) onEvent(ev discovery.Event) {
	if ev.Peer.ID == n.id {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onEventLocked(ev)
}

func (n *Node) onEventLocked(ev discovery.Event) {
	key := ev.Peer.Key()
	switch ev.Kind {
	case discovery.Joined, discovery.Updated:
		p := n.peers[key]
		if bad := n.refusedFound(ev.Peer); bad != "" {
			n.refuse(bad, fromDiscovery, ev.Peer.Name)
			if p != nil { // moved somewhere it may not be reached: gone for us
				n.removePeerLocked(p)
			}
			return
		}
		if p == nil {
			if len(n.peers) >= n.cfg.maxPeers {
				n.waitPeerLocked(ev.Peer)
				return
			}
			n.peersFull = false
			delete(n.waiting, key)
			p = &peer{key: key, subscribed: make(map[string]bool)}
			n.peers[key] = p
			n.log.Info("peer found", slog.String(keyPeer, ev.Peer.Name), slog.String(keyRouter, ev.Peer.Router))
		} else if p.info.Router != ev.Peer.Router || p.info.Pub != ev.Peer.Pub {
			n.forgetLocked(p) // moved: what we had with the old addresses is stale
			n.dropDescLocked(p)
		}
		stale := p.desc == nil || ev.Peer.Catalog == "" || ev.Peer.Catalog != p.info.Catalog
		p.info = ev.Peer
		if stale {
			n.describeLocked(p)
		}
	case discovery.Left:
		p := n.peers[key]
		if p == nil {
			delete(n.waiting, key)
			return
		}
		if p.desc != nil && n.guard != nil {
			n.guard.Forget(p.desc.ID) // described again if it comes back
		}
		n.removePeerLocked(p)
		n.log.Info("peer left", slog.String(keyPeer, ev.Peer.Name), slog.String(keyRouter, ev.Peer.Router))
	}
}

// WaitDiscovered waits until this node has looked once at the whole
// network: its discovery has reported the nodes it found as it started,
// and each of them (and any found since) has answered its $describe or
// failed to (a failed one is asked again later, without holding this up).
// From then on, [Node.Peers] and the node's subscriptions and requests
// cover the nodes that were there when the node started. A tool that
// lists the network or a bridge that delivers a backlog waits for it
// first.
//
// How long the first look takes depends on the discovery: the host-local
// registry's is one read of its directory (at once), static seeds' is
// their list (at once), mDNS's is its first browse session (1 s), and a
// Multi's is its slowest source's. A [discovery.Discovery] that is not a
// [discovery.Settler] is taken as settled at once, so WaitDiscovered then
// waits only for the nodes it has reported. The wait does not cover a
// node's subscribers connecting to this node's publishers: for that, see
// [Publisher.WaitSubscribers]. It returns nil, ctx's error, or ErrClosed
// when the node closes. Safe for concurrent use.
func (n *Node) WaitDiscovered(ctx context.Context) error {
	return n.waitUntil(ctx, 0, func() bool {
		if !isClosed(n.settled) {
			return false
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, p := range n.peers {
			if p.desc == nil && !p.tried {
				return false
			}
		}
		return true
	})
}

// waitUntil blocks until done reports true, checking it whenever the peer
// catalog changes and, if poll > 0, every poll too (for what changes
// without telling the node). It returns nil, ctx's error, or ErrClosed
// when the node closes. done takes the locks it needs: it is called
// without any.
func (n *Node) waitUntil(ctx context.Context, poll time.Duration, done func() bool) error {
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		if n.closed.Load() {
			return ErrClosed
		}
		// Taken before done looks, so a change made while it looks still
		// wakes this wait.
		n.mu.Lock()
		changed := n.changed
		n.mu.Unlock()
		if done() {
			return nil
		}
		select {
		case <-changed:
		case <-tick:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// forgetLocked drops subscriptions to p and fails requests in flight to it.
func (n *Node) forgetLocked(p *peer) {
	for t := range p.subscribed {
		_ = n.tr.Unsubscribe(p.pubAddr, t)
	}
	clear(p.subscribed)
	if p.pubAddr != "" {
		n.tr.Disconnect(p.pubAddr)
	}
	n.tr.Disconnect(p.info.Router)
	if p.dialRouter != "" && p.dialRouter != p.info.Router {
		n.tr.Disconnect(p.dialRouter)
	}
}

func (n *Node) refresh() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if !p.self && (p.desc == nil || p.down || p.lost || p.info.Catalog == "") {
			n.describeLocked(p)
		}
	}
}

// describeLocked asks p for its $describe in the background; one at a time
// per peer.
func (n *Node) describeLocked(p *peer) {
	if n.closed.Load() {
		return
	}
	if p.describing {
		p.again = true
		return
	}
	p.describing = true
	router := p.info.Router
	n.goLocked(func() {
		for {
			info, err := n.fetchDescription(router)
			local := ""
			if err == nil && info.LocalRouter != "" && !n.addrs.allowed(info.LocalRouter, fromDescribe, router) {
				n.refuse(info.LocalRouter, fromDescribe, info.Name)
			} else if err == nil && info.LocalRouter != "" {
				// Same host? Then the local address answers, as the same node.
				if li, lerr := n.fetchDescriptionFrom(info.LocalRouter, info.ID, localProbeTimeout); lerr == nil && li.ID == info.ID {
					local = info.LocalRouter
				}
			}
			n.mu.Lock()
			if n.peers[p.key] != p {
				n.mu.Unlock()
				return
			}
			if errors.Is(err, errDescriptionTooLarge) {
				n.log.Warn("peer description refused", slog.String(keyRouter, router), slog.Any(keyError, err))
			} else if err != nil {
				n.log.Debug("describe failed", slog.String(keyRouter, router), slog.Any(keyError, err))
			} else {
				n.applyDescriptionLocked(p, info, local)
			}
			if !p.tried {
				p.tried = true
				n.notifyChangedLocked() // wakes WaitDiscovered
			}
			if !p.again || n.closed.Load() {
				p.describing = false
				n.mu.Unlock()
				return
			}
			p.again = false
			n.mu.Unlock()
		}
	})
}

func (n *Node) fetchDescription(router string) (*PeerInfo, error) {
	return n.fetchDescriptionTimeout(router, describeTimeout)
}

func (n *Node) fetchDescriptionTimeout(router string, timeout time.Duration) (*PeerInfo, error) {
	return n.fetchDescriptionFrom(router, "", timeout)
}

// fetchDescriptionFrom asks the router for its $describe. id is the node
// expected there, to which a sealed request is bound ("": not known, or
// not certain: the address may belong to another node by now).
func (n *Node) fetchDescriptionFrom(router, id string, timeout time.Duration) (*PeerInfo, error) {
	ctx, cancel := context.WithTimeout(n.ctx, timeout)
	defer cancel()
	seq := n.reqSeq.Add(1)
	req := &transport.Message{Name: describeService, Header: wire.Header{
		Kind: transport.KindControl, Codec: "json", Sender: n.id, SendTime: n.sendClock(),
		Deadline: int64(timeout), Seq: seq,
	}}
	n.sealMsg(req, binding{peer: id})
	rep, err := n.tr.Request(ctx, router, req)
	if err != nil {
		return nil, err
	}
	if err = n.openMsg(rep, binding{peer: n.id, seq: seq}); err != nil {
		return nil, err
	}
	if rep.Header.Status != 0 {
		return nil, &RemoteError{Service: describeService, Code: Code(rep.Header.Status), Message: rep.Header.Error}
	}
	if len(rep.Payload) > maxDescription {
		n.peersRefused.Add(1)
		return nil, errDescriptionTooLarge
	}
	info, err := decodeDescription(rep.Payload)
	if info != nil {
		info.size = len(rep.Payload)
	}
	if err != nil || n.guard == nil || info.ID == n.id {
		return info, err
	}
	// The reply is bound to this request, so it is fresh: its sequence
	// numbers are the sender's baseline (before this node subscribes).
	var d description
	if err := json.Unmarshal(rep.Payload, &d); err != nil {
		return nil, fmt.Errorf("colugo: bad $describe reply: %w", err)
	}
	n.guard.Describe(info.ID, d.Seqs)
	return info, nil
}

// applyDescriptionLocked records what p's $describe said. local is its
// LocalRouter when that answered, else "".
func (n *Node) applyDescriptionLocked(p *peer, info *PeerInfo, local string) {
	p.self = info.ID == n.id
	if p.self {
		return
	}
	if p.info.ID != "" && info.ID != p.info.ID {
		// The address discovery gave now belongs to another node (a stale
		// entry, or an address only valid on the announcer's host).
		n.log.Debug("peer address answered with another id", slog.String(keyRouter, p.info.Router),
			slog.String("want", p.info.ID), slog.String("got", info.ID))
		p.down = true
		return
	}
	oldSize := 0
	if p.desc != nil {
		oldSize = p.desc.size
	}
	if n.descBytes-oldSize+info.size > maxDescriptions {
		n.peersRefused.Add(1)
		n.log.Warn("peer description refused: the kept ones hold 256 MiB already", slog.String(keyPeer, info.Name),
			slog.String(keyRouter, p.info.Router), slog.Int("bytes", info.size))
		p.down = true
		return
	}
	n.descBytes += info.size - oldSize
	old := p.desc
	p.desc, p.down, p.lost = info, false, false
	pubAddr, dialRouter := pubAddress(p.info, info), p.info.Router
	if src := pubSource(p.info); pubAddr != "" && !n.addrs.allowed(pubAddr, src, p.info.Router) {
		n.refuse(pubAddr, src, info.Name)
		pubAddr = "" // requests still work; nothing is subscribed to
	}
	if local != "" && info.LocalPub != "" {
		if n.addrs.allowed(info.LocalPub, fromDescribe, p.info.Router) {
			pubAddr, dialRouter = info.LocalPub, local
		} else {
			n.refuse(info.LocalPub, fromDescribe, info.Name)
		}
	}
	if p.pubAddr != "" && p.pubAddr != pubAddr { // moved (say, to the Unix socket): resubscribe there
		for t := range p.subscribed {
			_ = n.tr.Unsubscribe(p.pubAddr, t)
		}
		clear(p.subscribed)
		n.tr.Disconnect(p.pubAddr)
	}
	p.pubAddr, p.dialRouter = pubAddr, dialRouter
	p.dup = false
	for _, o := range n.peers {
		if o != p && o.desc != nil && o.desc.ID == info.ID && !o.dup {
			p.dup = true // found twice (two discovery mechanisms): use the first
		}
	}
	if p.visible() {
		n.matchPatternsLocked(p.desc.Topics) // before subscribing: its new topics are subscribed with the rest
		// Before subscribing, as in addSub: the history subscriptions
		// hold p's first live messages while they fetch its history.
		for _, t := range p.desc.Topics {
			for _, s := range n.subs[t.Name] {
				if s.hist != nil {
					n.notePeerLocked(s, p)
				}
			}
		}
	}
	n.syncPeerLocked(p)
	n.notifyChangedLocked()
	switch {
	case !p.visible():
	case !p.announced:
		p.announced = true
		n.emitLocked(discovery.Joined, *info)
	case old == nil || !sameCatalog(old, info):
		n.emitLocked(discovery.Updated, *info)
	}
}

// sameCatalog compares two descriptions but for their drop counts, which
// are no reason for an Updated event.
func sameCatalog(a, b *PeerInfo) bool {
	x, y := *a, *b
	x.Drops, y.Drops = nil, nil
	return reflect.DeepEqual(x, y)
}

// pubSource says where pubAddress took its address from.
func pubSource(found discovery.Peer) string {
	if found.Pub != "" {
		return fromDiscovery
	}
	return fromDescribe
}

// refusedFound returns the first address of a discovered peer that the node
// may not dial, or "".
func (n *Node) refusedFound(p discovery.Peer) string {
	for _, a := range []string{p.Router, p.Pub} {
		if a != "" && !n.addrs.allowed(a, fromDiscovery, p.Router) {
			return a
		}
	}
	return ""
}

// pubAddress is where to subscribe to a peer: the address discovery gave,
// else the described port on the host discovery reached the router at (the
// peer may not know which of its addresses we can reach). Either is then
// checked by addrCheck.allowed.
func pubAddress(found discovery.Peer, info *PeerInfo) string {
	if found.Pub != "" {
		return found.Pub
	}
	host, _, err1 := net.SplitHostPort(found.Router)
	_, port, err2 := net.SplitHostPort(info.Pub)
	if err1 != nil || err2 != nil {
		return info.Pub
	}
	return net.JoinHostPort(host, port)
}

// syncPeerLocked makes the subscriptions to p match what p publishes and
// what this node subscribes to, with back-pressure asked for the topics
// that have a Block subscription (p.subscribed holds what was asked).
func (n *Node) syncPeerLocked(p *peer) {
	want := map[string]bool{}
	if p.visible() && p.pubAddr != "" { // "": its publisher address was refused
		for _, t := range p.desc.Topics {
			if len(n.subs[t.Name]) > 0 {
				want[t.Name] = n.backPressureLocked(t.Name)
			}
		}
	}
	for t, bp := range want {
		if had, ok := p.subscribed[t]; !ok || had != bp {
			if err := n.tr.Subscribe(p.pubAddr, t, transport.SubscribeOptions{BackPressure: bp}); err != nil {
				n.log.Warn("subscribe failed", slog.String(keyTopic, t), slog.String(keyPeer, p.info.Name), slog.Any(keyError, err))
				continue
			}
			p.subscribed[t] = bp
		}
	}
	for t := range p.subscribed {
		if _, ok := want[t]; !ok {
			_ = n.tr.Unsubscribe(p.pubAddr, t)
			delete(p.subscribed, t)
		}
	}
}

// markDown records that a request to router failed for want of a peer.
func (n *Node) markDown(router string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if p.info.Router == router || p.dialRouter == router {
			p.down = true
		}
	}
	n.clearTargetsLocked()
}

// Liveness: a peer whose connection dropped is asked for its $describe at
// once; if it does not answer within livenessTimeout it is reported Left.
// A connection dropped for silence (the transport's heartbeats: nothing
// heard for 2s) means the peer leaves at once, within about 2.5s of its
// last sign of life.
const (
	livenessTimeout = 500 * time.Millisecond
)

func (p *peer) visible() bool { return p.desc != nil && !p.self && !p.dup && !p.lost }

// peerLost is called when a connection to addr (a peer's router or
// publisher) dropped: the peer may have died, or only closed one
// connection. Ask it; leave it if it does not answer.
func (n *Node) peerLost(addr string, cause error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if !p.visible() || (p.info.Router != addr && p.pubAddr != addr && p.dialRouter != addr) {
			continue
		}
		if errors.Is(cause, transport.ErrPeerSilent) {
			// Silent for the whole heartbeat timeout already: asking again
			// would only add a timeout of our own.
			n.loseLocked(p, cause)
			continue
		}
		if !p.checking {
			p.checking = true
			router := p.info.Router
			n.goLocked(func() {
				_, err := n.fetchDescriptionTimeout(router, livenessTimeout)
				n.mu.Lock()
				defer n.mu.Unlock()
				p.checking = false
				if err == nil || n.peers[p.key] != p {
					return
				}
				n.loseLocked(p, err)
			})
		}
	}
}

// removePeerLocked forgets p and reports it Left if it was visible.
func (n *Node) removePeerLocked(p *peer) {
	delete(n.peers, p.key)
	n.forgetLocked(p)
	if p.announced && p.desc != nil {
		n.emitLocked(discovery.Left, *p.desc)
	}
	n.dropDescLocked(p)
	n.notifyChangedLocked()
	n.takeWaitingLocked()
}

// waitPeerLocked keeps found, a node found while WithMaxPeers peers are
// kept, to be taken when one leaves: at most maxPeers of them wait, the
// oldest forgotten first (a flood's records push out each other).
func (n *Node) waitPeerLocked(found discovery.Peer) {
	n.peersRefused.Add(1)
	if !n.peersFull {
		n.peersFull = true
		n.log.Warn("peers ignored: as many kept as WithMaxPeers allows (a flood of discovery records?)",
			slog.Int("max_peers", n.cfg.maxPeers), slog.String(keyPeer, found.Name), slog.String(keyRouter, found.Router))
	}
	key := found.Key()
	if _, ok := n.waiting[key]; !ok {
		n.waitOrder = append(n.waitOrder, key)
	}
	n.waiting[key] = found
	for len(n.waiting) > n.cfg.maxPeers {
		delete(n.waiting, n.waitOrder[0])
		n.waitOrder = n.waitOrder[1:]
	}
	if len(n.waitOrder) > 2*n.cfg.maxPeers { // compact the keys of those that left
		n.waitOrder = slices.DeleteFunc(n.waitOrder, func(k string) bool { _, ok := n.waiting[k]; return !ok })
	}
}

// takeWaitingLocked takes the oldest waiting node into the room a peer
// that left made.
func (n *Node) takeWaitingLocked() {
	for len(n.waitOrder) > 0 && len(n.peers) < n.cfg.maxPeers {
		key := n.waitOrder[0]
		n.waitOrder = n.waitOrder[1:]
		if found, ok := n.waiting[key]; ok {
			delete(n.waiting, key)
			n.onEventLocked(discovery.Event{Kind: discovery.Joined, Peer: found})
		}
	}
}

// dropDescLocked forgets p's description and gives back its size.
func (n *Node) dropDescLocked(p *peer) {
	if p.desc != nil {
		n.descBytes -= p.desc.size
		p.desc = nil
	}
}

// Bounds of what peers' descriptions hold (WithMaxPeers' doc says them):
// one reply, and all the kept ones together.
const (
	maxDescription  = 16 << 20
	maxDescriptions = 256 << 20
)

// errDescriptionTooLarge: a $describe reply over maxDescription.
var errDescriptionTooLarge = fmt.Errorf("colugo: $describe reply over %d bytes", maxDescription)

// loseLocked reports p Left after it stopped answering, but keeps it in
// the peer table: the periodic refresh keeps asking it, so a peer that was
// frozen or cut off comes back (Joined) without discovery's help, while
// discovery's own Left still removes it for good.
func (n *Node) loseLocked(p *peer, cause error) {
	n.log.Info("peer lost", slog.String(keyPeer, p.info.Name), slog.String(keyRouter, p.info.Router), slog.Any(keyError, cause))
	n.forgetLocked(p)
	p.lost = true
	if p.announced && p.desc != nil {
		p.announced = false
		n.emitLocked(discovery.Left, *p.desc)
	}
	n.notifyChangedLocked()
}

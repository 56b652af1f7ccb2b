package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
)

// graph starts a node, waits for discovery (c.discover) and returns the
// peers it found.
func (c *cli) graph() ([]colugo.PeerInfo, *colugo.Node, error) {
	n, err := c.node()
	if err != nil {
		return nil, nil, err
	}
	if err := c.discover(n); err != nil {
		_ = n.Close()
		return nil, nil, err
	}
	return append(others(n.Peers()), seedPeers(n)...), n, nil
}

// seedPeers lists the seed nodes that --seed found as peers named "seed"
// (id seed:<node uuid>), one per seed node: their publishers as topics,
// their reply servers as services, codec raw (the seed's frames name
// none) and no type.
func seedPeers(n *colugo.Node) []colugo.PeerInfo {
	var out []colugo.PeerInfo
	at := map[string]int{}
	for _, s := range n.SeedSockets() {
		i, ok := at[s.UUID]
		if !ok {
			i = len(out)
			at[s.UUID] = i
			out = append(out, colugo.PeerInfo{ID: "seed:" + s.UUID, Name: "seed"})
		}
		p := &out[i]
		t := colugo.TopicInfo{Name: s.Topic, Codec: "raw"}
		switch s.Kind {
		case discovery.SeedPub:
			p.Topics = append(p.Topics, t)
			p.Pub = s.Addr
		case discovery.SeedRep:
			p.Services = append(p.Services, t)
			p.Router = s.Addr
		}
	}
	return out
}

// others drops the nodes of other colugo CLI invocations that only look:
// nodes, topics, services and doctor (topics and doctor subscribe for a
// moment to measure), and any colugo- node with no endpoint at all.
func others(peers []colugo.PeerInfo) []colugo.PeerInfo {
	return slices.DeleteFunc(peers, func(p colugo.PeerInfo) bool {
		if !strings.HasPrefix(p.Name, "colugo-") || len(p.Topics) > 0 || len(p.Services) > 0 {
			return false
		}
		switch p.Name {
		case "colugo-nodes", "colugo-topics", "colugo-services", "colugo-doctor":
			return true
		}
		return len(p.Subscriptions) == 0
	})
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func runNodes(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 0 {
		return usageErr("nodes takes no arguments")
	}
	peers, n, err := c.graph()
	if err != nil {
		return err
	}
	defer n.Close()
	if c.json {
		for _, p := range peers {
			if err := writeJSON(c.stdout, p); err != nil {
				return err
			}
		}
		return nil
	}
	if len(peers) == 0 {
		fmt.Fprintf(c.stderr, "colugo nodes: no nodes found (discovery %s, --wait %v)\n", c.discoveryName(), c.wait)
		return nil
	}
	// A BRIDGE column when some node is one: its site and link state.
	bridges := slices.ContainsFunc(peers, func(p colugo.PeerInfo) bool { return p.Status[bridgeStatusName] != nil })
	var tb table
	head := []any{"NAME", "ID", "ROUTER", "PUB", "PUBLISHES", "HISTORY", "SUBSCRIBES", "SERVES"}
	if bridges {
		head = append(head, "BRIDGE")
	}
	tb.add(head...)
	for _, p := range peers {
		row := []any{p.Name, p.ID, p.Router, p.Pub, names(p.Topics), kept(p.Topics), names(p.Subscriptions), names(p.Services)}
		if bridges {
			row = append(row, bridgeCell(p))
		}
		tb.add(row...)
	}
	return tb.write(c.stdout)
}

// bridgeCell is a node's BRIDGE cell: "site lab, link up"; "-" for a node
// that is no bridge.
func bridgeCell(p colugo.PeerInfo) string {
	b, err := bridgeOf(p)
	switch {
	case err != nil:
		return "unreadable status"
	case b == nil:
		return "-"
	}
	return "site " + b.Site + ", link " + b.Stats.Link
}

// bridgeStatusName is the name of a bridge's status document in its
// node's $describe (bridge.StatusName; this binary does not link the
// bridge module, which brings NATS).
const bridgeStatusName = "bridge"

// bridgeStatus is what the CLI reads of a bridge's status document: the
// parts of bridge.Status that nodes and doctor show (JSON names as there;
// TestBridgeStatusMirror keeps them in step).
type bridgeStatus struct {
	Site      string      `json:"site"`
	ID        string      `json:"id"`
	Server    string      `json:"server"`
	Export    bridgeRules `json:"export"`
	Import    bridgeRules `json:"import"`
	Exporting bridgeNames `json:"exporting"`
	Importing bridgeNames `json:"importing"`
	Stats     struct {
		Link            string          `json:"link"`
		Reconnects      uint64          `json:"reconnects"`
		Disconnects     uint64          `json:"disconnects"`
		JetStreamErrors uint64          `json:"jetstream_errors"`
		JetStreamError  string          `json:"jetstream_error"`
		Spooled         uint64          `json:"spooled"`
		Queued          uint64          `json:"queued"`
		ExportRefused   uint64          `json:"export_refused"`
		Export          bridgeDirection `json:"export"`
		Import          bridgeDirection `json:"import"`
	} `json:"stats"`
	Truncated bool `json:"truncated"`
}

type bridgeRules struct {
	Topics   []bridgeRule `json:"topics"`
	Services []bridgeRule `json:"services"`
}

type bridgeRule struct {
	Name       string  `json:"name"`
	Prefix     string  `json:"prefix"`
	MaxRate    float64 `json:"max_rate"`
	MaxPayload int     `json:"max_payload"`
	JetStream  bool    `json:"jetstream"`
}

type bridgeNames struct {
	Topics   []string `json:"topics"`
	Services []string `json:"services"`
}

type bridgeDirection struct {
	Messages      uint64 `json:"messages"`
	Requests      uint64 `json:"requests"`
	RequestErrors uint64 `json:"request_errors"`
	// Drops by reason (bridge.Drops), kept as a map so that reasons a
	// newer bridge adds are shown too.
	Drops map[string]uint64 `json:"drops"`
}

// bridgeOf decodes p's bridge status: nil, nil for a node that is no
// bridge.
func bridgeOf(p colugo.PeerInfo) (*bridgeStatus, error) {
	doc := p.Status[bridgeStatusName]
	if doc == nil {
		return nil, nil
	}
	var b bridgeStatus
	if err := json.Unmarshal(doc, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// kept lists the published topics a node keeps history for, with the
// depth (TopicInfo.History): "robot/map=1,robot/goal=10"; "-" for none.
func kept(ts []colugo.TopicInfo) string {
	var out []string
	for _, t := range ts {
		if e := t.Name + "=" + strconv.Itoa(t.History); t.History > 0 && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

func names(ts []colugo.TopicInfo) string {
	if len(ts) == 0 {
		return "-"
	}
	var out []string
	for _, t := range ts {
		if !slices.Contains(out, t.Name) {
			out = append(out, t.Name)
		}
	}
	return strings.Join(out, ",")
}

// endpoint is one node's side of a topic or service.
type endpoint struct {
	Node   string `json:"node"`
	ID     string `json:"id"`
	Codec  string `json:"codec"` // "*" for a subscription that takes every codec (a tool)
	Type   string `json:"type"`
	Schema bool   `json:"schema,omitempty"` // advertises a schema (protobuf descriptors)
	Reply  string `json:"reply_type,omitempty"`
	// History is, for a publisher, the messages it keeps for late
	// subscribers; for a subscriber, the messages it asked each publisher
	// for (TopicInfo.History; 0: none).
	History int `json:"history,omitempty"`
}

type topicRow struct {
	Name        string     `json:"name"`
	Rate        *float64   `json:"rate_hz,omitempty"` // measured by topics over --wait, from send times
	History     int        `json:"history"`           // the greatest depth a publisher keeps (0: none offers history)
	Publishers  []endpoint `json:"publishers"`
	Subscribers []endpoint `json:"subscribers"`
}

func topicRows(peers []colugo.PeerInfo) []*topicRow {
	by := map[string]*topicRow{}
	get := func(name string) *topicRow {
		r := by[name]
		if r == nil {
			r = &topicRow{Name: name, Publishers: []endpoint{}, Subscribers: []endpoint{}}
			by[name] = r
		}
		return r
	}
	for _, p := range peers {
		for _, t := range p.Topics {
			r := get(t.Name)
			r.Publishers = append(r.Publishers, endpoint{p.Name, p.ID, t.Codec, t.Type, len(t.Schema) > 0, "", t.History})
			r.History = max(r.History, t.History)
		}
		for _, t := range p.Subscriptions {
			r := get(t.Name)
			e := endpoint{p.Name, p.ID, t.Codec, t.Type, len(t.Schema) > 0, "", t.History}
			if !slices.Contains(r.Subscribers, e) { // one node may subscribe several times
				r.Subscribers = append(r.Subscribers, e)
			}
		}
	}
	rows := make([]*topicRow, 0, len(by))
	for _, r := range by {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b *topicRow) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

// codecsTypes summarises the codecs and the types of endpoints, as two
// cells: "json", "main.Pose" (several: "json | raw").
func codecsTypes(es []endpoint) (string, string) {
	var cs, ts []string
	for _, e := range es {
		c, t := e.Codec, e.Type
		if c == "*" {
			c, t = "any", "-"
		}
		if !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
		if !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	if len(cs) == 0 {
		return "-", "-"
	}
	return strings.Join(cs, " | "), strings.Join(ts, " | ")
}

// kinds summarises the codecs and types of endpoints: "json main.Pose".
func kinds(es []endpoint) string {
	var out []string
	for _, e := range es {
		k := e.Codec + " " + e.Type
		if e.Codec == "*" {
			k = "any codec"
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, " | ")
}

func nodeNames(es []endpoint) string {
	if len(es) == 0 {
		return "-"
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Node
	}
	return strings.Join(out, ",")
}

func topicsFlags(fs *flag.FlagSet, c *cli) {
	fs.BoolVar(&c.measure, "hz", true, "measure each topic's rate over --wait (subscribes to every topic meanwhile; --hz=false: do not)")
}

func runTopics(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 0 {
		return usageErr("topics takes no arguments")
	}
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	var rates map[string]float64
	if c.measure {
		rates = measureRates(c.ctx, n, c.wait)
	} else if err := c.discover(n); err != nil {
		return err
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	rows := topicRows(append(others(n.Peers()), seedPeers(n)...))
	for _, r := range rows {
		if v, ok := rates[r.Name]; ok && v > 0 {
			r.Rate = &v
		}
	}
	if c.json {
		for _, r := range rows {
			if err := writeJSON(c.stdout, r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintf(c.stderr, "colugo topics: no topics found (discovery %s, --wait %v)\n", c.discoveryName(), c.wait)
		return nil
	}
	var tb table
	if c.measure {
		tb.add("TOPIC", "CODEC", "TYPE", "RATE", "HISTORY", "PUBLISHERS", "SUBSCRIBERS")
	} else {
		tb.add("TOPIC", "CODEC", "TYPE", "HISTORY", "PUBLISHERS", "SUBSCRIBERS")
	}
	for _, r := range rows {
		kc, kt := codecsTypes(r.Publishers)
		if len(r.Publishers) == 0 {
			kc, kt = codecsTypes(r.Subscribers)
		}
		if c.measure {
			rate := "-"
			if r.Rate != nil {
				rate = hzString(*r.Rate) + " Hz"
			}
			tb.add(r.Name, kc, kt, rate, historyCell(r), nodeNames(r.Publishers), nodeNames(r.Subscribers))
		} else {
			tb.add(r.Name, kc, kt, historyCell(r), nodeNames(r.Publishers), nodeNames(r.Subscribers))
		}
	}
	return tb.write(c.stdout)
}

// historyCell is a topic's HISTORY: the greatest depth its publishers
// keep, "-" when none does, and how many of them do when not all: a
// subscriber asking for history gets it from those only.
func historyCell(r *topicRow) string {
	if r.History == 0 {
		return "-"
	}
	offer := offering(r.Publishers)
	if len(offer) < len(r.Publishers) {
		return fmt.Sprintf("%d (%d of %d publishers)", r.History, len(offer), len(r.Publishers))
	}
	return strconv.Itoa(r.History)
}

// offering returns the endpoints with history (publishers that keep some,
// subscriptions that asked for some).
func offering(es []endpoint) []endpoint {
	var out []endpoint
	for _, e := range es {
		if e.History > 0 {
			out = append(out, e)
		}
	}
	return out
}

// measureRates subscribes to every topic published by a peer as peers are
// found, for d, and returns each topic's publishing rate from the
// publishers' send times (see window): a topic needs two consecutive
// messages of one publisher within d to have a rate.
func measureRates(ctx context.Context, n *colugo.Node, d time.Duration) map[string]float64 {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	windows := map[string]*window{}
	var wg sync.WaitGroup
	for ev := range n.Events(ctx) {
		for _, t := range ev.Peer.Topics {
			mu.Lock()
			seen := windows[t.Name] != nil
			if !seen {
				windows[t.Name] = newWindow(time.Now())
			}
			w := windows[t.Name]
			mu.Unlock()
			if seen {
				continue
			}
			ch, err := subscribeAll(ctx, n, t.Name, 1024)
			if err != nil {
				continue // the node is closing; the topic gets no rate
			}
			wg.Go(func() {
				for m := range ch {
					mu.Lock()
					w.add(received{at: m.RecvTime, sent: m.SendTime, sender: m.Sender, seq: m.Seq, data: m.Value})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	out := map[string]float64{}
	for name, w := range windows {
		out[name] = w.rate()
	}
	return out
}

type serviceRow struct {
	Name    string     `json:"name"`
	Servers []endpoint `json:"servers"`
}

func serviceRows(peers []colugo.PeerInfo) []*serviceRow {
	by := map[string]*serviceRow{}
	for _, p := range peers {
		for _, s := range p.Services {
			r := by[s.Name]
			if r == nil {
				r = &serviceRow{Name: s.Name}
				by[s.Name] = r
			}
			r.Servers = append(r.Servers, endpoint{p.Name, p.ID, s.Codec, s.Type, len(s.Schema) > 0, s.ReplyType, 0})
		}
	}
	rows := make([]*serviceRow, 0, len(by))
	for _, r := range by {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b *serviceRow) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

func runServices(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 0 {
		return usageErr("services takes no arguments")
	}
	peers, n, err := c.graph()
	if err != nil {
		return err
	}
	defer n.Close()
	rows := serviceRows(peers)
	if c.json {
		for _, r := range rows {
			if err := writeJSON(c.stdout, r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintf(c.stderr, "colugo services: no services found (discovery %s, --wait %v)\n", c.discoveryName(), c.wait)
		return nil
	}
	var tb table
	tb.add("SERVICE", "CODEC", "REQUEST-TYPE", "REPLY-TYPE", "SERVERS")
	for _, r := range rows {
		reply := "-"
		if len(r.Servers) > 0 && r.Servers[0].Reply != "" {
			reply = r.Servers[0].Reply
		}
		kc, kt := codecsTypes(r.Servers)
		tb.add(r.Name, kc, kt, reply, nodeNames(r.Servers))
	}
	return tb.write(c.stdout)
}

// ---- doctor ----

func doctorFlags(fs *flag.FlagSet, c *cli) {
	fs.DurationVar(&c.listen, "listen", time.Second, "subscribe to every published topic this long to count losses (0: skip)")
}

// finding is one line of the doctor's report.
type finding struct {
	Level   string `json:"level"` // ok, info, warn, problem
	Area    string `json:"area"`
	Message string `json:"message"`
}

func runDoctor(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 0 {
		return usageErr("doctor takes no arguments")
	}
	var fs []finding
	add := func(level, area, format string, a ...any) {
		fs = append(fs, finding{level, area, fmt.Sprintf(format, a...)})
	}
	if c.discovery != "" {
		_ = os.Setenv(colugo.EnvDiscovery, c.discovery)
	}
	mech := c.discoveryName()
	add("info", "discovery", "mechanisms: %s", mech)
	if strings.Contains(mech, "local") {
		dir := registryDir()
		entries, err := os.ReadDir(dir)
		switch {
		case os.IsNotExist(err):
			add("info", "discovery", "host registry %s does not exist yet (no node has run here as this user)", dir)
		case err != nil:
			add("problem", "discovery", "host registry %s unreadable: %v", dir, err)
		default:
			nodes := 0 // each node has <id>.json and <id>.lock there
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".json") {
					nodes++
				}
			}
			add("ok", "discovery", "host registry %s: %d nodes announced", dir, nodes)
		}
	}
	if strings.Contains(mech, "mdns") {
		ifs := multicastInterfaces()
		if len(ifs) == 0 {
			add("warn", "discovery", "mDNS: no interface is up and multicast-capable (besides loopback): peers on other hosts cannot be found")
		} else {
			add("ok", "discovery", "mDNS interfaces: %s", strings.Join(ifs, ", "))
		}
	}
	n, err := c.node()
	if err != nil {
		add("problem", "node", "%v", err)
		return c.report(fs)
	}
	defer n.Close()
	add("ok", "node", "started %s on router %s, pub %s", n.Name(), n.Endpoint().Router, n.Endpoint().Pub)
	if err := c.discover(n); err != nil {
		return err
	}
	peers := others(n.Peers())
	if len(peers) == 0 && len(n.SeedSockets()) > 0 {
		add("info", "peers", "no colugo peer found (--wait %v); seed nodes only (below)", c.wait)
	} else if len(peers) == 0 {
		add("warn", "peers", "no peer found (--wait %v): are nodes running, as the same user, with the same discovery?", c.wait)
	} else {
		var ps []string
		for _, p := range peers {
			ps = append(ps, p.Name+"@"+p.Router)
		}
		add("ok", "peers", "%d described (so reachable): %s", len(peers), strings.Join(ps, " "))
	}
	for _, r := range topicRows(peers) {
		checkTopic(r, add)
		checkHistory(r, add)
	}
	for _, r := range serviceRows(peers) {
		if k := kinds(r.Servers); strings.Contains(k, " | ") {
			add("warn", "service "+r.Name, "servers disagree: %s (a caller matches only some)", k)
		}
	}
	for _, p := range peers {
		publisherDrops(p, add)
		checkBridge(p, add)
	}
	if c.seed {
		checkSeeds(c, n, add)
	}
	if c.listen > 0 {
		listen(c, n, peers, add)
	}
	st := n.Stats().Transport
	add("info", "transport", "this node: send dropped %d, frames refused %d, peers lost %d, handshakes refused %d",
		st.SendDropped, st.RecvDropped, st.PeersLost, st.ConnsRefused)
	return c.report(fs)
}

// publisherDrops reports what a peer's subscribers missed at the peer as
// publisher (send queues full), as its $describe said: per topic, and per
// subscriber connection.
func publisherDrops(p colugo.PeerInfo, add func(level, area, format string, a ...any)) {
	if p.Drops == nil {
		return
	}
	topics := slices.Sorted(maps.Keys(p.Drops.Topics))
	for _, t := range topics {
		add("warn", "topic "+t, "%s: subscriber connections missed %d messages (publisher's send queue full; see also Gaps at the subscribers)",
			p.Name, p.Drops.Topics[t])
	}
	for _, s := range p.Drops.Subscribers {
		state := "recovered"
		if s.Slow {
			state = "slow now"
		}
		add("warn", "publisher "+p.Name, "subscriber connection %s missed %d messages (%s; %d topics, %d with back-pressure, %d queued)",
			s.Remote, s.Dropped, state, s.Topics, s.BackPressure, s.Queued)
	}
}

// checkBridge reports a bridge node, as its status document says: site and
// link (down: a warning), what it exports and imports (entries, and what
// crosses now), and its drop counts (each non-zero reason a finding: a
// warning, or information for the drops that its config or the topology
// makes on purpose: downsampling, loops cut, JetStream redeliveries).
func checkBridge(p colugo.PeerInfo, add func(level, area, format string, a ...any)) {
	b, err := bridgeOf(p)
	if b == nil && err == nil {
		return
	}
	area := "bridge " + p.Name
	if err != nil {
		add("warn", area, "unreadable bridge status in $describe: %v", err)
		return
	}
	link := fmt.Sprintf("site %s, bridge id %s: link %s", b.Site, b.ID, b.Stats.Link)
	if b.Server != "" {
		link += " to " + b.Server
	}
	link += fmt.Sprintf(" (%d disconnects, %d reconnects)", b.Stats.Disconnects, b.Stats.Reconnects)
	if b.Stats.Link == "up" {
		add("ok", area, "%s", link)
	} else {
		add("warn", area, "%s: nothing crosses; what goes to NATS is held in the reconnect buffer, then dropped", link)
	}
	// What it imports now: its topics and services marked as relayed.
	relayed := func(ts []colugo.TopicInfo) []string {
		var out []string
		for _, t := range ts {
			switch r := t.Relay; {
			case r == nil:
			case r.Remote != "":
				out = append(out, t.Name+" (from "+r.Remote+")")
			default:
				out = append(out, t.Name)
			}
		}
		return out
	}
	add("info", area, "exports %s; exporting now: %s", rulesText(b.Export),
		crossing(b.Exporting.Topics, b.Exporting.Services))
	add("info", area, "imports %s; importing now: %s", rulesText(b.Import),
		crossing(relayed(p.Topics), relayed(p.Services)))
	if b.Truncated {
		add("info", area, "its status lists were cut to fit $describe")
	}
	if b.Stats.JetStreamErrors > 0 {
		add("warn", area, "%d failed attempts at making JetStream streams or consumers, or at storing in the streams (retried until they succeed)", b.Stats.JetStreamErrors)
		if b.Stats.JetStreamError != "" {
			add("warn", area, "last JetStream failure: %s", b.Stats.JetStreamError)
		}
	}
	if b.Stats.ExportRefused > 0 {
		add("warn", area, "%d topics matching its export patterns not exported: max_export_topics reached", b.Stats.ExportRefused)
	}
	if b.Stats.Queued > 0 {
		add("info", area, "%.1f KiB queued for export, waiting for NATS", float64(b.Stats.Queued)/1024)
	}
	if b.Stats.Spooled > 0 {
		add("info", area, "%d JetStream messages held until their stream has them (spool)", b.Stats.Spooled)
	}
	for _, d := range []struct {
		name string
		dir  bridgeDirection
	}{{"export", b.Stats.Export}, {"import", b.Stats.Import}} {
		if d.dir.RequestErrors > 0 {
			add("info", area, "%s: %d of %d requests failed (answered with an error)", d.name, d.dir.RequestErrors, d.dir.Requests)
		}
		var warn, info []string
		for _, reason := range slices.Sorted(maps.Keys(d.dir.Drops)) {
			v := d.dir.Drops[reason]
			if v == 0 {
				continue
			}
			e := fmt.Sprintf("%s %d", reason, v)
			if expectedDrop[reason] {
				info = append(info, e)
			} else {
				warn = append(warn, e)
			}
		}
		if len(warn) > 0 {
			add("warn", area, "%s drops: %s (of %d forwarded)", d.name, strings.Join(append(warn, info...), ", "), d.dir.Messages)
		} else if len(info) > 0 {
			add("info", area, "%s drops: %s (of %d forwarded; by its config or the topology)", d.name, strings.Join(info, ", "), d.dir.Messages)
		}
	}
}

// expectedDrop names the drop reasons of a bridge that are its config's
// or the topology's doing, not a loss: downsampling (max_rate), loops cut,
// JetStream redeliveries of what the site had.
var expectedDrop = map[string]bool{"rate": true, "loop": true, "duplicate": true}

// rulesText lists a bridge's entries: "topics robot/** (prefix lab, 10 Hz,
// jetstream); services math/add"; "nothing" for none.
func rulesText(r bridgeRules) string {
	one := func(x bridgeRule) string {
		var o []string
		if x.Prefix != "" {
			o = append(o, "prefix "+x.Prefix)
		}
		if x.MaxRate > 0 {
			o = append(o, strconv.FormatFloat(x.MaxRate, 'g', -1, 64)+" Hz")
		}
		if x.MaxPayload > 0 {
			o = append(o, "max "+strconv.Itoa(x.MaxPayload)+" B")
		}
		if x.JetStream {
			o = append(o, "jetstream")
		}
		if len(o) == 0 {
			return x.Name
		}
		return x.Name + " (" + strings.Join(o, ", ") + ")"
	}
	var out []string
	for _, l := range []struct {
		kind  string
		rules []bridgeRule
	}{{"topics", r.Topics}, {"services", r.Services}} {
		if len(l.rules) == 0 {
			continue
		}
		var rs []string
		for _, x := range l.rules {
			rs = append(rs, one(x))
		}
		out = append(out, l.kind+" "+strings.Join(rs, ", "))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, "; ")
}

// crossing lists the topics and services crossing a bridge: "topics a, b;
// services c"; "none".
func crossing(topics, services []string) string {
	var out []string
	if len(topics) > 0 {
		out = append(out, "topics "+strings.Join(topics, ", "))
	}
	if len(services) > 0 {
		out = append(out, "services "+strings.Join(services, ", "))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// checkSeeds reports the seed sockets --seed found (doctor's other checks
// are of colugo nodes, whose $describe the seed has no equivalent of):
// how many, of how many seed nodes, and each node's.
func checkSeeds(c *cli, n *colugo.Node, add func(level, area, format string, a ...any)) {
	seeds := seedPeers(n)
	if len(seeds) == 0 {
		add("warn", "seed", "no seed socket found within %v (--wait): are seed nodes running, on a network this host's mDNS reaches?", c.wait)
		return
	}
	add("ok", "seed", "%d seed sockets of %d seed nodes", len(n.SeedSockets()), len(seeds))
	for _, s := range n.SeedSockets() {
		kind := "publishes"
		if s.Kind == discovery.SeedRep {
			kind = "serves"
		}
		add("info", "seed "+s.UUID, "%s %s at %s", kind, s.Topic, s.Addr)
	}
}

// checkTopic reports codec disagreements (messages refused) and type
// disagreements (refused for protobuf, information for JSON).
func checkTopic(r *topicRow, add func(level, area, format string, a ...any)) {
	area := "topic " + r.Name
	if len(r.Publishers) == 0 {
		add("info", area, "subscribed by %s but nobody publishes it", nodeNames(r.Subscribers))
		return
	}
	all := append(slices.Clone(r.Publishers), r.Subscribers...)
	problems := false
	for _, p := range r.Publishers {
		if p.Codec == "protobuf" && !p.Schema {
			add("info", area, "%s publishes protobuf %s without a descriptor in $describe: tools cannot decode it", p.Node, p.Type)
		}
		for _, s := range r.Subscribers {
			switch {
			case s.Codec == "*": // a tool taking every codec (record, echo)
			case p.Codec != s.Codec:
				problems = true
				add("problem", area, "codec mismatch: %s publishes %s, %s subscribes with %s: every message is refused (ErrCodecMismatch)",
					p.Node, p.Codec, s.Node, s.Codec)
			case p.Type != s.Type && p.Codec == "protobuf":
				problems = true
				add("problem", area, "type mismatch: %s publishes %s, %s expects %s: every message is refused", p.Node, p.Type, s.Node, s.Type)
			case p.Type != s.Type && s.Type != "[]uint8":
				add("info", area, "type names differ (%s publishes %s, %s decodes %s): allowed for %s, check the fields agree",
					p.Node, p.Type, s.Node, s.Type, p.Codec)
			}
		}
	}
	switch {
	case len(r.Subscribers) == 0:
		add("info", area, "published by %s (%s), no subscriber", nodeNames(r.Publishers), kinds(all))
	case !problems:
		add("ok", area, "publishers %s and subscribers %s agree (%s)", nodeNames(r.Publishers), nodeNames(r.Subscribers), kinds(r.Publishers))
	}
}

// checkHistory reports where history was asked for (a subscription's
// TopicInfo.History) and nobody offers it: those subscriptions get live
// messages only (colugo.ErrNoHistory), which a late joiner waiting for a
// latched value sees as silence. It also lists who offers history.
func checkHistory(r *topicRow, add func(level, area, format string, a ...any)) {
	area := "topic " + r.Name
	askers, offer := offering(r.Subscribers), offering(r.Publishers)
	var without []string
	for _, p := range r.Publishers {
		if p.History == 0 && !slices.Contains(without, p.Node) {
			without = append(without, p.Node)
		}
	}
	switch {
	case len(askers) > 0 && len(r.Publishers) == 0:
		add("warn", area, "history asked for by %s, but nobody publishes the topic", depths(askers))
	case len(askers) > 0 && len(offer) == 0:
		add("warn", area, "history asked for by %s, but no publisher offers it (%s): they get live messages only; publish with colugo.WithHistory(n)",
			depths(askers), keepNone(without))
	case len(offer) > 0 && len(without) > 0 && len(askers) > 0:
		add("info", area, "history offered by %s; %s: %s get live messages only from those",
			depths(offer), keepNone(without), nodeNames(askers))
	}
	if len(offer) > 0 {
		asked := "no subscriber asks for it"
		if len(askers) > 0 {
			asked = "asked for by " + depths(askers)
		}
		add("ok", area, "offers history: %s; %s", depths(offer), asked)
	}
}

// keepNone says which nodes keep no history: "a keeps none", "a,b keep none".
func keepNone(nodes []string) string {
	if len(nodes) == 1 {
		return nodes[0] + " keeps none"
	}
	return strings.Join(nodes, ",") + " keep none"
}

// depths names endpoints with their history: "viewer (depth 1), log (depth 10)".
func depths(es []endpoint) string {
	var out []string
	for _, e := range es {
		if s := fmt.Sprintf("%s (depth %d)", e.Node, e.History); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

// listen subscribes to every published topic for c.listen and reports
// what this node's Stats counted: gaps are messages lost between publisher
// and subscriber.
func listen(c *cli, n *colugo.Node, peers []colugo.PeerInfo, add func(level, area, format string, a ...any)) {
	ctx, cancel := context.WithTimeout(c.ctx, c.listen)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	subs := 0
	for _, r := range topicRows(peers) {
		if len(r.Publishers) == 0 {
			continue
		}
		ch, err := subscribeAll(ctx, n, r.Name, 4096)
		if err != nil {
			add("problem", "topic "+r.Name, "cannot subscribe: %v", err)
			continue
		}
		subs++
		wg.Go(func() {
			for range ch { // drained until ctx ends: the node's counters are what we want
			}
		})
	}
	if subs == 0 {
		return
	}
	<-ctx.Done()
	for name, t := range n.Stats().Topics {
		level := "ok"
		if t.Gaps > 0 || t.DecodeErrors > 0 {
			level = "warn"
		}
		add(level, "topic "+name, "listened %v: received %d, gaps %d (lost before reaching us), decode errors %d",
			c.listen, t.Received, t.Gaps, t.DecodeErrors)
	}
}

func (c *cli) report(fs []finding) error {
	problems := 0
	if c.json {
		for _, f := range fs {
			if err := writeJSON(c.stdout, f); err != nil {
				return err
			}
		}
	} else {
		var tb table
		for _, f := range fs {
			tb.add(strings.ToUpper(f.Level), f.Area, f.Message)
		}
		if err := tb.write(c.stdout); err != nil {
			return err
		}
	}
	for _, f := range fs {
		if f.Level == "problem" {
			problems++
		}
	}
	if problems > 0 {
		return fmt.Errorf("%d problem(s) found", problems)
	}
	return nil
}

// registryDir is discovery/local's default directory (documented there).
func registryDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		return filepath.Join(d, "colugo")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "colugo")
	}
	return "(unknown)"
}

func multicastInterfaces() []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagMulticast != 0 && i.Flags&net.FlagLoopback == 0 {
			out = append(out, i.Name)
		}
	}
	return out
}

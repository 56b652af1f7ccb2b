package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/colugo-go/colugo/bridge"
)

// A Bridge run joins two colugo sites through NATS, every part in a
// process of its own, as a deployment runs: site a (this process: the
// publisher or the client), site a's bridge, a nats-server, site b's
// bridge and site b (a child: the subscriber or the server). Each site
// has a host-local registry directory of its own, so the sites see each
// other only through NATS; the bridges export and import the bench topic
// (publisher's site → subscriber's) or service (server's site → client's).
//
// Pub/sub: this process publishes on site a, the subscriber child is on
// site b. Requests: this process calls on site b, the server child is on
// site a, so both flows start in this process and end in a child.

// roleBridge is a child that runs one site's bridge.
const roleBridge = "bridge"

// bridgeRole tells a bridge child its site and what it carries.
type bridgeRole struct {
	Site   string
	Export bool // export the bench topic or service (else import it)
	// Service: the bench service (else the bench topic).
	Service bool
}

// bridgeConfig is the bridge of cfg's site: the bench topics or service,
// exported or imported, nothing else.
func bridgeConfig(cfg childConfig) bridge.Config {
	c := bridge.Config{Site: cfg.Bridge.Site, NATS: bridge.NATS{URLs: []string{cfg.URL}}}
	side := &c.Import
	if cfg.Bridge.Export {
		side = &c.Export
	}
	if cfg.Bridge.Service {
		side.Services = []bridge.Service{{Name: service}}
	} else {
		t := bridge.Topic{Name: topicName(0, cfg.W.topics())}
		if cfg.W.JetStream {
			t.JetStream = &bridge.JetStream{}
			if cfg.Bridge.Export { // room for every run's messages
				t.JetStream.MaxBytes = 1 << 30
			}
		}
		side.Topics = []bridge.Topic{t}
	}
	return c
}

// bridgeChild runs a site's bridge until stdin closes. "B" asks for its
// drop counts: "B {bridgeDrops}".
func bridgeChild(cfg childConfig, lines <-chan string, out *lineWriter) error {
	if cfg.Bridge == nil {
		return errors.New("bridge child without a bridge role")
	}
	m, err := newNodeMaker(false, cfg.Dir)
	if err != nil {
		return err
	}
	defer m.close()
	node, err := m.node("bench-bridge-" + cfg.Bridge.Site)
	if err != nil {
		return err
	}
	br, err := bridge.New(node, bridgeConfig(cfg))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// Ready once linked: the run's warm-up waits for the rest.
	for deadline := time.Now().Add(setupTimeout); br.Stats().Link != bridge.LinkUp; {
		if time.Now().After(deadline) {
			return fmt.Errorf("bridge %s: no link to %s within %v", cfg.Bridge.Site, cfg.URL, setupTimeout)
		}
		time.Sleep(2 * time.Millisecond) // polling with a deadline
	}
	out.printf("ready")
	for line := range lines {
		if line == "B" {
			b, err := json.Marshal(dropsOf(br.Stats()))
			if err != nil {
				return err
			}
			out.printf("B %s", b)
		}
	}
	return nil
}

// bridgeDrops is what a bridge counted as lost: everything its export and
// its import side dropped (queue, link, rate, payload, limits, failures),
// loop refusals excepted (none here: one bridge per site).
type bridgeDrops struct {
	Export, Import uint64
}

func dropsOf(st bridge.Stats) bridgeDrops {
	sum := func(d bridge.Drops) uint64 {
		return d.Queue + d.Link + d.Rate + d.Payload + d.Limit + d.Failed + d.BadHeader + d.BadSubject
	}
	return bridgeDrops{sum(st.Export.Drops), sum(st.Import.Drops)}
}

// bridgeRig is the processes of a Bridge run but this one.
type bridgeRig struct {
	dirA, dirB string // the sites' registries
	url        string
	kids       []*child // nats-server, bridge a, bridge b
}

// newBridgeRig starts a nats-server and the two sites' bridges, for the
// bench topic (service false) or service, from site a to site b. When it
// fails, it has undone what it did.
func newBridgeRig(w Workload, lim Limits, service bool) (_ *bridgeRig, err error) {
	r := &bridgeRig{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	for _, d := range []*string{&r.dirA, &r.dirB} {
		if *d, err = os.MkdirTemp("", "colugo-bench-*"); err != nil {
			return nil, err
		}
	}
	limit := childLimit(lim)
	k, url, err := spawn(roleNATS, childConfig{W: w, Limit: limit})
	if err != nil {
		return nil, err
	}
	r.kids, r.url = append(r.kids, k), url
	for _, b := range []bridgeRole{{Site: "a", Export: true, Service: service}, {Site: "b", Service: service}} {
		dir := r.dirA
		if b.Site == "b" {
			dir = r.dirB
		}
		k, _, err := spawn(roleBridge, childConfig{W: w, Dir: dir, URL: url, Bridge: &b, Limit: limit})
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w", b.Site, err)
		}
		r.kids = append(r.kids, k)
	}
	return r, nil
}

// drops asks both bridges for their counts.
func (r *bridgeRig) drops() (bridgeDrops, error) {
	var total bridgeDrops
	for _, k := range r.kids[1:] {
		if err := k.send("B"); err != nil {
			return total, err
		}
		line, err := k.expect("B ", setupTimeout)
		if err != nil {
			return total, err
		}
		var d bridgeDrops
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "B ")), &d); err != nil {
			return total, fmt.Errorf("bridge's drops %q: %w", line, err)
		}
		total.Export += d.Export
		total.Import += d.Import
	}
	return total, nil
}

func (r *bridgeRig) Close() {
	for _, k := range slices.Backward(r.kids) {
		k.Close()
	}
	for _, d := range []string{r.dirA, r.dirB} {
		if d != "" {
			_ = os.RemoveAll(d)
		}
	}
}

package foxglove

import (
	"slices"

	"github.com/colugo-go/colugo"
)

// The connectionGraph capability: nodes (this gateway's own among them),
// the topics they publish and subscribe and the services they serve. A
// node's id in the graph is its name, with "#" and the first 8 characters
// of its node id appended when another node has the same name.

// graph is who publishes, subscribes and serves each name: sorted node
// ids.
type graph struct {
	pubs, subs, svcs map[string][]string
}

// ownPub is a topic this gateway's node publishes for clients.
type ownPub struct {
	info colugo.TopicInfo
	refs int
}

// graphLocked computes the current graph from the peers last synced and
// the gateway's own subscriptions and publishers.
func (g *Gateway) graphLocked() graph {
	names := map[string]int{g.node.Name(): 1}
	for _, p := range g.peers {
		names[p.Name]++
	}
	id := func(name, nodeID string) string {
		if names[name] > 1 {
			return name + "#" + nodeID[:min(8, len(nodeID))]
		}
		return name
	}
	gr := graph{pubs: map[string][]string{}, subs: map[string][]string{}, svcs: map[string][]string{}}
	add := func(m map[string][]string, name, node string) {
		if !slices.Contains(m[name], node) {
			m[name] = append(m[name], node)
		}
	}
	for _, p := range g.peers {
		pid := id(p.Name, p.ID)
		for _, t := range p.Topics {
			add(gr.pubs, t.Name, pid)
		}
		for _, t := range p.Subscriptions {
			add(gr.subs, t.Name, pid)
		}
		for _, t := range p.Services {
			add(gr.svcs, t.Name, pid)
		}
	}
	self := id(g.node.Name(), g.node.ID())
	for topic := range g.topics {
		add(gr.subs, topic, self)
	}
	for k := range g.own {
		add(gr.pubs, k.topic, self)
	}
	for _, m := range []map[string][]string{gr.pubs, gr.subs, gr.svcs} {
		for _, ids := range m {
			slices.Sort(ids)
		}
	}
	return gr
}

type graphTopicPubs struct {
	Name         string   `json:"name"`
	PublisherIDs []string `json:"publisherIds"`
}

type graphTopicSubs struct {
	Name          string   `json:"name"`
	SubscriberIDs []string `json:"subscriberIds"`
}

type graphService struct {
	Name        string   `json:"name"`
	ProviderIDs []string `json:"providerIds"`
}

type graphUpdate struct {
	Op                 string           `json:"op"`
	PublishedTopics    []graphTopicPubs `json:"publishedTopics"`
	SubscribedTopics   []graphTopicSubs `json:"subscribedTopics"`
	AdvertisedServices []graphService   `json:"advertisedServices"`
	RemovedTopics      []string         `json:"removedTopics"`
	RemovedServices    []string         `json:"removedServices"`
}

// graphDiff is the update that takes a client from old to cur, and
// whether there is anything in it. Each entry replaces the client's
// whole list for that name; a topic that still has subscribers but no
// publishers (or the reverse) gets an empty list, one with neither is
// removed.
func graphDiff(old, cur graph) (graphUpdate, bool) {
	u := graphUpdate{Op: "connectionGraphUpdate", PublishedTopics: []graphTopicPubs{}, SubscribedTopics: []graphTopicSubs{},
		AdvertisedServices: []graphService{}, RemovedTopics: []string{}, RemovedServices: []string{}}
	changed := func(a, b map[string][]string, name string) bool {
		x, okx := a[name]
		y, oky := b[name]
		return okx != oky || !slices.Equal(x, y)
	}
	for _, name := range unionKeys(old.pubs, cur.pubs) {
		if _, stays := cur.pubs[name]; !stays {
			if _, subs := cur.subs[name]; !subs {
				continue // removed below
			}
		}
		if changed(old.pubs, cur.pubs, name) {
			u.PublishedTopics = append(u.PublishedTopics, graphTopicPubs{name, nonNil(cur.pubs[name])})
		}
	}
	for _, name := range unionKeys(old.subs, cur.subs) {
		if _, stays := cur.subs[name]; !stays {
			if _, pubs := cur.pubs[name]; !pubs {
				continue
			}
		}
		if changed(old.subs, cur.subs, name) {
			u.SubscribedTopics = append(u.SubscribedTopics, graphTopicSubs{name, nonNil(cur.subs[name])})
		}
	}
	for _, name := range unionKeys(unionMap(old.pubs, old.subs), nil) {
		_, p := cur.pubs[name]
		_, s := cur.subs[name]
		if !p && !s {
			u.RemovedTopics = append(u.RemovedTopics, name)
		}
	}
	for _, name := range unionKeys(old.svcs, cur.svcs) {
		if _, stays := cur.svcs[name]; !stays {
			u.RemovedServices = append(u.RemovedServices, name)
		} else if changed(old.svcs, cur.svcs, name) {
			u.AdvertisedServices = append(u.AdvertisedServices, graphService{name, cur.svcs[name]})
		}
	}
	some := len(u.PublishedTopics)+len(u.SubscribedTopics)+len(u.AdvertisedServices)+len(u.RemovedTopics)+len(u.RemovedServices) > 0
	return u, some
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func unionMap(a, b map[string][]string) map[string][]string {
	m := make(map[string][]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// unionKeys is the sorted names of a and b.
func unionKeys(a, b map[string][]string) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// graphChangedLocked recomputes the graph and sends what changed to the
// clients that subscribed to it. Called under g.mu (write).
func (g *Gateway) graphChangedLocked() {
	cur := g.graphLocked()
	u, ok := graphDiff(g.graph, cur)
	g.graph = cur
	if !ok {
		return
	}
	for c := range g.clients {
		if c.graphSub {
			c.sendJSONLocked(u)
		}
	}
}

// sendGraphLocked sends the whole graph to c, which has just subscribed.
func (c *client) sendGraphLocked() {
	u, _ := graphDiff(graph{}, c.g.graph)
	c.sendJSONLocked(u)
}

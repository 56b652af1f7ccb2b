package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport/inproc"
	"github.com/colugo-go/colugo/transport/zmq"
)

const (
	topic   = "bench/t"
	service = "bench/echo"
)

var rawCodec = colugo.WithCodec(codec.Raw{})

// nodeMaker makes colugo nodes that find each other: over TCP with a
// private host-local registry, or in process with seed discovery.
type nodeMaker struct {
	inproc bool
	dir    string           // registry directory (zmq)
	net    *inproc.Network  // inproc
	nodes  []*colugo.Node   // closed by close, last first
	extra  []NodeOptionFunc // options for every node
}

// NodeOptionFunc lets callers (the soak command) add node options.
type NodeOptionFunc = func() colugo.NodeOption

func newNodeMaker(inprocess bool) (*nodeMaker, error) {
	m := &nodeMaker{inproc: inprocess}
	if inprocess {
		m.net = inproc.NewNetwork()
		return m, nil
	}
	dir, err := os.MkdirTemp("", "colugo-bench-*")
	if err != nil {
		return nil, err
	}
	m.dir = dir
	return m, nil
}

// node makes a node; in process it finds the nodes of seeds (node
// endpoints' router addresses) only, which is all the workloads need.
func (m *nodeMaker) node(name string, seeds ...*colugo.Node) (*colugo.Node, error) {
	var opts []colugo.NodeOption
	if m.inproc {
		routers := make([]string, len(seeds))
		for i, s := range seeds {
			routers[i] = s.Endpoint().Router
		}
		opts = append(opts, colugo.WithTransport(m.net.New()), colugo.WithDiscovery(&seedDiscovery{routers: routers}))
	} else {
		tr, err := zmq.New()
		if err != nil {
			return nil, err
		}
		opts = append(opts, colugo.WithTransport(tr), colugo.WithDiscovery(local.New(local.WithDir(m.dir))))
	}
	for _, f := range m.extra {
		opts = append(opts, f())
	}
	n, err := colugo.NewNode(name, opts...)
	if err != nil {
		return nil, err
	}
	m.nodes = append(m.nodes, n)
	return n, nil
}

func (m *nodeMaker) close() {
	for i := len(m.nodes) - 1; i >= 0; i-- {
		_ = m.nodes[i].Close()
	}
	m.nodes = nil
	if m.dir != "" {
		_ = os.RemoveAll(m.dir)
	}
}

// seedDiscovery reports fixed router addresses, like discovery.Static but
// for in-process addresses, which are not host:port.
type seedDiscovery struct {
	routers []string
	once    sync.Once
	ch      chan discovery.Event
}

func (d *seedDiscovery) Start(discovery.Peer) (<-chan discovery.Event, error) {
	d.ch = make(chan discovery.Event, len(d.routers))
	for _, r := range d.routers {
		d.ch <- discovery.Event{Kind: discovery.Joined, Peer: discovery.Peer{Router: r}}
	}
	return d.ch, nil
}

func (d *seedDiscovery) Update(discovery.Peer) error { return nil }

func (d *seedDiscovery) Close() error {
	d.once.Do(func() {
		if d.ch != nil {
			close(d.ch)
		}
	})
	return nil
}

// topicName is the name of topic t of n.
func topicName(t, n int) string {
	if n == 1 {
		return topic
	}
	return fmt.Sprintf("%s/%d", topic, t)
}

type colugoPubSub struct {
	m      *nodeMaker
	topics []string
	pubs   [][]*colugo.Publisher[[]byte] // [publisher][topic]
	turn   []int                         // [publisher]: next topic
	subs   []*colugo.Node
	pubN   []*colugo.Node
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newColugoPubSub(w Workload, recv recvFunc, inprocess bool) (_ *colugoPubSub, err error) {
	m, err := newNodeMaker(inprocess)
	if err != nil {
		return nil, err
	}
	r := &colugoPubSub{m: m, turn: make([]int, w.Pubs)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	nt := w.topics()
	for t := range nt {
		r.topics = append(r.topics, topicName(t, nt))
	}
	for i := range w.Pubs {
		n, err := m.node(fmt.Sprintf("bench-pub-%d", i))
		if err != nil {
			return nil, err
		}
		var ps []*colugo.Publisher[[]byte]
		for _, name := range r.topics {
			// The harness never touches a buffer before every subscriber
			// has it (a ring of 2 windows): hand payloads over, no copy.
			p, err := colugo.NewPublisher[[]byte](n, name, rawCodec, colugo.WithZeroCopy())
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		r.pubs = append(r.pubs, ps)
		r.pubN = append(r.pubN, n)
	}
	buf := 4 * window(w.Size) * w.Pubs
	for i := range w.Subs {
		n, err := m.node(fmt.Sprintf("bench-sub-%d", i), r.pubN...)
		if err != nil {
			return nil, err
		}
		for t, name := range r.topics {
			ch, err := colugo.Subscribe[[]byte](r.ctx, n, name, rawCodec,
				colugo.WithBuffer(buf), colugo.WithDropPolicy(colugo.DropNewest))
			if err != nil {
				return nil, err
			}
			stream := i*nt + t
			r.wg.Go(func() {
				for p := range ch {
					recv(stream, p)
				}
			})
		}
		r.subs = append(r.subs, n)
	}
	return r, nil
}

func (r *colugoPubSub) Publish(i int, p []byte) error {
	ps := r.pubs[i]
	t := r.turn[i]
	r.turn[i] = (t + 1) % len(ps)
	return ps[t].Publish(r.ctx, p)
}

func (r *colugoPubSub) Check() error {
	var errs []error
	for _, n := range r.subs {
		st := n.Stats()
		for _, name := range r.topics {
			if t := st.Topics[name]; t.Dropped > 0 || t.Gaps > 0 || t.DecodeErrors > 0 {
				errs = append(errs, fmt.Errorf("%s: %s: lost messages: %+v", n.Name(), name, t))
			}
		}
	}
	for _, n := range r.pubN {
		if d := n.Stats().Transport.SendDropped; d > 0 {
			errs = append(errs, fmt.Errorf("%s: %d messages dropped at send", n.Name(), d))
		}
	}
	return errors.Join(errs...)
}

func (r *colugoPubSub) Close() {
	r.cancel()
	r.m.close()
	r.wg.Wait()
}

type colugoReq struct {
	m   *nodeMaker
	cli *colugo.Node
}

// newColugoReq makes repliers server nodes (one with inprocess, whose
// seed discovery knows one) and a client node, and waits until the client
// knows every server.
func newColugoReq(_ int, repliers int, inprocess bool) (_ *colugoReq, err error) {
	m, err := newNodeMaker(inprocess)
	if err != nil {
		return nil, err
	}
	r := &colugoReq{m: m}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	var srvs []*colugo.Node
	for i := range repliers {
		srv, err := m.node(fmt.Sprintf("bench-server-%d", i))
		if err != nil {
			return nil, err
		}
		if _, err := colugo.Serve(srv, service, func(_ context.Context, p []byte) ([]byte, error) { return p, nil }, rawCodec); err != nil {
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	if r.cli, err = m.node("bench-client", srvs...); err != nil {
		return nil, err
	}
	if repliers > 1 {
		deadline := time.Now().Add(setupTimeout)
		for servers(r.cli) < repliers {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("client found %d of %d servers", servers(r.cli), repliers)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return r, nil
}

// servers counts the peers of n that serve the bench service.
func servers(n *colugo.Node) int {
	k := 0
	for _, p := range n.Peers() {
		if slices.ContainsFunc(p.Services, func(s colugo.TopicInfo) bool { return s.Name == service }) {
			k++
		}
	}
	return k
}

func (r *colugoReq) Request(_ int, p []byte) ([]byte, error) {
	return colugo.Request[[]byte, []byte](context.Background(), r.cli, service, p, rawCodec)
}

func (r *colugoReq) Close() { r.m.close() }

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
	shared bool             // dir belongs to someone else: close leaves it
	net    *inproc.Network  // inproc
	nodes  []*colugo.Node   // closed by close, last first
	extra  []NodeOptionFunc // options for every node
}

// NodeOptionFunc lets callers (the soak command) add node options.
type NodeOptionFunc = func() colugo.NodeOption

// newNodeMaker makes nodes on transport/inproc, or on the zmq transport
// with host-local discovery in dir (a new temporary directory if "").
func newNodeMaker(inprocess bool, dir string) (*nodeMaker, error) {
	m := &nodeMaker{inproc: inprocess}
	if inprocess {
		m.net = inproc.NewNetwork()
		return m, nil
	}
	if dir != "" {
		m.dir, m.shared = dir, true
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
	if m.dir != "" && !m.shared {
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
	pubs   [][]func(context.Context, []byte) error // [publisher][topic]
	turn   []int                                   // [publisher]: next topic
	subs   []*colugo.Node
	pubN   []*colugo.Node
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newColugoPubSub builds the halves h asks for: w.Pubs publisher nodes,
// w.Subs subscriber nodes.
func newColugoPubSub(w Workload, recv recvFunc, inprocess bool, h half) (_ *colugoPubSub, err error) {
	m, err := newNodeMaker(inprocess, h.dir)
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
		if !h.pubs {
			break
		}
		n, err := m.node(fmt.Sprintf("bench-pub-%d", i))
		if err != nil {
			return nil, err
		}
		var ps []func(context.Context, []byte) error
		for _, name := range r.topics {
			p, err := newColugoPublisher(n, name, w)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		r.pubs = append(r.pubs, ps)
		r.pubN = append(r.pubN, n)
	}
	var opts []colugo.SubscribeOption
	if w.Burst == 0 {
		// Paced: room for the flow-control windows of every publisher.
		opts = append(opts, colugo.WithBuffer(4*window(w.Size)*w.Pubs), colugo.WithDropPolicy(colugo.DropNewest))
	}
	if w.SubHistory > 0 {
		opts = append(opts, colugo.WithHistory(w.SubHistory))
	}
	for i := range w.Subs {
		if !h.subs {
			break
		}
		n, err := m.node(fmt.Sprintf("bench-sub-%d", i), r.pubN...)
		if err != nil {
			return nil, err
		}
		for t, name := range r.topics {
			stream := i*nt + t
			if err := subscribeColugo(r.ctx, &r.wg, n, name, w, opts, func(p []byte) { recv(stream, p) }); err != nil {
				return nil, err
			}
		}
		r.subs = append(r.subs, n)
	}
	return r, nil
}

// newColugoPublisher makes w's kind of publisher on topic name: Raw bytes
// (handed over with WithZeroCopy when the harness keeps its buffers
// untouched until delivery: paced runs), or Samples in the default codec.
func newColugoPublisher(n *colugo.Node, name string, w Workload) (func(context.Context, []byte) error, error) {
	if w.JSON {
		p, err := colugo.NewPublisher[Sample](n, name)
		if err != nil {
			return nil, err
		}
		var seq uint64
		return func(ctx context.Context, b []byte) error {
			seq++
			return p.Publish(ctx, sampleOf(b, seq))
		}, nil
	}
	opts := []colugo.PublisherOption{rawCodec}
	if w.Burst == 0 {
		// The harness never touches a buffer before every subscriber has
		// it (a ring of 2 windows): hand payloads over, no copy.
		opts = append(opts, colugo.WithZeroCopy())
	}
	if w.History > 0 { // the -hist rows differ from their twins in this option only
		opts = append(opts, colugo.WithHistory(w.History))
	}
	p, err := colugo.NewPublisher[[]byte](n, name, opts...)
	if err != nil {
		return nil, err
	}
	return p.Publish, nil
}

// subscribeColugo subscribes n to name in w's codec and calls recv with
// each message's payload (for a Sample, its header rebuilt) from one
// goroutine that wg tracks.
func subscribeColugo(ctx context.Context, wg *sync.WaitGroup, n *colugo.Node, name string, w Workload,
	opts []colugo.SubscribeOption, recv func([]byte)) error {
	if w.JSON {
		ch, err := colugo.Subscribe[Sample](ctx, n, name, opts...)
		if err != nil {
			return err
		}
		wg.Go(func() {
			buf := make([]byte, w.Size)
			for s := range ch {
				recv(s.payload(buf))
			}
		})
		return nil
	}
	ch, err := colugo.Subscribe[[]byte](ctx, n, name, append(opts, rawCodec)...)
	if err != nil {
		return err
	}
	wg.Go(func() {
		for p := range ch {
			recv(p)
		}
	})
	return nil
}

func (r *colugoPubSub) Publish(i int, p []byte) error {
	ps := r.pubs[i]
	t := r.turn[i]
	r.turn[i] = (t + 1) % len(ps)
	return ps[t](r.ctx, p)
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

func (r *colugoPubSub) Drops() Drops {
	var d Drops
	for _, n := range r.pubN {
		// The largest of the node's send drops, its subscriber
		// connections' and its topics': a publisher may count one loss in
		// each.
		st := n.Stats()
		var topics, conns uint64
		for _, name := range r.topics {
			topics += st.Topics[name].Dropped
		}
		for _, c := range st.Transport.Subscribers {
			conns += c.Dropped
		}
		d.Pub += max(st.Transport.SendDropped, topics, conns)
	}
	for _, n := range r.subs {
		st := n.Stats()
		for _, name := range r.topics {
			d.Sub += st.Topics[name].Dropped
			d.Gaps += st.Topics[name].Gaps
		}
	}
	return d
}

func (r *colugoPubSub) Close() {
	r.cancel()
	r.m.close()
	r.wg.Wait()
}

type colugoReq struct {
	m    *nodeMaker
	cli  *colugo.Node
	json bool
	bufs [][]byte // JSON: per worker, the reply's payload rebuilt
	seq  []uint64
}

// newColugoReq makes repliers server nodes (one with inprocess, whose
// seed discovery knows one) and a client node, and waits until the client
// knows every server.
func newColugoReq(w Workload, workers, repliers int, inprocess bool) (_ *colugoReq, err error) {
	m, err := newNodeMaker(inprocess, "")
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
		if err := serveColugo(srv, w.JSON); err != nil {
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	if err := r.client(w, workers, repliers, srvs...); err != nil {
		return nil, err
	}
	return r, nil
}

// serveColugo serves the echo service on srv: Raw bytes, or Samples in
// the default codec.
func serveColugo(srv *colugo.Node, json bool) error {
	var err error
	if json {
		_, err = colugo.Serve(srv, service, func(_ context.Context, s Sample) (Sample, error) { return s, nil })
	} else {
		_, err = colugo.Serve(srv, service, func(_ context.Context, p []byte) ([]byte, error) { return p, nil }, rawCodec)
	}
	return err
}

// client makes r's client node (finding seeds in process) and waits until
// it knows repliers servers; with one in process, the seed is enough.
func (r *colugoReq) client(w Workload, workers, repliers int, seeds ...*colugo.Node) error {
	r.json = w.JSON
	for range workers {
		r.bufs = append(r.bufs, make([]byte, w.Size))
		r.seq = append(r.seq, 0)
	}
	var err error
	if r.cli, err = r.m.node("bench-client", seeds...); err != nil {
		return err
	}
	if repliers > 1 || !r.m.inproc {
		deadline := time.Now().Add(setupTimeout)
		for servers(r.cli) < repliers {
			if time.Now().After(deadline) {
				return fmt.Errorf("client found %d of %d servers", servers(r.cli), repliers)
			}
			time.Sleep(5 * time.Millisecond) // polling with a deadline
		}
	}
	return nil
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

func (r *colugoReq) Request(i int, p []byte) ([]byte, error) {
	if r.json {
		r.seq[i]++
		s, err := colugo.Request[Sample, Sample](context.Background(), r.cli, service, sampleOf(p, r.seq[i]))
		if err != nil {
			return nil, err
		}
		return s.payload(r.bufs[i]), nil
	}
	return colugo.Request[[]byte, []byte](context.Background(), r.cli, service, p, rawCodec)
}

func (r *colugoReq) Close() { r.m.close() }

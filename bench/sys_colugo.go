package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

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

type colugoPubSub struct {
	m      *nodeMaker
	pubs   []*colugo.Publisher[[]byte]
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
	r := &colugoPubSub{m: m}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	for i := range w.Pubs {
		n, err := m.node(fmt.Sprintf("bench-pub-%d", i))
		if err != nil {
			return nil, err
		}
		p, err := colugo.NewPublisher[[]byte](n, topic, rawCodec)
		if err != nil {
			return nil, err
		}
		r.pubs = append(r.pubs, p)
		r.pubN = append(r.pubN, n)
	}
	buf := 4 * window(w.Size) * w.Pubs
	for i := range w.Subs {
		n, err := m.node(fmt.Sprintf("bench-sub-%d", i), r.pubN...)
		if err != nil {
			return nil, err
		}
		ch, err := colugo.Subscribe[[]byte](r.ctx, n, topic, rawCodec,
			colugo.WithBuffer(buf), colugo.WithDropPolicy(colugo.DropNewest))
		if err != nil {
			return nil, err
		}
		r.subs = append(r.subs, n)
		r.wg.Go(func() {
			for p := range ch {
				recv(i, p)
			}
		})
	}
	return r, nil
}

func (r *colugoPubSub) Publish(i int, p []byte) error { return r.pubs[i].Publish(r.ctx, p) }

func (r *colugoPubSub) Check() error {
	var errs []error
	for _, n := range r.subs {
		st := n.Stats()
		if t := st.Topics[topic]; t.Dropped > 0 || t.Gaps > 0 || t.DecodeErrors > 0 {
			errs = append(errs, fmt.Errorf("%s: lost messages: %+v", n.Name(), t))
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

func newColugoReq(_ int, inprocess bool) (_ *colugoReq, err error) {
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
	srv, err := m.node("bench-server")
	if err != nil {
		return nil, err
	}
	if _, err := colugo.Serve(srv, service, func(_ context.Context, p []byte) ([]byte, error) { return p, nil }, rawCodec); err != nil {
		return nil, err
	}
	if r.cli, err = m.node("bench-client", srv); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *colugoReq) Request(_ int, p []byte) ([]byte, error) {
	return colugo.Request[[]byte, []byte](context.Background(), r.cli, service, p, rawCodec)
}

func (r *colugoReq) Close() { r.m.close() }

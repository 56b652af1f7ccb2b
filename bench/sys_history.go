package bench

import (
	"context"
	"fmt"

	"github.com/colugo-go/colugo"
)

// newHistoryPubSub is newColugoPubSub for the history workloads: the same
// nodes and Raw streams, with WithHistory(w.History) on every publisher
// and WithHistory(w.SubHistory) on every subscription (0: none), so that
// such a row differs from its history-off twin in the option only.
func newHistoryPubSub(w Workload, recv recvFunc, inprocess bool, h half) (_ *colugoPubSub, err error) {
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
	popts := []colugo.PublisherOption{rawCodec}
	if w.History > 0 {
		popts = append(popts, colugo.WithHistory(w.History))
	}
	if w.Burst == 0 {
		popts = append(popts, colugo.WithZeroCopy()) // as newColugoPublisher: the ring outlives delivery
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
			p, err := colugo.NewPublisher[[]byte](n, name, popts...)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p.Publish)
		}
		r.pubs = append(r.pubs, ps)
		r.pubN = append(r.pubN, n)
	}
	var sopts []colugo.SubscribeOption
	if w.Burst == 0 {
		sopts = append(sopts, colugo.WithBuffer(4*window(w.Size)*w.Pubs), colugo.WithDropPolicy(colugo.DropNewest))
	}
	if w.SubHistory > 0 {
		sopts = append(sopts, colugo.WithHistory(w.SubHistory))
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
			if err := subscribeColugo(r.ctx, &r.wg, n, name, w, sopts, func(p []byte) { recv(stream, p) }); err != nil {
				return nil, err
			}
		}
		r.subs = append(r.subs, n)
	}
	return r, nil
}

package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const (
	natsSubject = "bench.t"
	natsService = "bench.echo"
)

// natsServer starts an embedded nats-server on 127.0.0.1 with a random
// port, with JetStream when storeDir is set (its store).
func natsServer(storeDir string) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		JetStream:             storeDir != "",
		StoreDir:              storeDir,
		Host:                  "127.0.0.1",
		Port:                  server.RANDOM_PORT,
		Cluster:               server.ClusterOpts{NoAdvertise: true}, // no gossiped address points off the host
		LeafNode:              server.LeafNodeOpts{NoAdvertise: true},
		NoLog:                 true,
		NoSigs:                true,
		MaxPayload:            8 << 20,
		DisableShortFirstPing: true,
	})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, errors.New("nats-server did not start")
	}
	return s, nil
}

type natsRig struct {
	srv   *server.Server // embedded; nil when the server runs elsewhere
	url   string
	conns []*nats.Conn
	// pubErrs and subErrs count asynchronous errors (slow consumer among
	// them) on publishing and subscribing connections.
	pubErrs, subErrs atomic.Int64
	subs             []*nats.Subscription
	pubs             []*nats.Conn
	// subjects and turn: each publisher's topics in turn.
	subjects []string
	turn     []int
	json     bool
	seq      []uint64
	bufs     [][]byte // JSON requests: per worker, the reply's payload rebuilt
}

// natsSubjectName is subject t of n.
func natsSubjectName(t, n int) string {
	if n == 1 {
		return natsSubject
	}
	return fmt.Sprintf("%s.%d", natsSubject, t)
}

// start starts an embedded server unless url names one.
func (r *natsRig) start(url string) error {
	if url != "" {
		r.url = url
		return nil
	}
	var err error
	if r.srv, err = natsServer(""); err != nil {
		return err
	}
	r.url = r.srv.ClientURL()
	return nil
}

func (r *natsRig) connect(errs *atomic.Int64) (*nats.Conn, error) {
	nc, err := nats.Connect(r.url, nats.NoReconnect(), nats.IgnoreDiscoveredServers(),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) { errs.Add(1) }))
	if err != nil {
		return nil, err
	}
	r.conns = append(r.conns, nc)
	return nc, nil
}

func (r *natsRig) Close() {
	for _, nc := range r.conns {
		nc.Close()
	}
	if r.srv != nil {
		r.srv.Shutdown()
		r.srv.WaitForShutdown()
	}
}

func newNATSPubSub(w Workload, recv recvFunc, h half) (_ *natsRig, err error) {
	r := &natsRig{turn: make([]int, w.Pubs), json: w.JSON, seq: make([]uint64, w.Pubs)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if err := r.start(h.url); err != nil {
		return nil, err
	}
	nt := w.topics()
	for t := range nt {
		r.subjects = append(r.subjects, natsSubjectName(t, nt))
	}
	for i := range w.Subs {
		if !h.subs {
			break
		}
		nc, err := r.connect(&r.subErrs)
		if err != nil {
			return nil, err
		}
		// One subscription per subject, each with its own goroutine.
		for t, subj := range r.subjects {
			stream := i*nt + t
			cb := func(m *nats.Msg) { recv(stream, m.Data) }
			if w.JSON {
				buf := make([]byte, w.Size)
				cb = func(m *nats.Msg) {
					var s Sample
					if json.Unmarshal(m.Data, &s) == nil {
						recv(stream, s.payload(buf))
					}
				}
			}
			sub, err := nc.Subscribe(subj, cb)
			if err != nil {
				return nil, err
			}
			if w.Burst == 0 {
				// Paced: the harness bounds what is pending.
				if err := sub.SetPendingLimits(-1, -1); err != nil {
					return nil, err
				}
			}
			r.subs = append(r.subs, sub)
		}
		if err := nc.Flush(); err != nil {
			return nil, err
		}
	}
	for range w.Pubs {
		if !h.pubs {
			break
		}
		nc, err := r.connect(&r.pubErrs)
		if err != nil {
			return nil, err
		}
		r.pubs = append(r.pubs, nc)
	}
	return r, nil
}

func (r *natsRig) Publish(i int, p []byte) error {
	t := r.turn[i]
	r.turn[i] = (t + 1) % len(r.subjects)
	if r.json {
		r.seq[i]++
		b, err := json.Marshal(sampleOf(p, r.seq[i]))
		if err != nil {
			return err
		}
		p = b
	}
	return r.pubs[i].Publish(r.subjects[t], p)
}

func (r *natsRig) Check() error {
	for _, s := range r.subs {
		if d, err := s.Dropped(); err == nil && d > 0 {
			return fmt.Errorf("nats: %d messages dropped", d)
		}
	}
	if n := r.pubErrs.Load() + r.subErrs.Load(); n > 0 {
		return fmt.Errorf("nats: %d asynchronous errors", n)
	}
	return nil
}

func (r *natsRig) Drops() Drops {
	d := Drops{Pub: uint64(r.pubErrs.Load()), Sub: uint64(r.subErrs.Load())}
	for _, s := range r.subs {
		if n, err := s.Dropped(); err == nil {
			d.Sub += uint64(n)
		}
	}
	return d
}

// newNATSReq starts repliers responders, each on its own connection, and
// a client; see natsServe.
func newNATSReq(w Workload, workers, repliers int) (_ *natsRig, err error) {
	r := &natsRig{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if err := r.start(""); err != nil {
		return nil, err
	}
	for range repliers {
		if err := r.serve(w.JSON, repliers > 1); err != nil {
			return nil, err
		}
	}
	if err := r.client(w, workers); err != nil {
		return nil, err
	}
	return r, nil
}

// serve starts one echo responder (with group, in a queue group, in which
// the server picks one member at random for each request); JSON decodes
// and encodes each request, as a typed handler does.
func (r *natsRig) serve(js, group bool) error {
	srv, err := r.connect(&r.subErrs)
	if err != nil {
		return err
	}
	echo := func(m *nats.Msg) { _ = m.Respond(m.Data) }
	if js {
		echo = func(m *nats.Msg) {
			var s Sample
			if json.Unmarshal(m.Data, &s) == nil {
				if b, err := json.Marshal(s); err == nil {
					_ = m.Respond(b)
				}
			}
		}
	}
	if group {
		_, err = srv.QueueSubscribe(natsService, "echo", echo)
	} else {
		_, err = srv.Subscribe(natsService, echo)
	}
	if err != nil {
		return err
	}
	return srv.Flush()
}

// client connects r's requesting connection.
func (r *natsRig) client(w Workload, workers int) error {
	cli, err := r.connect(&r.pubErrs)
	if err != nil {
		return err
	}
	r.pubs = []*nats.Conn{cli}
	r.json = w.JSON
	for range workers {
		r.bufs = append(r.bufs, make([]byte, w.Size))
		r.seq = append(r.seq, 0)
	}
	return nil
}

func (r *natsRig) Request(i int, p []byte) ([]byte, error) {
	if r.json {
		r.seq[i]++
		b, err := json.Marshal(sampleOf(p, r.seq[i]))
		if err != nil {
			return nil, err
		}
		m, err := r.pubs[0].Request(natsService, b, 5*time.Second)
		if err != nil {
			return nil, err
		}
		var s Sample
		if err := json.Unmarshal(m.Data, &s); err != nil {
			return nil, err
		}
		return s.payload(r.bufs[i]), nil
	}
	m, err := r.pubs[0].Request(natsService, p, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

package bench

import (
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
// port.
func natsServer() (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host:                  "127.0.0.1",
		Port:                  server.RANDOM_PORT,
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
	srv   *server.Server
	conns []*nats.Conn
	errs  atomic.Int64
	subs  []*nats.Subscription
	pubs  []*nats.Conn
	// subjects and turn: each publisher's topics in turn.
	subjects []string
	turn     []int
}

// natsSubjectName is subject t of n.
func natsSubjectName(t, n int) string {
	if n == 1 {
		return natsSubject
	}
	return fmt.Sprintf("%s.%d", natsSubject, t)
}

func (r *natsRig) connect() (*nats.Conn, error) {
	nc, err := nats.Connect(r.srv.ClientURL(), nats.NoReconnect(),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) { r.errs.Add(1) }))
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

func newNATSPubSub(w Workload, recv recvFunc) (_ *natsRig, err error) {
	r := &natsRig{turn: make([]int, w.Pubs)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.srv, err = natsServer(); err != nil {
		return nil, err
	}
	nt := w.topics()
	for t := range nt {
		r.subjects = append(r.subjects, natsSubjectName(t, nt))
	}
	for i := range w.Subs {
		nc, err := r.connect()
		if err != nil {
			return nil, err
		}
		// One subscription per subject, each with its own goroutine.
		for t, subj := range r.subjects {
			stream := i*nt + t
			sub, err := nc.Subscribe(subj, func(m *nats.Msg) { recv(stream, m.Data) })
			if err != nil {
				return nil, err
			}
			if err := sub.SetPendingLimits(-1, -1); err != nil {
				return nil, err
			}
			r.subs = append(r.subs, sub)
		}
		if err := nc.Flush(); err != nil {
			return nil, err
		}
	}
	for range w.Pubs {
		nc, err := r.connect()
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
	return r.pubs[i].Publish(r.subjects[t], p)
}

func (r *natsRig) Check() error {
	for _, s := range r.subs {
		if d, err := s.Dropped(); err == nil && d > 0 {
			return fmt.Errorf("nats: %d messages dropped", d)
		}
	}
	if n := r.errs.Load(); n > 0 {
		return fmt.Errorf("nats: %d asynchronous errors", n)
	}
	return nil
}

// newNATSReq starts repliers responders, each on its own connection; with
// more than one they form a queue group, in which the server picks one
// member at random for each request.
func newNATSReq(repliers int) (_ *natsRig, err error) {
	r := &natsRig{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.srv, err = natsServer(); err != nil {
		return nil, err
	}
	for range repliers {
		srv, err := r.connect()
		if err != nil {
			return nil, err
		}
		echo := func(m *nats.Msg) { _ = m.Respond(m.Data) }
		if repliers == 1 {
			_, err = srv.Subscribe(natsService, echo)
		} else {
			_, err = srv.QueueSubscribe(natsService, "echo", echo)
		}
		if err != nil {
			return nil, err
		}
		if err := srv.Flush(); err != nil {
			return nil, err
		}
	}
	cli, err := r.connect()
	if err != nil {
		return nil, err
	}
	r.pubs = []*nats.Conn{cli}
	return r, nil
}

func (r *natsRig) Request(_ int, p []byte) ([]byte, error) {
	m, err := r.pubs[0].Request(natsService, p, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

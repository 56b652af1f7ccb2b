package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-zeromq/zmq4"
)

// Raw zmq4 sockets carry the same three frames as colugo: name+"\x00", a
// 40-byte header and the payload.
var (
	zName = []byte(service + "\x00")
	zHdr  = make([]byte, 40) // never modified: zmq4's PUB may keep it queued
)

type zmq4PubSub struct {
	cancel context.CancelFunc
	pubs   []zmq4.Socket
	subs   []zmq4.Socket
	wg     sync.WaitGroup
	topics [][]byte // name frames, one per topic
	turn   []int    // [publisher]: next topic
}

// newZMQ4PubSub builds the halves h asks for: w.Pubs PUB sockets
// listening on 127.0.0.1, w.Subs SUB sockets dialling them (or h.addr).
func newZMQ4PubSub(w Workload, recv recvFunc, h half) (_ *zmq4PubSub, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &zmq4PubSub{cancel: cancel, turn: make([]int, w.Pubs)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	nt := w.topics()
	index := map[string]int{} // name frame → topic
	for t := range nt {
		name := []byte(topicName(t, nt) + "\x00")
		r.topics = append(r.topics, name)
		index[string(name)] = t
	}
	for range w.Pubs {
		if !h.pubs {
			break
		}
		pub := zmq4.NewPub(ctx)
		r.pubs = append(r.pubs, pub)
		if err := pub.Listen("tcp://127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	addrs := []string{h.addr}
	if h.pubs {
		addrs = []string{}
		for _, pub := range r.pubs {
			addrs = append(addrs, pub.Addr().String())
		}
	}
	for i := range w.Subs {
		if !h.subs {
			break
		}
		sub := zmq4.NewSub(ctx)
		r.subs = append(r.subs, sub)
		for _, a := range addrs {
			if err := sub.Dial("tcp://" + a); err != nil {
				return nil, err
			}
		}
		for _, name := range r.topics {
			if err := sub.SetOption(zmq4.OptionSubscribe, string(name)); err != nil {
				return nil, err
			}
		}
		// One socket, one goroutine for all of a subscriber's topics.
		r.wg.Go(func() {
			for {
				m, err := sub.Recv()
				if err != nil {
					return
				}
				if len(m.Frames) == 3 {
					t := 0
					if nt > 1 {
						t = index[string(m.Frames[0])]
					}
					recv(i*nt+t, m.Frames[2])
				}
			}
		})
	}
	return r, nil
}

func (r *zmq4PubSub) Publish(i int, p []byte) error {
	t := r.turn[i]
	r.turn[i] = (t + 1) % len(r.topics)
	return r.pubs[i].SendMulti(zmq4.NewMsgFrom(r.topics[t], zHdr, p))
}

func (r *zmq4PubSub) Check() error { return nil }

// Drops is empty: zmq4 counts nothing.
func (r *zmq4PubSub) Drops() Drops { return Drops{} }

// addr is the first PUB socket's address.
func (r *zmq4PubSub) addr() string { return r.pubs[0].Addr().String() }

func (r *zmq4PubSub) Close() {
	for _, s := range r.subs {
		_ = s.Close()
	}
	for _, s := range r.pubs {
		_ = s.Close()
	}
	r.cancel()
	r.wg.Wait()
}

type zmq4Req struct {
	cancel  context.CancelFunc
	router  zmq4.Socket
	dealers []zmq4.Socket
	wg      sync.WaitGroup
}

// newZMQ4Req makes a ROUTER that echoes and one DEALER per worker.
func newZMQ4Req(workers int) (_ *zmq4Req, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &zmq4Req{cancel: cancel}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	r.router = zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity("router")))
	if err := r.router.Listen("tcp://127.0.0.1:0"); err != nil {
		return nil, err
	}
	r.wg.Go(func() {
		for {
			m, err := r.router.Recv()
			if err != nil {
				return
			}
			if err := r.router.SendMulti(m); err != nil {
				return
			}
		}
	})
	if err := r.dial(ctx, workers, r.router.Addr().String()); err != nil {
		return nil, err
	}
	return r, nil
}

// dial connects one DEALER per worker to the ROUTER at addr.
func (r *zmq4Req) dial(ctx context.Context, workers int, addr string) error {
	for i := range workers {
		d := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity(fmt.Sprintf("dealer-%d", i))))
		r.dealers = append(r.dealers, d)
		if err := d.Dial("tcp://" + addr); err != nil {
			return err
		}
	}
	return nil
}

// newZMQ4Dealers connects workers DEALERs to a ROUTER at addr, in
// another process.
func newZMQ4Dealers(workers int, addr string) (_ *zmq4Req, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &zmq4Req{cancel: cancel}
	if err := r.dial(ctx, workers, addr); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *zmq4Req) Request(worker int, p []byte) ([]byte, error) {
	d := r.dealers[worker]
	if err := d.SendMulti(zmq4.NewMsgFrom(zName, zHdr, p)); err != nil {
		return nil, err
	}
	m, err := d.Recv()
	if err != nil {
		return nil, err
	}
	if len(m.Frames) != 3 {
		return nil, errors.New("zmq4: reply is not 3 frames")
	}
	return m.Frames[2], nil
}

func (r *zmq4Req) Close() {
	for _, d := range r.dealers {
		_ = d.Close()
	}
	if r.router != nil {
		_ = r.router.Close()
	}
	r.cancel()
	r.wg.Wait()
}

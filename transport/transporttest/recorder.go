package transporttest

import (
	"sync"
	"sync/atomic"

	"github.com/colugo-go/colugo/transport"
)

// Recorder is a [transport.Handler] that records what a transport delivers
// to it, for tests, as net/http/httptest.ResponseRecorder records what an
// http.Handler writes. A test hands it to Listen and reads the channels.
//
// Create one with [NewRecorder]; the zero Recorder has no channels and
// records nothing (every delivery counts as dropped). Its methods are safe
// for concurrent use.
type Recorder struct {
	// Publishes receives a copy of each message given to HandlePublish
	// (the copy of *msg; the payload is the transport's, which the Handler
	// contract lets a callee keep), unless a SetOnPublish func takes it.
	Publishes chan *transport.Message
	// Requests receives a copy of each message given to HandleRequest:
	// requests, control requests and cancels, in arrival order.
	Requests chan *transport.Message
	// PeerLost receives each HandlePeerLost call.
	PeerLost chan PeerLost

	mu        sync.Mutex
	onRequest func(msg *transport.Message, rw transport.ReplyWriter)
	onPublish func(msg *transport.Message)
	block     chan struct{}

	dropped atomic.Uint64
}

// PeerLost is one HandlePeerLost call, as a [Recorder] records it.
type PeerLost struct {
	Addr string
	Err  error
}

// Recorder channel capacities: room for the bursts that tests publish
// without reading; past them a Recorder drops and counts (see Dropped).
const (
	RecorderPublishes = 1 << 16
	RecorderRequests  = 1 << 12
	RecorderPeerLost  = 64
)

// NewRecorder returns a Recorder whose channels hold RecorderPublishes
// publishes, RecorderRequests requests and RecorderPeerLost lost peers.
// It answers no request until SetOnRequest gives it a func.
func NewRecorder() *Recorder {
	return &Recorder{
		Publishes: make(chan *transport.Message, RecorderPublishes),
		Requests:  make(chan *transport.Message, RecorderRequests),
		PeerLost:  make(chan PeerLost, RecorderPeerLost),
	}
}

// SetOnRequest makes f answer the requests arriving from now on: every
// HandleRequest call (cancels included) records its message, then calls f
// with it, on the transport's goroutine. A nil f answers nothing.
func (r *Recorder) SetOnRequest(f func(msg *transport.Message, rw transport.ReplyWriter)) {
	r.mu.Lock()
	r.onRequest = f
	r.mu.Unlock()
}

// SetOnPublish makes f take the publishes arriving from now on instead of
// the Publishes channel, for bursts larger than the channel holds. msg is
// valid only during the call, as in [transport.Handler]. A nil f restores
// recording to Publishes.
func (r *Recorder) SetOnPublish(f func(msg *transport.Message)) {
	r.mu.Lock()
	r.onPublish = f
	r.mu.Unlock()
}

// Block stalls every HandlePublish call, from now on and until release is
// called, as a consumer that stops reading does; calls that are blocked
// then go on. release may be called more than once.
func (r *Recorder) Block() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.block = ch
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			if r.block == ch {
				r.block = nil
			}
			r.mu.Unlock()
			close(ch)
		})
	}
}

// Dropped returns how many deliveries were not recorded because their
// channel was full (or nil).
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// HandlePublish implements [transport.Handler].
func (r *Recorder) HandlePublish(msg *transport.Message) {
	r.mu.Lock()
	block, onPublish := r.block, r.onPublish
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	if onPublish != nil {
		onPublish(msg)
		return
	}
	m := *msg // msg is valid only during the call
	select {
	case r.Publishes <- &m:
	default:
		r.dropped.Add(1)
	}
}

// HandleRequest implements [transport.Handler].
func (r *Recorder) HandleRequest(msg *transport.Message, rw transport.ReplyWriter) {
	m := *msg
	select {
	case r.Requests <- &m:
	default:
		r.dropped.Add(1)
	}
	r.mu.Lock()
	onRequest := r.onRequest
	r.mu.Unlock()
	if onRequest != nil {
		onRequest(msg, rw)
	}
}

// HandlePeerLost implements [transport.Handler].
func (r *Recorder) HandlePeerLost(addr string, err error) {
	select {
	case r.PeerLost <- PeerLost{Addr: addr, Err: err}:
	default:
		r.dropped.Add(1)
	}
}

var _ transport.Handler = (*Recorder)(nil)

package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A JetStream export topic's messages are published with acks, on a
// connection of their own without a reconnect buffer, and each is kept
// (in its spool, bounded by JetStream.Spool) until the stream has it. A
// plain publish is lost when it goes before the stream is made, into a
// stream that refuses it, or into a link that fails: what sat in the
// socket buffers of a cut or silent link is gone, and nats.go does not
// know. On a failure the spool stops sending, waits for every answer
// still due (a cut fails them all at once), then sends again, in order,
// from the first message not acked: the stream keeps one copy of one
// sent twice (Nats-Msg-Id), so every message is stored once and in order.
// Without a reconnect buffer nothing is stored behind the spool's back
// while the link is down: a publish then fails at once and stays queued.
// Each spool makes its stream before it sends anything. (A stream that
// loses one message and takes the next, as a JetStream cluster's stream
// does when its leader changes, or a stream deleted and made again by
// another topic's spool while this one's messages are in flight, stores
// the lost ones after it, when sent again: hPrev lets the importer put
// them back in order.)

const (
	// jsWindow bounds the messages of one topic sent and not yet acked:
	// deep, for JetStream to take a burst at its pace (of a 20 MiB burst,
	// BenchmarkPubSub1KiB/bridged-jetstream delivered 79-92 % with 1024,
	// 99-100 % with 4096, and no more with 16384).
	jsWindow = 4096
	// jsAckTimeout is how long an ack may take before the message counts
	// as failed (and is sent again): a live link answers in milliseconds,
	// and a dead one is found by the pings or the write timeout.
	jsAckTimeout = 5 * time.Second
	// jsStopGrace is how long a stopping bridge keeps sending what its
	// spools hold, while the link is up.
	jsStopGrace = 2 * time.Second
	// jsBlock is how long a JetStream export's local subscription waits
	// for room (colugo.Block) before it drops: room comes at the stream's
	// pace, one message at a time, so only a stall lasts this long.
	jsBlock = 2 * time.Second
	// defaultSpool is JetStream.Spool's default, as nats.go's reconnect
	// buffer, which held these messages before.
	defaultSpool = 8 << 20
)

// newJSPublisher connects the bridge's publish connection for JetStream
// exports: opts (the main connection's, without its handlers) without a
// reconnect buffer.
func newJSPublisher(url string, opts []nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, append(opts, nats.ReconnectBufSize(-1))...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(jsAckTimeout), jetstream.WithPublishAsyncMaxPending(1<<16))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// spool holds one exported JetStream topic's messages until its stream
// has acked them.
type spool struct {
	b     *Bridge
	topic string        // the export entry's, for errors
	limit int           // bytes queued and in flight, at most
	wake  chan struct{} // a message was queued
	room  chan struct{} // room was made, or the spool started holding or stopped

	mu      sync.Mutex
	queue   []*nats.Msg // not sent, or sent again next
	bytes   int         // of queue and the messages in flight
	holding bool        // sending failed and is paused: the link is down, or the stream missing
	stopped bool        // run has returned: add drops
}

func newSpool(b *Bridge, limit int, topic string) *spool {
	return &spool{b: b, topic: topic, limit: limit, wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// add queues m. A full spool that is sending makes add wait for room: a
// burst is held back, as a plain topic's is by a blocking publish, in
// the topic's local queue (QueueBytes; its oldest dropped, Stats: Queue).
// A full spool that cannot send (link down, stream missing) drops its
// oldest queued messages (Stats: Link) for room; m itself when all room
// is in flight or the spool has stopped.
func (s *spool) add(m *nats.Msg) {
	n := len(m.Data)
	s.mu.Lock()
	for !s.stopped && !s.holding && s.bytes > 0 && s.bytes+n > s.limit {
		s.mu.Unlock()
		<-s.room
		s.mu.Lock()
	}
	if s.stopped {
		s.mu.Unlock()
		signal(s.room) // for the next waiter, if any
		s.b.st.exp.link.Add(1)
		return
	}
	if s.holding {
		signal(s.room) // a limiter's timer may wait too: it drops as well
	}
	for s.bytes+n > s.limit && len(s.queue) > 0 {
		s.bytes -= len(s.queue[0].Data)
		unchain(s.queue[0], s.queue[1:], m)
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.b.st.spooled.Add(-1)
		s.b.st.exp.link.Add(1)
	}
	if s.bytes+n > s.limit && s.bytes > 0 {
		s.mu.Unlock()
		s.b.st.exp.link.Add(1)
		return
	}
	s.queue = append(s.queue, m)
	s.bytes += n
	s.b.st.spooled.Add(1)
	s.mu.Unlock()
	signal(s.wake)
}

// setHolding records whether sending is paused; a pause ends add's waits.
func (s *spool) setHolding(h bool) {
	s.mu.Lock()
	s.holding = h
	s.mu.Unlock()
	if h {
		signal(s.room)
	}
}

// next takes the oldest queued message, nil if none.
func (s *spool) next() *nats.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil
	}
	m := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return m
}

// requeue puts ms (oldest first) back before everything queued.
func (s *spool) requeue(ms ...*nats.Msg) {
	if len(ms) == 0 {
		return
	}
	s.mu.Lock()
	s.queue = append(ms[:len(ms):len(ms)], s.queue...)
	s.mu.Unlock()
}

// acked counts m as exported and frees its room.
func (s *spool) acked(m *nats.Msg) {
	s.mu.Lock()
	s.bytes -= len(m.Data)
	s.b.st.spooled.Add(-1)
	s.mu.Unlock()
	signal(s.room)
	s.b.st.exp.messages.Add(1)
	s.b.st.exp.bytes.Add(uint64(len(m.Data)))
}

// dropped frees m's room, counting it with c.
func (s *spool) dropped(m *nats.Msg, c interface{ Add(uint64) uint64 }) {
	s.mu.Lock()
	s.bytes -= len(m.Data)
	s.b.st.spooled.Add(-1)
	s.mu.Unlock()
	signal(s.room)
	c.Add(1)
}

// unchain links the next message of dropped's sender, among later, to
// what dropped followed (hPrev), so that the importer does not wait for
// dropped, which never comes.
func unchain(dropped *nats.Msg, later []*nats.Msg, last ...*nats.Msg) {
	sender, seq := dropped.Header.Get(hSender), dropped.Header.Get(hSeq)
	// Not append(later, last...): a full spool dropping for every message
	// added would copy its whole queue each time.
	for _, ms := range [2][]*nats.Msg{later, last} {
		for _, m := range ms {
			if m.Header.Get(hSender) != sender {
				continue
			}
			if m.Header.Get(hPrev) == seq {
				if p := dropped.Header.Get(hPrev); p != "" {
					m.Header[hPrev] = []string{p}
				} else {
					delete(m.Header, hPrev)
				}
			}
			return
		}
	}
}

type flight struct {
	m  *nats.Msg
	f  jetstream.PubAckFuture
	ok bool // its ack was taken while an earlier one's was awaited (overtaken)
}

// overtakeCheck is how often the spool, awaiting the oldest ack, looks
// whether a later message's came first.
const overtakeCheck = 20 * time.Millisecond

// maxConflicts is how many "in process" refusals a message's copies get
// before it is sent under a new id.
const maxConflicts = 20

// inProcess reports whether err is JetStream's "duplicate message id is
// in process" (409, 10158).
func inProcess(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.ErrorCode == 10158
}

// errOvertaken: a later message's ack came before an earlier one's.
var errOvertaken = errors.New("acks of later messages came first: the earlier ones are sent again (a stream's leader changed?)")

// overtaken takes the acks that have come for in-flight messages after
// the oldest, and returns how many in-flight messages (from the oldest)
// are settled: up to and with the last acked. JetStream stores and acks
// one stream's messages in order, and nats.go completes the futures in
// the order the acks arrive, so an earlier message whose ack has not
// come by then never will: its stream leader changed and lost it.
func overtaken(inflight []flight) int {
	settled := 0
	for i := 1; i < len(inflight); i++ {
		if !inflight[i].ok {
			select {
			case <-inflight[i].f.Ok():
				inflight[i].ok = true
			default:
			}
		}
		if inflight[i].ok {
			settled = i + 1
		}
	}
	return settled
}

// run sends the spool's messages on js until ctx ends, then for
// jsStopGrace at most while there is something to send and the link is
// up. What is left then is dropped (Stats: Link).
// ensure makes the stream: first, and again when it is missing (deleted
// under the bridge).
func (s *spool) run(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, ensure func(context.Context)) {
	var (
		inflight []flight
		failed   []*nats.Msg // of the failed round, in order: sent again first
		holding  bool        // a round failed: nothing is sent until it is resolved and the pause is over
		noStream bool        // the round failed for want of a stream
		pause    = 50 * time.Millisecond
		done     = ctx.Done()
		grace    <-chan time.Time
		check    = time.NewTimer(overtakeCheck)
		// conflicts counts, per message, the "in process" refusals of
		// its copies sent again.
		conflicts = map[*nats.Msg]int{}
	)
	defer check.Stop()
	// Nothing goes before the stream exists: refused for want of it while
	// the bridge makes it (at its start, in parallel), the first messages
	// of a burst would be sent again after later ones it had taken, out of
	// order. Meanwhile a full spool holds its adders back (a burst waits in
	// the topic's queue, then in its publishers' send queues: colugo.Block),
	// unless the link is down: then it drops its oldest, as while a failed
	// round is resolved.
	s.setHolding(!nc.IsConnected())
	ensure(ctx)
	s.setHolding(false)
	defer func() {
		s.mu.Lock()
		s.stopped = true
		left := len(s.queue) + len(inflight) + len(failed)
		s.queue, s.bytes = nil, 0
		s.b.st.spooled.Add(-int64(left))
		s.mu.Unlock()
		signal(s.room)
		s.b.st.exp.link.Add(uint64(left))
	}()
	for {
		for !holding && len(inflight) < jsWindow {
			m := s.next()
			if m == nil {
				break
			}
			f, err := js.PublishMsgAsync(m)
			if errors.Is(err, nats.ErrMaxPayload) {
				s.mu.Lock()
				unchain(m, s.queue)
				s.mu.Unlock()
				s.dropped(m, &s.b.st.exp.payload) // larger than the server takes: never will
				continue
			}
			if err != nil { // the link is down (no reconnect buffer), or closed
				s.requeue(m)
				holding = true
				s.setHolding(true)
				s.b.jsFailed("export "+s.topic+": publish", err)
				break
			}
			inflight = append(inflight, flight{m: m, f: f})
		}
		if holding && len(inflight) == 0 {
			// The round is resolved: what failed goes first, after a pause.
			s.requeue(failed...)
			failed = nil
			if grace != nil && !nc.IsConnected() {
				return
			}
			if noStream {
				noStream = false
				ensure(ctx)
			}
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-done:
				t.Stop()
				done, grace = nil, time.After(jsStopGrace)
			case <-grace:
				t.Stop()
				return
			}
			pause = min(2*pause, 2*time.Second)
			holding = false
			s.setHolding(false)
			continue
		}
		if len(inflight) == 0 {
			if grace != nil {
				return // all sent and acked
			}
			select {
			case <-s.wake:
			case <-done:
				done, grace = nil, time.After(jsStopGrace)
			}
			continue
		}
		head := inflight[0]
		if head.ok { // taken by overtaken
			inflight = inflight[1:]
			s.acked(head.m)
			delete(conflicts, head.m)
			continue
		}
		var overtake <-chan time.Time
		if len(inflight) > 1 {
			check.Reset(overtakeCheck)
			overtake = check.C
		}
		select {
		case <-overtake:
			n := overtaken(inflight)
			if n == 0 {
				continue
			}
			// Sent again now, not after jsAckTimeout: behind fewer newer
			// messages (they are stored after those, out of order).
			for _, fl := range inflight[:n] {
				if fl.ok {
					s.acked(fl.m)
					delete(conflicts, fl.m)
				} else {
					failed = append(failed, fl.m)
				}
			}
			inflight = inflight[n:]
			if !holding {
				holding = true
				s.setHolding(true)
				s.b.jsFailed("export "+s.topic+": store", errOvertaken)
			}
		case <-head.f.Ok():
			inflight = inflight[1:]
			s.acked(head.m)
			if len(conflicts) > 0 {
				delete(conflicts, head.m)
			}
			if !holding {
				pause = 50 * time.Millisecond
			}
		case err := <-head.f.Err():
			inflight = inflight[1:]
			failed = append(failed, head.m)
			if errors.Is(err, jetstream.ErrNoStreamResponse) {
				noStream = true
			}
			if inProcess(err) {
				// Sent again while the stream still stores the first copy
				// (its ack lost with a leader change): it will have it,
				// and acks the next copy as a duplicate. Soon: no back-off.
				pause = 25 * time.Millisecond
				if conflicts[head.m]++; conflicts[head.m] >= maxConflicts {
					// Or it lost the first copy and counts its id in
					// process until the duplicate window ends (minutes):
					// a new id, at the risk of a second copy in the
					// stream, which the importer drops (by sender and seq).
					head.m.Header[hMsgID] = []string{head.m.Header.Get(hMsgID) + "~"}
					delete(conflicts, head.m)
				}
			}
			if !holding {
				holding = true
				s.setHolding(true)
				s.b.jsFailed("export "+s.topic+": store", err)
			}
		case <-s.wake:
		case <-done:
			done, grace = nil, time.After(jsStopGrace)
		case <-grace:
			return
		}
	}
}

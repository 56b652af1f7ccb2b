package zmq

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// This file is the send side of a connection: an outbox of encoded bytes
// that senders append to under the connection's lock, and one writer
// goroutine that takes the whole outbox at a time and writes it with one
// system call.
//
// Why not a channel of messages: profiled on 64-byte pub/sub, a queued
// message cost a pooled frame buffer, a channel send, a channel receive and
// a copy into the write buffer; appending the bytes straight into the
// outbox costs one copy. The writer swaps the outbox for an empty one and
// writes outside the lock, so senders never wait for the socket; a busy
// link coalesces everything sent during one write into the next, an idle
// one writes each message at once.
//
// The send calls never keep the caller's bytes: small payloads are copied
// into the outbox; a large one (or one of shareMin bytes or more, once the
// outbox holds copyBudget bytes: a subscriber that stopped reading) is
// copied once per publish into a private buffer that every connection's
// outbox refers to, and the writer sends those with writev. Payloads under
// shareMin are always copied: referring to one costs more (two segments,
// a shared buffer, an iovec) than its bytes, and a burst of small messages
// to a healthy subscriber would otherwise be written as thousands of tiny
// iovecs.
//
// The writer writes a large batch in chunks of writeChunk bytes and
// credits each chunk to the queue as it goes (progress), so a subscriber that reads
// slowly frees room, and wakes publishers waiting for it (back-pressure),
// at its own pace rather than once per batch. A batch's buffers are kept
// until all of it is written: a connection pins at most what its queue
// holds unwritten (WithSendQueueBytes) plus the rest of the batch being
// written, and all together at most the send budget plus sendReserve per
// connection.

// Send-side sizes.
const (
	// refMin is the payload size from which the outbox refers to a
	// payload instead of copying it (a copy costs more than an iovec).
	refMin = 16 << 10
	// copyBudget is the size from which an outbox refers to every
	// payload, so that subscribers that do not read do not each hold a copy
	// of what they are sent.
	copyBudget = 1 << 20
	// shareMin is the payload size under which a payload is always
	// copied, even past copyBudget.
	shareMin = 512
	// writeChunk is the most the writer hands the socket at once in a
	// batch over twice its size, so that room in the queue appears as the
	// peer reads.
	writeChunk = 256 << 10
	// sendReserve is what each connection may queue beyond a full send
	// budget: subscribers that keep up (whose queues are nearly empty)
	// are not starved by stalled ones that hold the budget.
	sendReserve = 128 << 10
	// quietGap is how long a connection must have had nothing to send for
	// a publish to be written from the publisher's goroutine: a message on a
	// quiet link then skips the hand-off to the writer (about half of the
	// one-way latency of an idle link), while a busy link, whose messages
	// come closer together, keeps coalescing them in the writer.
	quietGap = 50 * time.Microsecond
	// keepOutbox caps the buffer an outbox keeps between batches, so that a
	// burst does not pin memory.
	keepOutbox = 2 << 20
)

// appendPrefix appends the name frame, the header frame and the payload
// frame's header of a message, with def as the Kind of a zero h.Kind. With
// ext false, the header goes without its extensions (for a peer that does
// not decode them).
func appendPrefix(b []byte, name string, h *wire.Header, def transport.Kind, payloadLen int, ext bool) []byte {
	b = appendFrameHeader(b, flagMore, len(name)+1)
	b = wire.AppendName(b, name)
	// The header's length is known once it is encoded: reserve a short
	// frame header and widen it in the rare case of a header over 255 bytes.
	start := len(b)
	b = append(b, flagMore, 0)
	hh := *h // not h: a published message may be read concurrently
	if hh.Kind == 0 {
		hh.Kind = def
	}
	if !ext {
		hh.Ext = ""
	}
	b = hh.Append(b)
	n := len(b) - start - 2
	if n <= 255 {
		b[start+1] = byte(n)
	} else {
		b = append(b, make([]byte, 7)...)
		copy(b[start+9:], b[start+2:start+2+n])
		b[start] = flagMore | flagLong
		binary.BigEndian.PutUint64(b[start+1:], uint64(n))
	}
	return appendFrameHeader(b, 0, payloadLen)
}

// payloadRef is a payload being sent: the caller's bytes, and the private
// copy that outboxes refer to, made by the first that needs it and shared
// by the others (the connections a publish goes to).
type payloadRef struct {
	b      []byte
	owned  bool // the caller gave b up (Message.Exclusive): no copy needed
	shared []byte
	// held is the transport's sendHeld, for a message bounded by
	// WithSendBudget (publishes and replies), or nil.
	held *atomic.Int64
	sh   *sharedBuf // the referred-to payload's charge, once referred to
}

// sharedBuf is a payload referred to by one or more outboxes: it counts
// against the send budget once, while any outbox refers to it.
type sharedBuf struct {
	held *atomic.Int64 // nil: not counted
	n    int64
	refs atomic.Int32
}

func (s *sharedBuf) ref() {
	if s.refs.Add(1) == 1 && s.held != nil {
		s.held.Add(s.n)
	}
}

func (s *sharedBuf) unref() {
	if s.refs.Add(-1) == 0 && s.held != nil {
		s.held.Add(-s.n)
	}
}

// cost is what queueing a message of pre and p adds to the send budget, at
// most: its copied bytes and, unless already counted, its payload.
func (p *payloadRef) cost(pre []byte) int64 {
	n := int64(len(pre))
	if p != nil && (p.sh == nil || p.sh.refs.Load() == 0) {
		n += int64(len(p.b))
	}
	return n
}

func (p *payloadRef) private() []byte {
	if p.owned {
		return p.b
	}
	if p.shared == nil {
		p.shared = bytes.Clone(p.b)
	}
	return p.shared
}

// outbox holds messages waiting for the writer: bytes copied into buf, and,
// once a payload is referred to, the segments before it in segs. Segments
// may point into earlier arrays of buf; those bytes never change.
type outbox struct {
	buf   []byte
	mark  int         // buf[:mark] is already in segs
	segs  net.Buffers // complete segments, in order, before buf[mark:]
	msgs  int
	bytes int          // of the messages, referred to or copied
	priv  int64        // bytes copied for messages counted by the send budget
	refs  []*sharedBuf // the payloads referred to
	// grow's: the arrays it moved buf off (segments still point into
	// them), and those reset kept for it to use again; moved counts the
	// bytes left in the retired ones, copied into this outbox all the same.
	retired, free [][]byte
	moved         int
}

func (o *outbox) empty() bool { return len(o.buf) == 0 && len(o.segs) == 0 }

// add appends one message: pre, its frames up to and including the payload
// frame's header, then the payload. Neither is kept: pre is copied, the
// payload copied or referred to through its private copy. pre is a
// separate parameter so that escape analysis sees that it is not kept and
// callers can encode it on the stack.
func (o *outbox) add(pre []byte, p *payloadRef) {
	var payload []byte
	if p != nil {
		payload = p.b
	}
	n := len(payload)
	refer := n >= refMin || (n >= shareMin && o.moved+len(o.buf)+len(pre)+n > copyBudget)
	if refer {
		o.grow(len(pre))
	} else {
		o.grow(len(pre) + n)
	}
	o.buf = append(o.buf, pre...)
	counted := p != nil && p.held != nil
	if counted {
		o.priv += int64(len(pre))
	}
	if refer {
		o.segs = append(o.segs, o.buf[o.mark:len(o.buf):len(o.buf)], p.private())
		o.mark = len(o.buf)
		if p.sh == nil {
			p.sh = &sharedBuf{held: p.held, n: int64(n)}
		}
		p.sh.ref()
		o.refs = append(o.refs, p.sh)
	} else {
		o.buf = append(o.buf, payload...)
		if counted {
			o.priv += int64(n)
		}
	}
	o.msgs++
	o.bytes += len(pre) + n
}

// grow makes room for n more bytes in buf when segments refer to its
// start: only buf[mark:] moves, to an array of free or a new one at least
// as large as buf's, as the segments keep the old one. (append would copy
// all of buf, again at every growth, into an array past keepOutbox that
// reset drops: a flood past copyBudget regrew it from nothing at each
// batch, a third more copying than its payloads'.)
func (o *outbox) grow(n int) {
	if o.mark == 0 || cap(o.buf)-len(o.buf) >= n {
		return
	}
	tail := o.buf[o.mark:]
	need := len(tail) + n
	var nb []byte
	for len(o.free) > 0 && nb == nil {
		f := o.free[len(o.free)-1]
		o.free = o.free[:len(o.free)-1]
		if cap(f) >= need {
			nb = f[:0]
		}
	}
	if nb == nil {
		nb = make([]byte, 0, max(2*need, cap(o.buf), outboxGrowMin))
	}
	o.retired = append(o.retired, o.buf[:0])
	o.moved += o.mark
	o.buf, o.mark = append(nb, tail...), 0
}

// outboxGrowMin is the least a new array of grow's holds.
const outboxGrowMin = 64 << 10

// writeTo writes everything out, blocking: a batch of up to writeChunk
// bytes in one call, a larger one in chunks of writeChunk bytes, calling
// progress(c, n) after each chunk but the last (unless c is nil). iov
// and wb are scratch space for the chunks' segments, kept by the caller
// so that a write does not allocate.
func (o *outbox) writeTo(nc net.Conn, c *conn, iov, wb *net.Buffers) error {
	if len(o.segs) == 0 {
		b := o.buf
		for len(b) > 0 {
			n := len(b)
			if n > 2*writeChunk {
				n = writeChunk
			}
			if _, err := nc.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
			if len(b) > 0 && c != nil {
				c.progress(o, n)
			}
		}
		return nil
	}
	if o.mark < len(o.buf) {
		o.segs = append(o.segs, o.buf[o.mark:])
		o.mark = len(o.buf)
	}
	if o.bytes <= 2*writeChunk { // the common case: one writev
		*wb = o.segs
		_, err := wb.WriteTo(nc)
		*wb = nil
		return err
	}
	segs := o.segs
	for len(segs) > 0 {
		chunk, n := (*iov)[:0], 0
		for len(segs) > 0 && n < writeChunk {
			s := segs[0]
			if take := writeChunk - n; len(s) > take {
				chunk = append(chunk, s[:take])
				segs[0] = s[take:]
				n += take
				break
			}
			chunk = append(chunk, s)
			n += len(s)
			segs = segs[1:]
		}
		*iov = chunk
		*wb = chunk // WriteTo consumes its receiver
		_, err := wb.WriteTo(nc)
		*wb = nil
		if err != nil {
			clear((*iov)[:cap(*iov)])
			return err
		}
		if len(segs) > 0 && c != nil {
			c.progress(o, n)
		}
	}
	clear((*iov)[:cap(*iov)]) // do not pin written payloads
	return nil
}

// progress credits n written bytes of batch to the queue, so that senders
// waiting for room (back-pressure) see it before the whole batch is
// written.
func (c *conn) progress(batch *outbox, n int) {
	c.wmu.Lock()
	n = min(n, batch.bytes-c.credited)
	c.credited += n
	c.qbytes -= n
	c.roomMadeLocked()
	c.wmu.Unlock()
}

// roomMadeLocked wakes senders waiting for room and ends a demotion from
// back-pressure once the queue has drained to half of what it held when
// demoted; wmu is held.
func (c *conn) roomMadeLocked() {
	if c.demoted.Load() && c.qbytes <= c.demotedAt/2 {
		c.demoted.Store(false)
	}
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// reset empties o for reuse, dropping references to written payloads.
func (o *outbox) reset() {
	if len(o.retired) == 0 { // no growth past a reference (every direct write)
		if cap(o.buf) > keepOutbox-o.freeCap() {
			o.buf = nil
		} else {
			o.buf = o.buf[:0]
		}
		o.resetRest()
		return
	}
	// The largest array goes on as buf (the first of a batch past
	// copyBudget holds its copied payloads, which the next batch copies
	// again), the others to free for grow, keepOutbox in all at most.
	arrays := append(append(o.retired, o.free...), o.buf[:0])
	slices.SortFunc(arrays, func(a, b []byte) int { return cap(b) - cap(a) })
	o.buf = nil
	clear(o.free)
	o.free = o.free[:0]
	kept := 0
	for _, a := range arrays {
		if cap(a) == 0 || kept+cap(a) > keepOutbox {
			continue
		}
		kept += cap(a)
		if o.buf == nil {
			o.buf = a
		} else {
			o.free = append(o.free, a)
		}
	}
	clear(arrays)
	o.retired = arrays[:0]
	o.resetRest()
}

// freeCap is what the arrays of free hold.
func (o *outbox) freeCap() int {
	n := 0
	for _, f := range o.free {
		n += cap(f)
	}
	return n
}

// resetRest is reset's but for the arrays.
func (o *outbox) resetRest() {
	clear(o.segs[:cap(o.segs)])
	o.segs = o.segs[:0]
	for _, s := range o.refs {
		s.unref()
	}
	clear(o.refs)
	o.refs = o.refs[:0]
	o.mark, o.moved, o.msgs, o.bytes, o.priv = 0, 0, 0, 0, 0
}

// directWriter makes one non-blocking write and returns how much of b the
// socket took (fastWriter; tests use fakes).
type directWriter interface {
	Write(b []byte) (int, error)
}

// sendMode says who writes a message that finds the link idle.
type sendMode uint8

const (
	// viaWriter leaves every message to the writer goroutine.
	viaWriter sendMode = iota
	// direct has the sender write a message that finds the link idle
	// itself, with one non-blocking system call (sendNow).
	direct
)

// directIf is direct when cond holds, else viaWriter.
func directIf(cond bool) sendMode {
	if cond {
		return direct
	}
	return viaWriter
}

// flushCause says why the writer goroutine flushes.
type flushCause uint8

const (
	flushKicked    flushCause = iota // a sender queued bytes (or PONGs are waiting)
	flushHeartbeat                   // the heartbeat ticked: a PING goes out too
)

// send queues a message (see outbox.add) for the writer goroutine without
// blocking; false means the queue is full.
func (c *conn) send(pre, payload []byte) bool {
	return c.enqueue(pre, payloadRef{b: payload}, viaWriter)
}

// sendNow is send, except that on an idle link the calling goroutine writes
// the message itself, saving the hand-off to the writer goroutine on the
// request/reply path. It writes outside the lock, with one non-blocking
// system call: senders arriving meanwhile append to the outbox, and the
// writer goroutine sends all of theirs in one call once this write is done
// (so concurrent requests share system calls); whatever the socket does not
// take at once is also left to the writer goroutine.
func (c *conn) sendNow(pre, payload []byte) bool {
	return c.enqueue(pre, payloadRef{b: payload}, direct)
}

// sendAt is send for a publish stamped at (unix ns; 0 if unknown), whose
// payload p is shared by the connections it goes to: on a link that has
// been quiet for quietGap, it is written at once like sendNow.
func (c *conn) sendAt(pre []byte, p *payloadRef, at int64) bool {
	return c.enqueueAt(pre, p, viaWriter, at)
}

// enqueue is send (viaWriter) or sendNow (direct) of p, whose owned field
// says that the caller gave the payload up (Message.Exclusive), so it
// need not be copied.
func (c *conn) enqueue(pre []byte, p payloadRef, mode sendMode) bool {
	return c.enqueueAt(pre, &p, mode, 0)
}

// enqueueAt queues p; a publish stamped at (not 0) is written directly
// when it finds the link quiet, whatever mode says.
func (c *conn) enqueueAt(pre []byte, p *payloadRef, mode sendMode, at int64) bool {
	size := len(pre)
	if p != nil {
		size += len(p.b)
	}
	c.wmu.Lock()
	if !c.roomLocked(size) || (p != nil && p.held != nil && !c.budgetFitsLocked(p.cost(pre), size)) {
		c.wmu.Unlock()
		return false
	}
	if c.slow.Load() && !c.demoted.Load() { // the end of a drop episode
		c.slow.Store(false)
	}
	if at != 0 {
		mode = directIf(at-c.lastAt > int64(quietGap) || at < c.lastAt) // a clock step back: treat as quiet
		c.lastAt = at
	}
	// PONGs waiting in the side buffer make the link busy: the writer,
	// already woken for them, writes them first, and direct writes cannot
	// keep them waiting.
	idle := !c.writing && c.out.empty() && c.carry.empty() && !c.sidePending.Load()
	if !idle && c.sidePending.Load() {
		// PONGs go out in the order they were made, between messages, even
		// when the writer gets no CPU while the reader answers requests.
		c.appendSide()
	}
	priv := c.out.priv
	c.out.add(pre, p)
	if d := c.out.priv - priv; d != 0 {
		c.t.sendHeld.Add(d)
	}
	c.queued++
	c.enqueued++
	c.qbytes += size
	if !idle { // whoever is writing, or the writer already woken, takes it
		c.wmu.Unlock()
		return true
	}
	if mode != direct || c.fw == nil || len(c.out.segs) != 0 || c.werr != nil {
		c.wmu.Unlock()
		c.wake()
		return true
	}
	// Nothing is queued or being written: writing now keeps the order.
	batch := c.out
	c.out, c.spare = c.spare, outbox{}
	c.writing = true
	c.wmu.Unlock()

	n, err := c.fw.Write(batch.buf)

	c.wmu.Lock()
	c.writing = false
	if err == nil && n < len(batch.buf) && !c.dead { // the writer goroutine finishes it first
		batch.buf = batch.buf[:copy(batch.buf, batch.buf[n:])]
		c.carry = batch
		c.flushDue = false // the wake below covers it
		c.wmu.Unlock()
		c.wake()
		return true
	}
	c.doneBatch(&batch)
	if err != nil {
		c.werr = err
	}
	more := !c.out.empty() || c.flushDue
	c.flushDue = false
	c.wmu.Unlock()
	if err != nil {
		c.close(fmt.Errorf("write: %w", err), false)
	} else if more {
		c.wake()
	}
	return true
}

// roomLocked says whether a message of size bytes fits in the queue: a
// count and a byte bound, but one message of any size can always wait.
func (c *conn) roomLocked(size int) bool {
	if c.dead {
		return false
	}
	return c.queued == 0 || (c.queued < c.t.cfg.sendQueue && c.qbytes+size <= c.t.cfg.sendQueueBytes)
}

// sendFits says whether cost more bytes fit in the transport-wide send
// budget (WithSendBudget); one message of any size fits an empty one.
// Concurrent senders may overshoot it by a message each.
func (t *Transport) sendFits(cost int64) bool {
	h := t.sendHeld.Load()
	return h == 0 || h+cost <= t.cfg.sendBudget
}

// budgetFitsLocked is sendFits for a message of size bytes to c, which
// may also queue up to sendReserve bytes past a full budget; wmu is held.
func (c *conn) budgetFitsLocked(cost int64, size int) bool {
	return c.qbytes+size <= sendReserve || c.t.sendFits(cost)
}

// sendReleased wakes the senders waiting for the send budget, if any;
// called after sendHeld goes down.
func (t *Transport) sendReleased() {
	if t.sendWaiters.Load() == 0 {
		return
	}
	t.sendWaitMu.Lock()
	if t.sendRoom != nil {
		close(t.sendRoom)
		t.sendRoom = nil
	}
	t.sendWaitMu.Unlock()
}

// waitSendBudget registers a sender waiting for the send budget and
// returns the channel closed when some of it is released; the caller
// calls doneWaitSendBudget when it stops waiting.
func (t *Transport) waitSendBudget() <-chan struct{} {
	t.sendWaitMu.Lock()
	defer t.sendWaitMu.Unlock()
	t.sendWaiters.Add(1)
	if t.sendRoom == nil {
		t.sendRoom = make(chan struct{})
	}
	return t.sendRoom
}

func (t *Transport) doneWaitSendBudget() { t.sendWaiters.Add(-1) }

// dropQueued empties the queues of a connection whose writer has
// stopped, returning their send budget, and refuses new messages.
func (c *conn) dropQueued() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.dead = true
	for _, o := range []*outbox{&c.out, &c.carry} {
		c.t.sendHeld.Add(-o.priv)
		o.reset()
	}
	c.queued, c.qbytes = 0, 0
	c.written = c.enqueued // gone with the connection
	c.roomMadeLocked()
	c.t.sendReleased()
}

// doneBatch accounts for a written batch and keeps its buffers; wmu is
// held.
func (c *conn) doneBatch(batch *outbox) {
	c.queued -= batch.msgs
	c.written += uint64(batch.msgs)
	c.qbytes -= batch.bytes - c.credited
	c.credited = 0
	released := batch.priv != 0 || len(batch.refs) != 0
	if batch.priv != 0 {
		c.t.sendHeld.Add(-batch.priv)
	}
	batch.reset()
	c.spare = *batch
	c.roomMadeLocked()
	if released {
		c.t.sendReleased()
	}
}

// sendWait is enqueue, but waits for room in a full queue until ctx ends
// or the connection closes.
func (c *conn) sendWait(ctx context.Context, pre []byte, p payloadRef, mode sendMode) error {
	for !c.enqueue(pre, p, mode) {
		c.wmu.Lock()
		if c.roomLocked(len(pre) + len(p.b)) {
			c.wmu.Unlock()
			continue
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.wmu.Unlock()
		select {
		case <-room:
		case <-c.done:
			return errConnDone
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// wake tells the writer goroutine that the outbox or side holds bytes.
func (c *conn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// writeLoop is the connection's writer goroutine: it writes the outbox when
// woken, and sends the heartbeat PINGs.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	tick := time.NewTicker(c.t.cfg.heartbeat)
	defer tick.Stop()
	for {
		cause := flushKicked
		select {
		case <-c.kick:
		case <-tick.C:
			cause = flushHeartbeat
		case <-c.done:
			return
		}
		if err := c.flush(cause); err != nil {
			c.close(fmt.Errorf("write: %w", err), false)
			return
		}
	}
}

// flush writes batches until the outbox is empty. While a batch is being
// written, writing is set: senders append without waking the writer or
// writing themselves. A sender writing directly owns the socket the same
// way; flush then leaves the work to it (flushDue asks it to wake the
// writer again when done).
func (c *conn) flush(cause flushCause) error {
	ping := cause == flushHeartbeat
	yielded := false
	for {
		if !yielded {
			// Let senders that are runnable add to the batch before the
			// system call: this costs nothing when nobody else is
			// runnable, and turns a burst of wakeups (replies releasing
			// callers who send again) into one write.
			yielded = true
			runtime.Gosched()
		}
		c.wmu.Lock()
		if ping {
			c.pingDue = true
			ping = false
		}
		if c.werr != nil {
			c.wmu.Unlock()
			return c.werr
		}
		if c.writing {
			c.flushDue = true
			c.wmu.Unlock()
			return nil
		}
		var batch outbox
		if !c.carry.empty() { // the rest of a sender's partial write goes first
			batch, c.carry = c.carry, outbox{}
		} else {
			if c.pingDue { // between two messages, like the PONGs
				c.out.buf = append(c.out.buf, c.ping...)
				c.pingDue = false
			}
			c.appendSide()
			if c.out.empty() {
				c.wmu.Unlock()
				return nil
			}
			batch = c.out
			c.out, c.spare = c.spare, outbox{}
		}
		c.writing = true
		c.wmu.Unlock()

		err := batch.writeTo(c.nc, c, &c.iov, &c.wb)

		c.wmu.Lock()
		c.writing = false
		c.doneBatch(&batch)
		c.wmu.Unlock()
		if err != nil {
			return err
		}
	}
}

// appendSide moves whole frames that were written from the reading
// goroutine (PONGs) into the outbox, between two messages; wmu is held.
func (c *conn) appendSide() {
	c.sideMu.Lock()
	if c.sideEnd > 0 {
		c.out.buf = append(c.out.buf, c.side[:c.sideEnd]...)
		c.side = c.side[:copy(c.side, c.side[c.sideEnd:])]
		c.sideEnd = 0
		c.sidePending.Store(false)
	}
	c.sideMu.Unlock()
}

// missed counts a publish that c's subscriber missed, and logs the start
// of a drop episode once.
func (c *conn) missed(topic string) {
	c.dropped.Add(1)
	if !c.slow.Swap(true) {
		c.t.log.Info("zmq subscriber missing messages: its send queue is full", keyPeer, c.addr, "topic", topic,
			"back_pressure_demoted", c.demoted.Load())
	}
}

// waitOutcome is how a wait for room ended.
type waitOutcome uint8

const (
	waitQueued   waitOutcome = iota
	waitFull                 // the deadline passed with the connection's queue full
	waitBudget               // the deadline passed with the send budget full
	waitCtx                  // ctx ended
	waitConnGone             // the connection closed
)

// waitShared is the deadline that the waits of one Publish share.
type waitShared struct {
	timer   *time.Timer
	expired bool
}

// sendBefore queues a publish for c, waiting for room in its queue or in
// the send budget until w's deadline or ctx ends.
func (c *conn) sendBefore(ctx context.Context, pre []byte, p *payloadRef, at int64, w *waitShared) waitOutcome {
	size := len(pre) + len(p.b)
	for {
		if c.sendAt(pre, p, at) {
			return waitQueued
		}
		c.wmu.Lock()
		if c.dead {
			c.wmu.Unlock()
			return waitConnGone
		}
		var room, budget <-chan struct{}
		if !c.roomLocked(size) {
			if c.room == nil {
				c.room = make(chan struct{})
			}
			room = c.room
		} else {
			// The queue has room: the send budget is full. Register
			// first, then check, so that no release is missed.
			budget = c.t.waitSendBudget()
			if c.budgetFitsLocked(p.cost(pre), size) {
				c.wmu.Unlock()
				c.t.doneWaitSendBudget()
				continue
			}
		}
		c.wmu.Unlock()
		out := waitQueued
		if w.expired {
			out = waitFull
		} else {
			select {
			case <-room:
			case <-budget:
			case <-w.timer.C:
				w.expired = true
				out = waitFull
			case <-ctx.Done():
				out = waitCtx
			case <-c.done:
				out = waitConnGone
			}
		}
		if budget != nil {
			c.t.doneWaitSendBudget()
			if out == waitFull {
				out = waitBudget
			}
		}
		if out != waitQueued {
			if out != waitCtx && out != waitConnGone && c.sendAt(pre, p, at) { // room came with the deadline
				return waitQueued
			}
			return out
		}
	}
}

// demote stops publishes from waiting for c until its queue has drained
// to half of what it holds now.
func (c *conn) demote() {
	c.wmu.Lock()
	c.demotedAt = c.qbytes
	c.demoted.Store(true)
	c.wmu.Unlock()
}

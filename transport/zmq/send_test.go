package zmq

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// sink is a net.Conn that keeps what is written to it.
type sink struct {
	net.Conn
	buf bytes.Buffer
}

func (s *sink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *sink) Close() error                { return nil }

// TestOutboxFrames: what the outbox writes parses back into the messages
// added, in order, for small (copied) and large (referred to) payloads and
// for a header over 255 bytes, whose frame header appendPrefix widens.
func TestOutboxFrames(t *testing.T) {
	t.Parallel()
	type msg struct {
		name    string
		h       wire.Header
		payload []byte
	}
	big := bytes.Repeat([]byte("b"), refMin+5)
	msgs := []msg{
		{"a", wire.Header{Codec: "raw", Seq: 1}, []byte("small")},
		{"big", wire.Header{Codec: "raw", Seq: 2}, big},
		{"svc", wire.Header{Kind: transport.KindReply, Status: 3, Error: strings.Repeat("e", 1000)}, nil},
		{"a", wire.Header{Codec: "raw", Seq: 3}, []byte("after")},
		{"big", wire.Header{Codec: "raw", Seq: 4}, big},
	}
	var o outbox
	for _, m := range msgs {
		var scratch [64]byte // too small for the long header: appendPrefix grows it
		o.add(appendPrefix(scratch[:0], m.name, &m.h, transport.KindPublish, len(m.payload), false), &payloadRef{b: m.payload})
	}
	if o.msgs != len(msgs) {
		t.Fatalf("outbox counts %d messages, want %d", o.msgs, len(msgs))
	}
	var out sink
	if err := o.writeTo(&out, nil, new(net.Buffers), new(net.Buffers)); err != nil {
		t.Fatal(err)
	}
	o.reset()
	if !o.empty() || o.msgs != 0 {
		t.Fatal("reset left bytes or a count behind")
	}
	r := bufio.NewReader(&out.buf)
	for i, m := range msgs {
		var frames [][]byte
		for {
			fl, body, err := zmtptest.ReadFrame(r)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			frames = append(frames, body)
			if fl&flagMore == 0 {
				break
			}
		}
		if len(frames) != 3 || string(frames[0]) != m.name+"\x00" || !bytes.Equal(frames[2], m.payload) {
			t.Fatalf("message %d: got frames %.40q", i, frames)
		}
		h, err := wire.Decode(frames[1])
		if err != nil {
			t.Fatalf("message %d header: %v", i, err)
		}
		want := m.h
		if want.Kind == 0 {
			want.Kind = transport.KindPublish
		}
		if h != want {
			t.Fatalf("message %d header %+v, want %+v", i, h, want)
		}
	}
	if out.buf.Len() != 0 {
		t.Fatalf("%d bytes left over", out.buf.Len())
	}
}

// TestOutboxFlood: batches past copyBudget, most of their payloads
// referred to, come out byte for byte as added, and the outbox keeps its
// large array (and no more than keepOutbox) between them, so that a flood
// does not regrow it from nothing at every batch (it did: the headers past
// copyBudget pushed it over keepOutbox, and reset dropped it).
func TestOutboxFlood(t *testing.T) {
	const (
		size  = 1 << 10
		count = 16 << 10 // 16 MiB a batch: its headers alone take buf past keepOutbox
	)
	var o outbox
	payload := make([]byte, size)
	var want bytes.Buffer
	var out sink
	var ms runtime.MemStats
	for batch := range 3 {
		want.Reset()
		out.buf.Reset()
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		for i := range count {
			binary.BigEndian.PutUint64(payload, uint64(batch*count+i))
			// A publish's header as a bridge sends it: some 100 bytes.
			h := wire.Header{Codec: "json", Type: "[]uint8", Sender: "3f9a1c2e7b6d4a50", Seq: uint64(i), SendTime: time.Now().UnixNano(),
				Ext: "colugo.bridge.origin=lab 3f9a1c2e7b6d4a51"}
			var scratch [128]byte
			pre := appendPrefix(scratch[:0], "robot/pose", &h, transport.KindPublish, size, true)
			if i == 0 && batch == 0 {
				t.Logf("headers of %d bytes", len(pre))
			}
			want.Write(pre)
			want.Write(payload)
			o.add(pre, &payloadRef{b: payload}) // referred ones are copied (private) as added: payload may change
		}
		runtime.ReadMemStats(&ms)
		allocated := ms.TotalAlloc - before
		if err := o.writeTo(&out, nil, new(net.Buffers), new(net.Buffers)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.buf.Bytes(), want.Bytes()) {
			t.Fatalf("batch %d: %d bytes written differ from the %d added", batch, out.buf.Len(), want.Len())
		}
		refs := len(o.refs)
		if copied := count - refs; copied > copyBudget/size {
			t.Fatalf("batch %d: %d payloads copied, past copyBudget (%d)", batch, copied, copyBudget/size)
		}
		o.reset()
		kept := cap(o.buf)
		for _, f := range o.free {
			kept += cap(f)
		}
		if kept > keepOutbox || cap(o.buf) < copyBudget {
			t.Fatalf("batch %d: reset kept %d bytes, buf %d: want at most %d, buf at least %d", batch, kept, cap(o.buf), keepOutbox, copyBudget)
		}
		// Beyond the private copies of the payloads referred to: a few
		// arrays and the segments' and refs' slices (at the first batch,
		// buf's growth too).
		if extra := int64(allocated) - int64(refs*size); batch > 0 && extra > 4<<20 {
			t.Errorf("batch %d: %d MiB allocated beyond the %d private copies, want at most 4", batch, extra>>20, refs)
		}
	}
}

// TestSendWaitForRoom: a sender finding the queue full waits until the
// writer has written a batch, then goes in; a full queue refuses send.
func TestSendWaitForRoom(t *testing.T) {
	t.Parallel()
	c, out := testConn(t, roleDealer, WithSendQueue(1))
	if !c.send([]byte("one"), nil) {
		t.Fatal("send to an empty queue refused")
	}
	if c.send([]byte("two"), nil) {
		t.Fatal("send to a full queue accepted")
	}
	done := make(chan error, 1)
	go func() { done <- c.sendWait(context.Background(), []byte("two"), payloadRef{}, direct) }()
	testwait.Until(t, "", func() bool { // the waiter is parked on c.room
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.room != nil
	})
	if err := c.flush(flushKicked); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testWait):
		t.Fatal("sendWait still waiting after the batch was written")
	}
	if err := c.flush(flushKicked); err != nil {
		t.Fatal(err)
	}
	if got := out.buf.String(); got != "onetwo" {
		t.Fatalf("wrote %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_ = c.send([]byte("three"), nil)
	cancel()
	if err := c.sendWait(ctx, []byte("four"), payloadRef{}, direct); err != context.Canceled {
		t.Fatalf("sendWait on a full queue with a cancelled context: %v", err)
	}
}

// partialWriter takes at most n bytes per write, then fails if err is set.
type partialWriter struct {
	n    int
	got  []byte
	err  error
	once bool
}

func (w *partialWriter) Write(b []byte) (int, error) {
	if w.err != nil && w.once {
		return 0, w.err
	}
	w.once = true
	k := min(w.n, len(b))
	w.got = append(w.got, b[:k]...)
	return k, nil
}

// TestSendNowPartialWrite: when the socket takes only part of a direct
// write, the writer goroutine sends the rest before anything queued
// meanwhile, and the queue counts the message until then.
func TestSendNowPartialWrite(t *testing.T) {
	t.Parallel()
	c, out := testConn(t, roleDealer, WithSendQueue(4))
	pw := &partialWriter{n: 3}
	c.fw = pw
	if !c.sendNow([]byte("hello "), []byte("world")) {
		t.Fatal("sendNow refused")
	}
	if string(pw.got) != "hel" {
		t.Fatalf("direct write took %q", pw.got)
	}
	if !c.sendNow([]byte("next"), nil) || !c.send([]byte("+last"), nil) {
		t.Fatal("send refused behind a partial write")
	}
	if string(pw.got) != "hel" {
		t.Fatalf("a second direct write jumped ahead of the rest of the first: %q", pw.got)
	}
	c.wmu.Lock()
	queued := c.queued
	c.wmu.Unlock()
	if queued != 3 {
		t.Fatalf("queued = %d, want 3", queued)
	}
	if err := c.flush(flushKicked); err != nil {
		t.Fatal(err)
	}
	if got := string(pw.got) + out.buf.String(); got != "hello worldnext+last" {
		t.Fatalf("the peer got %q", got)
	}
	if c.queued != 0 || c.writing {
		t.Fatalf("after the flush: queued %d, writing %v", c.queued, c.writing)
	}
	// Idle again: the next direct write goes out from the caller.
	pw.n = 100
	if !c.sendNow([]byte("again"), nil) || string(pw.got) != "helagain" {
		t.Fatalf("direct write after the flush: %q", pw.got)
	}
}

// TestSendNowWriteError: a failed direct write closes the connection.
func TestSendNowWriteError(t *testing.T) {
	t.Parallel()
	c, _ := testConn(t, roleDealer)
	c.fw = &partialWriter{n: 1, err: errors.New("broken pipe"), once: true}
	c.sendNow([]byte("x"), nil)
	select {
	case <-c.done:
	default:
		t.Fatal("connection still open after a failed write")
	}
	if err := c.flush(flushKicked); err == nil {
		t.Fatal("the writer does not see the failed write")
	}
}

// TestSendAtQuietLink: a publish on a link quiet for quietGap is written
// by the publisher itself; one close behind the last goes to the writer.
func TestSendAtQuietLink(t *testing.T) {
	t.Parallel()
	c, out := testConn(t, rolePubIn)
	pw := &partialWriter{n: 1 << 20}
	c.fw = pw
	t0 := time.Now().UnixNano()
	c.sendAt([]byte("a"), nil, t0)
	c.sendAt([]byte("b"), nil, t0+int64(quietGap)/2) // busy: queued for the writer
	c.sendAt([]byte("c"), nil, t0+3*int64(quietGap)) // quiet again, but b is queued: order first
	if string(pw.got) != "a" {
		t.Fatalf("written directly: %q, want a", pw.got)
	}
	if err := c.flush(flushKicked); err != nil {
		t.Fatal(err)
	}
	if got := out.buf.String(); got != "bc" {
		t.Fatalf("the writer wrote %q, want bc", got)
	}
	c.sendAt([]byte("d"), nil, t0+5*int64(quietGap))
	if string(pw.got) != "ad" {
		t.Fatalf("written directly: %q, want ad", pw.got)
	}
}

// TestOutboxCopyBudget: once an outbox holds copyBudget bytes (its peer
// is not reading), payloads are referred to through one private copy per
// publish, shared by every connection, instead of copied into each.
func TestOutboxCopyBudget(t *testing.T) {
	t.Parallel()
	var a, b outbox
	payload := bytes.Repeat([]byte("p"), 1000)
	for len(a.buf)+1+len(payload) <= copyBudget { // still copied
		p := payloadRef{b: payload}
		a.add([]byte("h"), &p)
		b.add([]byte("h"), &p)
	}
	if len(a.segs) != 0 || p0(a) != nil {
		t.Fatal("referred to a payload below the budget")
	}
	p := payloadRef{b: payload}
	a.add([]byte("h"), &p)
	b.add([]byte("h"), &p)
	if len(a.segs) != 2 || len(b.segs) != 2 {
		t.Fatalf("over the budget: %d and %d segments, want 2 (copied bytes, the payload)", len(a.segs), len(b.segs))
	}
	if &a.segs[1][0] != &b.segs[1][0] || &a.segs[1][0] == &payload[0] {
		t.Fatal("the two outboxes do not share one private copy of the payload")
	}
	payload[0] = 'X' // the caller's buffer is its own again
	var out sink
	if err := a.writeTo(&out, nil, new(net.Buffers), new(net.Buffers)); err != nil {
		t.Fatal(err)
	}
	if bytes.IndexByte(out.buf.Bytes(), 'X') >= 0 {
		t.Fatal("the outbox wrote the caller's later change")
	}
}

// p0 is the first referred-to payload of o, if any.
func p0(o outbox) []byte {
	if len(o.segs) < 2 {
		return nil
	}
	return o.segs[1]
}

// TestSendQueueBytes: the byte bound refuses a message that would pass it,
// but one message of any size can always wait.
func TestSendQueueBytes(t *testing.T) {
	t.Parallel()
	c, out := testConn(t, rolePubIn, WithSendQueueBytes(1000))
	big := make([]byte, 5000)
	if !c.send([]byte("a"), big) {
		t.Fatal("a lone message over the byte bound refused")
	}
	if c.send([]byte("b"), nil) {
		t.Fatal("a message past the byte bound accepted")
	}
	if err := c.flush(flushKicked); err != nil {
		t.Fatal(err)
	}
	if out.buf.Len() != 5001 {
		t.Fatalf("wrote %d bytes, want 5001", out.buf.Len())
	}
	if !c.send([]byte("c"), make([]byte, 500)) || !c.send([]byte("d"), make([]byte, 400)) {
		t.Fatal("messages within the bound refused")
	}
	if c.send([]byte("e"), make([]byte, 200)) {
		t.Fatal("a message past the byte bound accepted")
	}
	if _, err := New(WithSendQueueBytes(0)); err == nil {
		t.Fatal("WithSendQueueBytes(0) accepted")
	}
}

// testConn is a connection over a sink, with no goroutines: the test is
// its writer (flush).
func testConn(t *testing.T, r role, opts ...Option) (*conn, *sink) {
	t.Helper()
	tr, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	out := &sink{}
	return tr.newConn(out, "test", r), out
}

// TestWriterCreditsProgress: a large batch is written in chunks, each
// credited to the queue as the peer takes it, so that a publisher waiting
// for room (back-pressure) sees room before the whole batch is written.
func TestWriterCreditsProgress(t *testing.T) {
	t.Parallel()
	tr, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	a, b := net.Pipe() // a write blocks until the peer reads it
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	c := tr.newConn(a, "test", rolePubIn)
	payload := make([]byte, 32<<10)
	const n = 64 // 2 MiB: eight chunks
	for range n {
		if !c.send([]byte("pre"), payload) {
			t.Fatal("queue full")
		}
	}
	c.wmu.Lock()
	total := c.qbytes
	c.room = make(chan struct{})
	room := c.room
	c.wmu.Unlock()
	done := make(chan error, 1)
	go func() { done <- c.flush(flushKicked) }()
	if _, err := io.ReadFull(b, make([]byte, 3*writeChunk/2)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-room:
	case <-time.After(testWait):
		t.Fatal("no room signalled while the batch is being written")
	}
	c.wmu.Lock()
	left := c.qbytes
	c.wmu.Unlock()
	if left > total-writeChunk || left <= 0 {
		t.Fatalf("after the peer took %d of %d bytes, the queue counts %d", 3*writeChunk/2, total, left)
	}
	if _, err := io.CopyN(io.Discard, b, int64(total-3*writeChunk/2)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.qbytes != 0 || c.queued != 0 || c.credited != 0 {
		t.Fatalf("after the batch: %d bytes, %d messages, %d credited", c.qbytes, c.queued, c.credited)
	}
}

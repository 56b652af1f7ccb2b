package zmq

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// Buffer sizes per connection.
const (
	readBufSize = 32 << 10
	// maxFrames caps the frames of one message: colugo uses 3, and each
	// empty frame still costs a slice header.
	maxFrames = 64
	// maxSide caps the PONGs the reading goroutine may queue while the
	// writer is stuck on a peer that does not read.
	maxSide = 64 << 10
)

// Errors of the traffic phase that end a connection (handshake errors are
// in handshake.go).
var (
	errTooManyFrames = errors.New("too many frames in one message")
	errSideFull      = errors.New("peer does not read its PONGs")
	errConnDone      = errors.New("connection closed")
)

// extIdentity is the ZMTP Identity property with which a colugo
// connection says that it decodes header extensions (wire.FlagExt): sent
// by subscriber connections (so that the publisher sends them extensions)
// and by router listeners (so that requesters do). libzmq and zmq4 use the
// Identity of a peer only on ROUTER sockets, which neither of these ever
// dials, and older colugo nodes ignore it. Dealers never send it: two
// dealers with one Identity would clash at a libzmq ROUTER; a router
// learns that a requester decodes extensions from its first request that
// carries some.
const extIdentity = "colugo/ext=1"

// role says what a connection is for.
type role uint8

const (
	rolePubIn    role = iota // accepted on the PUB listener: a subscriber
	roleRouterIn             // accepted on the ROUTER listener: a requester
	roleDealer               // dialled: our requests to a router
	roleSub                  // dialled: our subscriptions to a publisher

	// The seed's roles (seed.go): one frame per message, REQ envelopes.
	roleSeedPubIn    // accepted on a seed publisher's listener: a seed SUB
	roleSeedRouterIn // accepted on a seed server's listener: a seed REQ
	roleSeedDealer   // dialled: our requests to a seed REP
	roleSeedSub      // dialled: our subscription to a seed PUB
)

var roleNames = [...]string{"pub-in", "router-in", "dealer", "sub", "seed-pub-in", "seed-router-in", "seed-dealer", "seed-sub"}

func (r role) String() string { return roleNames[r] }

// cmdKind is the name of a ZMTP command the reader received.
type cmdKind uint8

const (
	cmdOther cmdKind = iota
	cmdPing
	cmdSubscribe
	cmdCancel
)

// conn is one ZMTP connection: the handshake (handshake.go), then a reader
// goroutine that decodes frames (recv.go) and a writer goroutine that
// frames and writes messages (send.go).
//
// Goroutines: one reader (readLoop; it runs the handshake first for
// accepted conns) and one writer (writeLoop). close ends both: it closes done
// and the net.Conn. The transport's WaitGroup owns both goroutines.
type conn struct {
	t    *Transport
	nc   net.Conn
	addr string // the peer's address: as dialled, or as accepted
	role role

	// Read side, reading goroutine only.
	live liveReader
	br   *bufio.Reader
	rb   recvBuf           // the traffic-phase reader's buffers (recv.go)
	held int64             // receive budget reserved for the message being read (recv.go)
	host string            // the peer's host: its key in the receive budget
	name string            // last name parsed, so a stream on one topic allocates it once
	hdr  wire.Header       // last header decoded, whose strings the next one reuses
	msg  transport.Message // the publish being handled (roleSub), reused

	// Write side (send.go). wmu guards these fields; the socket is written
	// by whoever set writing, outside the lock.
	kick     chan struct{} // one slot: the outbox or side holds bytes to write
	wmu      sync.Mutex
	out      outbox        // waiting for the writer
	carry    outbox        // the rest of a partial direct write: written before out
	spare    outbox        // the last batch's buffers, for reuse
	queued   int           // messages in out, carry and the batch being written
	qbytes   int           // and their bytes
	enqueued uint64        // messages ever queued (Sync)
	written  uint64        // of them, written or dropped with the connection (Sync)
	writing  bool          // a goroutine is writing a batch outside the lock
	flushDue bool          // the writer found writing set: wake it when done
	pingDue  bool          // a heartbeat PING waits for the socket
	lastAt   int64         // send time of the last publish (sendAt)
	room     chan struct{} // closed after each batch, for sendWait; nil if nobody waits
	werr     error         // a failed non-blocking write, for the writer goroutine
	dead     bool          // the writer has stopped: nothing more is queued (dropQueued)
	fw       directWriter  // non-blocking writes for sendNow; nil where unsupported
	credited int           // bytes of the batch being written already taken off qbytes (progress)
	iov, wb  net.Buffers   // the writer's scratch for chunked writes
	// Back-pressure and drops (a subscriber connection): demoted is set
	// when a publish waited for this connection in vain, and cleared once
	// the queue has drained to half of demotedAt, its bytes then; slow is
	// set by a missed message and cleared by the next one queued while not
	// demoted; dropped counts the missed messages.
	// ext: the peer decodes header extensions (wire.FlagExt). Set in the
	// handshake for the peers that say so (extIdentity), and on a router
	// connection by the first request that carries extensions.
	ext       atomic.Bool
	demoted   atomic.Bool
	demotedAt int
	slow      atomic.Bool
	dropped   atomic.Uint64
	sideMu    sync.Mutex
	side      []byte // PONGs queued by the reading goroutine
	sideEnd   int    // side[:sideEnd] holds whole frames
	// sidePending is set while side holds whole frames: direct writes
	// (sendNow) then leave the socket to the writer.
	sidePending atomic.Bool
	ping        []byte

	done       chan struct{} // closed by close
	closeOnce  sync.Once
	closeErr   error // why, set before done closes
	deliberate bool  // closed by us (Close, Disconnect, Unsubscribe): not a loss
	writerDone chan struct{}

	in *inbound // an accepted conn, counted in the limits until teardown; nil if dialled
	// lastData is when the peer last sent a message (not a command but a
	// subscription; Unix ns, at the resolution of the reader's system
	// calls), 0 before its first: what the connection limits evict by.
	lastData atomic.Int64
	rp       routerPeer // the ReplyWriter of a roleRouterIn conn
	pp       *pubPeer   // the subscriptions of a rolePubIn conn
	dl       *dealer    // the requests of a roleDealer or roleSeedDealer conn
	sc       *seedConn  // the seed state of a roleSeed* conn (seed.go)
}

func (t *Transport) newConn(nc net.Conn, addr string, r role) *conn {
	c := &conn{
		t:          t,
		nc:         nc,
		addr:       addr,
		host:       hostOf(addr),
		role:       r,
		live:       liveReader{nc: nc, timeout: t.cfg.peerTimeout},
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		ping:       t.ping,
	}
	c.br = bufio.NewReaderSize(&c.live, readBufSize)
	c.rp.c = c
	return c
}

// close ends the connection; the first cause wins. Safe from any goroutine.
func (c *conn) close(cause error, deliberate bool) {
	c.closeOnce.Do(func() {
		c.closeErr = cause
		c.deliberate = deliberate
		close(c.done)
		_ = c.nc.Close()
	})
}

// sideWrite adds frames from the reading goroutine (PONGs) to the side
// buffer, and wakes the writer once it holds whole frames, which it
// writes between two messages: a PONG never splits a message, and the
// writer stays the only goroutine that writes to the socket.
func (c *conn) sideWrite(p []byte) error {
	c.sideMu.Lock()
	defer c.sideMu.Unlock()
	if len(c.side)+len(p) > maxSide {
		return errSideFull
	}
	c.side = append(c.side, p...)
	for {
		b := c.side[c.sideEnd:]
		if len(b) < 2 {
			break
		}
		size, hl := uint64(b[1]), 2
		if b[0]&flagLong != 0 {
			if len(b) < 9 {
				break
			}
			size, hl = binary.BigEndian.Uint64(b[1:9]), 9
		}
		if uint64(len(b)-hl) < size {
			break
		}
		c.sideEnd += hl + int(size)
	}
	if c.sideEnd > 0 {
		c.sidePending.Store(true)
		c.wake()
	}
	return nil
}

// noteData records that the peer sent a message, for the connection
// limits (makeRoomLocked); inbound connections only. It reuses the
// reader's clock reading: no clock read per message.
func (c *conn) noteData() {
	if c.role == rolePubIn || c.role == roleRouterIn || c.role == roleSeedPubIn || c.role == roleSeedRouterIn {
		c.lastData.Store(max(c.live.last, 1))
	}
}

// liveReader is what the bufio.Reader reads from. After the handshake it
// keeps a read deadline peerTimeout·5/4 ahead of the last read, renewed at
// most every peerTimeout/4, before and after each read, so a peer silent
// for peerTimeout fails the read at a cost of two clock reads per system
// call, while a reader that was busy in its handler for longer than that
// does not mistake the wait for silence.
type liveReader struct {
	nc      net.Conn
	hb      bool
	timeout time.Duration
	lastSet time.Time
	last    int64 // Unix ns of the last Read, for conn.noteData
	// until is the deadline of a large message being read (recv.go's
	// reserve), or zero; it wins when earlier. Whoever changes it zeroes
	// lastSet.
	until time.Time
}

func (l *liveReader) Read(p []byte) (int, error) {
	if !l.hb {
		return l.nc.Read(p)
	}
	// Renewed before the read too: a handler that held the reader (a
	// subscription that blocks, waiting for its consumer) may have let the
	// deadline pass while the peer kept sending, and that is not silence.
	if now := time.Now(); l.lastSet.IsZero() || now.Sub(l.lastSet) > l.timeout/4 {
		if err := l.renew(now); err != nil {
			return 0, err
		}
	}
	n, err := l.nc.Read(p)
	// The clock is read once per system call, after it: so last is when
	// bytes arrived, not when an idle connection started waiting.
	now := time.Now()
	l.last = now.UnixNano()
	if err == nil && now.Sub(l.lastSet) > l.timeout/4 {
		err = l.renew(now)
	}
	return n, err
}

// renew moves the read deadline to peerTimeout·5/4 from now, or to until
// when that is earlier.
func (l *liveReader) renew(now time.Time) error {
	d := now.Add(l.timeout + l.timeout/4)
	if !l.until.IsZero() && l.until.Before(d) {
		d = l.until
	}
	if err := l.nc.SetReadDeadline(d); err != nil {
		return err
	}
	l.lastSet = now
	return nil
}

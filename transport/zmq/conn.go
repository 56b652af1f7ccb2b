package zmq

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// Buffer sizes per connection.
const (
	readBufSize = 32 << 10
	// handshakeMaxFrame caps frames before the handshake is done: READY
	// metadata is a few hundred bytes, and a stranger gets no more.
	handshakeMaxFrame = 64 << 10
	// maxFrames caps the frames of one message: colugo uses 3, and each
	// empty frame still costs zmq4 a slice header.
	maxFrames = 64
	// maxSide caps the bytes zmq4 may write from the reading goroutine
	// (PONGs) while the writer is stuck on a peer that does not read.
	maxSide = 64 << 10
)

// Errors a guard returns to zmq4 to stop a read; they end the connection.
var (
	errFrameTooLarge = errors.New("frame too large")
	errTooManyFrames = errors.New("too many frames in one message")
	errBadFlags      = errors.New("reserved frame flags set")
	errBadMetadata   = errors.New("malformed READY metadata")
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
)

var roleNames = [...]string{"pub-in", "router-in", "dealer", "sub"}

func (r role) String() string { return roleNames[r] }

func (r role) socketType() zmq4.SocketType {
	switch r {
	case rolePubIn:
		return zmq4.Pub
	case roleRouterIn:
		return zmq4.Router
	case roleDealer:
		return zmq4.Dealer
	default:
		return zmq4.Sub
	}
}

// cmdKind is the name of the last ZMTP command the guard saw, since zmq4's
// RecvMsg hands over a command's body without its name.
type cmdKind uint8

const (
	cmdOther cmdKind = iota
	cmdPing
	cmdSubscribe
	cmdCancel
)

// Frame reader states.
const (
	stHead = iota // flags and the first length byte
	stLong        // the other 7 bytes of a long length
	stBody
)

// conn is one ZMTP connection. The net.Conn is ours; zmq4's Conn runs the
// handshake and decodes what the reader goroutine reads; the writer goroutine
// frames and writes messages itself.
//
// Goroutines: one reader (RecvMsg in a loop; it runs the handshake first for
// accepted conns) and one writer (writeLoop). close ends both: it closes done
// and the net.Conn. The transport's WaitGroup owns both goroutines.
type conn struct {
	t    *Transport
	nc   net.Conn
	addr string // the peer's address: as dialled, or as accepted
	role role
	zc   *zmq4.Conn

	// Read side, reading goroutine only.
	live liveReader
	br   *bufio.Reader
	rd   frameReader
	rb   recvBuf           // the traffic-phase reader's buffers (recv.go)
	held int64             // receive budget reserved for the message being read (recv.go)
	host string            // the peer's host: its key in the receive budget
	name string            // last name parsed, so a stream on one topic allocates it once
	hdr  wire.Header       // last header decoded, whose strings the next one reuses
	msg  transport.Message // the publish being handled (roleSub), reused

	// Write side (send.go). wmu guards these fields; the socket is written
	// by whoever set writing, outside the lock.
	running  bool          // set once the handshake is done, before the goroutines start
	kick     chan struct{} // one slot: the outbox or side holds bytes to write
	wmu      sync.Mutex
	out      outbox        // waiting for the writer
	carry    outbox        // the rest of a partial direct write: written before out
	spare    outbox        // the last batch's buffers, for reuse
	queued   int           // messages in out, carry and the batch being written
	qbytes   int           // and their bytes
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
	side      []byte // bytes zmq4 wrote from the reading goroutine (PONGs)
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
	dl       *dealer    // the requests of a roleDealer conn
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
	c.rd = frameReader{c: c, greet: 64, max: handshakeMaxFrame, handshake: true}
	c.rp.c = c
	return c
}

// handshake runs the ZMTP handshake, bounded by deadline; if greetBy is
// earlier, the peer's 64-byte greeting must be in by then. On failure the
// caller closes nc.
func (c *conn) handshake(server bool, greetBy, deadline time.Time) error {
	first := deadline
	if !greetBy.IsZero() && greetBy.Before(deadline) {
		first, c.rd.greetDeadline = greetBy, deadline
	}
	if err := c.nc.SetDeadline(first); err != nil {
		return err
	}
	var id zmq4.SocketIdentity
	if c.role == roleSub || c.role == roleRouterIn {
		id = zmq4.SocketIdentity(extIdentity)
	}
	zc, err := openZMTP(&guard{Conn: c.nc, c: c}, c.role.socketType(), id, server)
	if err != nil {
		return err
	}
	if c.role == rolePubIn || c.role == roleDealer {
		c.ext.Store(zc.Peer.Meta["Identity"] == extIdentity)
	}
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return err
	}
	c.zc = zc
	c.rd.handshake = false
	c.rd.max = c.frameLimit()
	c.live.hb = true
	c.running = true
	if fw := newFastWriter(c.nc); fw != nil { // not a nil *fastWriter in the interface
		c.fw = fw
	}
	return nil
}

// errPanic marks an error made of a panic in zmq4, contained at the
// connection.
var errPanic = errors.New("zmq4 panicked")

// openZMTP is zmq4.Open with its panics turned into errors: the guard
// checks what is known to make zmq4 panic, and this catches the rest, so
// that a peer can at worst fail its own connection.
func openZMTP(rw net.Conn, typ zmq4.SocketType, id zmq4.SocketIdentity, server bool) (zc *zmq4.Conn, err error) {
	defer func() {
		if p := recover(); p != nil {
			zc, err = nil, fmt.Errorf("%w in the handshake: %v", errPanic, p)
		}
	}()
	return zmq4.Open(rw, null.Security(), typ, id, server, nil)
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

// guard is the net.Conn zmq4 reads and writes through.
//
// Reads follow the ZMTP frame headers as zmq4 reads them and fail the read
// that completes an oversized length, before zmq4 allocates the body. READY
// metadata is checked before zmq4 parses it (a short property makes zmq4
// panic).
//
// Writes: during the handshake they go straight to the socket. Afterwards
// only RecvMsg writes, to answer a PING with a PONG from the reading
// goroutine, in two calls (header, body). Those bytes go to a side buffer,
// and whole frames are handed to the writer goroutine, which writes them
// between two messages and flushes them: a PONG never splits a message, and
// the writer stays the only goroutine that writes to the socket.
type guard struct {
	net.Conn
	c *conn
}

func (g *guard) Write(p []byte) (int, error) {
	c := g.c
	if !c.running {
		return c.nc.Write(p)
	}
	if err := c.sideWrite(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// sideWrite adds bytes written from the reading goroutine (PONGs) to the
// side buffer, and wakes the writer once it holds whole frames.
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

// frameReader tracks where the byte stream is in the ZMTP grammar.
type frameReader struct {
	c         *conn // for the receive budget, after the handshake
	greet     int   // greeting bytes still to come
	state     int
	hdr       [9]byte
	hn        int // header bytes collected
	flags     byte
	left      uint64 // body bytes still to come
	msgBytes  uint64
	msgFrames int
	max       uint64
	handshake bool
	lastCmd   cmdKind
	// greetDeadline, if set, is the handshake deadline to move to once the
	// greeting is in (the greeting has a shorter one).
	greetDeadline time.Time
}

func (g *guard) Read(p []byte) (int, error) {
	c, r := g.c, &g.c.rd
	if len(p) == 0 {
		return 0, nil
	}
	switch {
	case r.greet > 0:
		n, err := c.br.Read(p[:min(len(p), r.greet)])
		r.greet -= n
		if r.greet == 0 && !r.greetDeadline.IsZero() {
			// The greeting is in: the rest of the handshake gets the
			// handshake timeout.
			if err := c.nc.SetDeadline(r.greetDeadline); err != nil {
				return n, err
			}
		}
		return n, err
	case r.state == stBody:
		if r.flags&flagCommand != 0 && uint64(len(p)) == r.left {
			// Commands are small and zmq4 reads them whole: read all of it
			// to check it before zmq4 parses it.
			n, err := io.ReadFull(c.br, p)
			if err != nil {
				return n, err
			}
			if err := r.command(p); err != nil {
				return 0, err
			}
			r.frameDone()
			return n, nil
		}
		n, err := c.br.Read(p[:min(uint64(len(p)), r.left)])
		r.left -= uint64(n)
		if r.left == 0 {
			r.lastCmd = cmdOther
			r.frameDone()
		}
		return n, err
	}
	need := 2 - r.hn
	if r.state == stLong {
		need = 9 - r.hn
	}
	n, err := c.br.Read(p[:min(len(p), need)])
	copy(r.hdr[r.hn:], p[:n])
	r.hn += n
	switch {
	case r.state == stHead && r.hn == 2:
		r.flags = r.hdr[0]
		if r.flags&^(flagMore|flagLong|flagCommand) != 0 {
			return 0, errBadFlags
		}
		if r.flags&flagLong != 0 {
			r.state = stLong
			break
		}
		if err := r.body(uint64(r.hdr[1])); err != nil {
			return 0, err
		}
	case r.state == stLong && r.hn == 9:
		if err := r.body(binary.BigEndian.Uint64(r.hdr[1:9])); err != nil {
			return 0, err
		}
	}
	return n, err
}

// body checks a frame's announced size against the caps. It runs in the
// Read that delivers the last length byte, which then fails, so zmq4 never
// gets to allocate.
func (r *frameReader) body(size uint64) error {
	r.msgFrames++
	if r.msgFrames > maxFrames {
		return errTooManyFrames
	}
	if size > r.max || r.msgBytes+size > r.max {
		return fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, size, r.max)
	}
	r.msgBytes += size
	if !r.handshake {
		// zmq4 allocates the announced size as soon as this Read returns:
		// take it from the receive budget first (recv.go's reserve).
		if err := r.c.reserve(r.msgBytes); err != nil {
			return err
		}
	}
	r.left = size
	r.state = stBody
	if size == 0 { // zmq4 does not call Read for an empty body
		r.frameDone()
	}
	return nil
}

func (r *frameReader) frameDone() {
	if r.flags&flagMore == 0 {
		r.msgBytes, r.msgFrames = 0, 0
	}
	r.state, r.hn = stHead, 0
}

// command inspects a whole command frame body.
func (r *frameReader) command(b []byte) error {
	r.lastCmd = cmdOther
	if len(b) == 0 || int(b[0]) > len(b)-1 {
		return nil // zmq4 rejects it without panicking
	}
	name, body := string(b[1:1+b[0]]), b[1+b[0]:]
	switch name {
	case "PING":
		r.lastCmd = cmdPing
	case "SUBSCRIBE":
		r.lastCmd = cmdSubscribe
	case "CANCEL":
		r.lastCmd = cmdCancel
	case "READY":
		if r.handshake {
			return checkReady(body)
		}
	}
	return nil
}

// zmtpSocketTypes are the socket types zmq4's SocketType.IsCompatible
// knows, spelt as it does: any other Socket-Type (missing, unknown, in
// another case) makes it panic.
var zmtpSocketTypes = [...]string{
	"PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB",
}

// checkReady checks the metadata of a READY before zmq4 parses it. zmq4
// panics on a property cut short, and on a Socket-Type it does not know;
// it reads property names through Unicode title casing, so names are held
// to the ZMTP grammar (ASCII letters, digits, "-_.+"), which also makes its
// lookup of "Socket-Type" predictable.
func checkReady(b []byte) error {
	sockType, found := "", false
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || len(b) < 1+n+4 {
			return fmt.Errorf("%w: property cut short", errBadMetadata)
		}
		name := b[1 : 1+n]
		if !validPropName(name) {
			return fmt.Errorf("%w: property name %q", errBadMetadata, name)
		}
		b = b[1+n:]
		v := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(v) > uint64(len(b)) {
			return fmt.Errorf("%w: property %q cut short", errBadMetadata, name)
		}
		if isSocketTypeKey(name) { // zmq4 keeps the last one
			sockType, found = string(b[:v]), true
		}
		b = b[v:]
	}
	if !found {
		return fmt.Errorf("%w: no Socket-Type", errBadMetadata)
	}
	for _, st := range zmtpSocketTypes {
		if sockType == st {
			return nil
		}
	}
	return fmt.Errorf("%w: unknown Socket-Type %q", errBadMetadata, sockType)
}

// validPropName reports whether name follows ZMTP 3's grammar for
// property names: 1*255 (ALPHA | DIGIT | "-" | "_" | "." | "+").
func validPropName(name []byte) bool {
	for _, ch := range name {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case ch == '-', ch == '_', ch == '.', ch == '+':
		default:
			return false
		}
	}
	return len(name) > 0
}

// isSocketTypeKey reports whether zmq4 files the property name (ASCII, see
// validPropName) under "Socket-Type". zmq4 title-cases names without
// lowering the rest: only the first letter of each word ("socket", "type")
// changes, so "socket-type" qualifies and "SOCKET-TYPE" does not.
func isSocketTypeKey(name []byte) bool {
	return len(name) == len("Socket-Type") &&
		(name[0] == 's' || name[0] == 'S') && string(name[1:7]) == "ocket-" &&
		(name[7] == 't' || name[7] == 'T') && string(name[8:]) == "ype"
}

// noteData records that the peer sent a message, for the connection
// limits (makeRoomLocked); inbound connections only. It reuses the
// reader's clock reading: no clock read per message.
func (c *conn) noteData() {
	if c.role == rolePubIn || c.role == roleRouterIn {
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

var _ net.Conn = (*guard)(nil)

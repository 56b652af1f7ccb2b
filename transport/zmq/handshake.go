package zmq

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// This file is the ZMTP 3 NULL handshake (RFC 23 and 37): each side sends
// a 64-byte greeting and a READY command carrying its Socket-Type, and
// checks the other's. It replaced zmq4.Open, which this package had to
// shield behind a guard that parsed every byte before zmq4 did (zmq4
// v0.17.0 panics on a short READY property or a Socket-Type it does not
// know, and allocates what a frame header announces); the checks are the
// guard's, so what is accepted did not change, and the bytes sent are
// zmq4's. zmq4 stays the reference in the tests.

// Handshake errors; each ends the connection.
var (
	errGreeting      = errors.New("bad ZMTP greeting")
	errNotReady      = errors.New("expected a READY command")
	errIncompatible  = errors.New("incompatible socket type")
	errFrameTooLarge = errors.New("frame too large")
	errBadFlags      = errors.New("reserved frame flags set")
	errBadMetadata   = errors.New("malformed READY metadata")
)

// errPanic marks an error made of a panic in the handshake (in a net.Conn,
// or a bug), contained at the connection.
var errPanic = errors.New("panic in the handshake")

// handshakeMaxFrame caps the READY frame: its metadata is a few hundred
// bytes, and a stranger gets no more.
const handshakeMaxFrame = 64 << 10

// greetingLen is the size of a ZMTP 3 greeting.
const greetingLen = 64

// ourGreeting is what this package sends: signature, version 3.0,
// mechanism NULL, as-server 0, filler (as zmq4 does).
var ourGreeting = func() [greetingLen]byte {
	var g [greetingLen]byte
	g[0], g[9] = 0xFF, 0x7F
	g[10], g[11] = 3, 0
	copy(g[12:32], "NULL")
	return g
}()

// Socket types, as READY spells them.
const (
	stPub    = "PUB"
	stSub    = "SUB"
	stXPub   = "XPUB"
	stXSub   = "XSUB"
	stReq    = "REQ"
	stRep    = "REP"
	stDealer = "DEALER"
	stRouter = "ROUTER"
)

func (r role) socketType() string {
	switch r {
	case rolePubIn, roleSeedPubIn:
		return stPub
	case roleRouterIn, roleSeedRouterIn:
		return stRouter
	case roleDealer, roleSeedDealer:
		return stDealer
	default:
		return stSub
	}
}

// peerTypes are the socket types a role talks to (ZMTP's compatibility
// table, as zmq4 applies it).
func (r role) peerTypes() []string {
	switch r {
	case rolePubIn, roleSeedPubIn:
		return []string{stSub, stXSub}
	case roleRouterIn:
		return []string{stReq, stDealer, stRouter}
	case roleSeedRouterIn: // the seed's request clients are REQs; DEALERs speak the same envelopes
		return []string{stReq, stDealer}
	case roleDealer:
		return []string{stRep, stDealer, stRouter}
	case roleSeedDealer: // the seed's reply servers are REPs
		return []string{stRep, stRouter}
	default:
		return []string{stPub, stXPub}
	}
}

// readyFrame is a READY command frame for socketType: the properties
// Socket-Type and Identity, as zmq4 sends them (identity is empty but for
// the peers that announce header extensions: extIdentity).
func readyFrame(socketType string, identity ...string) []byte {
	body := append([]byte{5}, "READY"...)
	body = appendProp(body, "Socket-Type", socketType)
	body = appendProp(body, "Identity", strings.Join(identity, ""))
	return append(appendFrameHeader(nil, flagCommand, len(body)), body...)
}

func appendProp(b []byte, name, value string) []byte {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// handshake runs the ZMTP handshake, bounded by deadline; if greetBy is
// earlier, the peer's 64-byte greeting must be in by then. It writes our
// greeting and READY at once (the peer needs no answer first with NULL),
// then reads the peer's through the connection's bufio.Reader, so that
// what the peer sent after its READY is kept for the reader. On failure
// the caller closes nc. A panic (in a net.Conn) fails only this
// connection, with errPanic. NULL has no client and server roles: both
// sides do the same.
func (c *conn) handshake(greetBy, deadline time.Time) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	first := deadline
	if !greetBy.IsZero() && greetBy.Before(deadline) {
		first = greetBy
	}
	if err := c.nc.SetDeadline(first); err != nil {
		return err
	}
	var id string
	if c.role == roleSub || c.role == roleRouterIn {
		id = extIdentity // we decode header extensions
	}
	out := append(ourGreeting[:len(ourGreeting):len(ourGreeting)], readyFrame(c.role.socketType(), id)...)
	if _, err := c.nc.Write(out); err != nil {
		return err
	}
	var g [greetingLen]byte
	if _, err := io.ReadFull(c.br, g[:]); err != nil {
		return err
	}
	if err := checkGreeting(&g); err != nil {
		return err
	}
	if !first.Equal(deadline) { // the greeting is in: the rest gets the handshake timeout
		if err := c.nc.SetDeadline(deadline); err != nil {
			return err
		}
	}
	peer, peerID, err := c.readReady()
	if err != nil {
		return err
	}
	if c.role == rolePubIn || c.role == roleDealer {
		c.ext.Store(peerID == extIdentity)
	}
	ok := false
	for _, st := range c.role.peerTypes() {
		ok = ok || peer == st
	}
	if !ok {
		return fmt.Errorf("%w: %s with %s", errIncompatible, c.role.socketType(), peer)
	}
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return err
	}
	c.live.hb = true
	// Reads in the handshake leave no time (hb was off): bytes that came
	// with it (a first message) count as arriving now, for noteData.
	c.live.last = time.Now().UnixNano()
	if fw := newFastWriter(c.nc); fw != nil { // not a nil *fastWriter in the interface
		c.fw = fw
	}
	return nil
}

// checkGreeting accepts a ZMTP 3.0 or later greeting with the NULL
// mechanism, as zmq4 does: signature bytes 0 and 9, version at least 3.0,
// mechanism NULL (up to its first NUL), as-server 0 or 1.
func checkGreeting(g *[greetingLen]byte) error {
	mech := g[12:32]
	if i := bytes.IndexByte(mech, 0); i >= 0 {
		mech = mech[:i]
	}
	switch {
	case g[0] != 0xFF || g[9] != 0x7F:
		return fmt.Errorf("%w: no ZMTP signature", errGreeting)
	case g[10] < 3:
		return fmt.Errorf("%w: ZMTP version %d.%d, want 3.0 or later", errGreeting, g[10], g[11])
	case string(mech) != "NULL":
		return fmt.Errorf("%w: mechanism %q, want NULL", errGreeting, mech)
	case g[32] > 1:
		return fmt.Errorf("%w: as-server byte %d", errGreeting, g[32])
	}
	return nil
}

// readReady reads the peer's READY command (one frame: a command without
// MORE, of at most handshakeMaxFrame bytes) and returns its Socket-Type
// and Identity.
func (c *conn) readReady() (string, string, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
		return "", "", err
	}
	flags, size := hdr[0], uint64(hdr[1])
	if flags&^(flagMore|flagLong|flagCommand) != 0 {
		return "", "", errBadFlags
	}
	if flags&flagLong != 0 {
		if _, err := io.ReadFull(c.br, hdr[2:]); err != nil {
			return "", "", err
		}
		size = binary.BigEndian.Uint64(hdr[1:9])
	}
	if size > handshakeMaxFrame {
		return "", "", fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, size, handshakeMaxFrame)
	}
	if flags&flagCommand == 0 || flags&flagMore != 0 {
		return "", "", errNotReady
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return "", "", err
	}
	if len(body) == 0 || int(body[0]) > len(body)-1 || string(body[1:1+body[0]]) != "READY" {
		return "", "", errNotReady
	}
	return checkReady(body[1+body[0]:])
}

// zmtpSocketTypes are the socket types ZMTP defines, spelt as READY must
// spell them (zmq4 v0.17.0 panicked on any other, and peers of ours
// never send another).
var zmtpSocketTypes = [...]string{
	"PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB",
}

// checkReady checks the metadata of a READY and returns its Socket-Type
// and its Identity (the last property named so, in any case; "" if none).
// Property names are held to the ZMTP grammar (ASCII letters, digits,
// "-_.+"); a property cut short, a missing Socket-Type or one that is not
// ZMTP's are refused. The Socket-Type is the last property whose name is
// "Socket-Type" with either case at the start of each word (as zmq4 reads
// it; see isSocketTypeKey).
func checkReady(b []byte) (string, string, error) {
	sockType, identity, found := "", "", false
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || len(b) < 1+n+4 {
			return "", "", fmt.Errorf("%w: property cut short", errBadMetadata)
		}
		name := b[1 : 1+n]
		if !validPropName(name) {
			return "", "", fmt.Errorf("%w: property name %q", errBadMetadata, name)
		}
		b = b[1+n:]
		v := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(v) > uint64(len(b)) {
			return "", "", fmt.Errorf("%w: property %q cut short", errBadMetadata, name)
		}
		if isSocketTypeKey(name) { // the last one counts
			sockType, found = string(b[:v]), true
		} else if strings.EqualFold(string(name), "Identity") {
			identity = string(b[:v])
		}
		b = b[v:]
	}
	if !found {
		return "", "", fmt.Errorf("%w: no Socket-Type", errBadMetadata)
	}
	for _, st := range zmtpSocketTypes {
		if sockType == st {
			return sockType, identity, nil
		}
	}
	return "", "", fmt.Errorf("%w: unknown Socket-Type %q", errBadMetadata, sockType)
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

// isSocketTypeKey reports whether the property name (ASCII, see
// validPropName) is read as "Socket-Type". zmq4 title-cases names without
// lowering the rest: only the first letter of each word ("socket", "type")
// may change, so "socket-type" qualifies and "SOCKET-TYPE" does not. This
// package keeps that rule, so that it accepts what it accepted on zmq4.
func isSocketTypeKey(name []byte) bool {
	return len(name) == len("Socket-Type") &&
		(name[0] == 's' || name[0] == 'S') && string(name[1:7]) == "ocket-" &&
		(name[7] == 't' || name[7] == 'T') && string(name[8:]) == "ype"
}

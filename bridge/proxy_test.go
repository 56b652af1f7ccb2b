package bridge_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// cutProxy is a TCP proxy on 127.0.0.1 in front of a NATS server, whose
// link the test cuts: Cut drops every connection through it and refuses
// new ones (accepted and closed at once: the port stays the proxy's, so
// nobody else can take it during the cut) until Restore.
type cutProxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	stalled chan struct{} // while not nil, nothing passes; closed by Restore
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

// newCutProxy proxies to target (host:port), until the test ends.
func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = l.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// URL is the proxy's NATS URL.
func (p *cutProxy) URL() string { return "nats://" + p.l.Addr().String() }

func (p *cutProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut { // cut while dialling
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			continue
		}
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, gatedReader{p, src})
			// One way ended: end both, as a cut link would.
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(s, c) })
		p.wg.Go(func() { pipe(c, s) })
	}
}

// Cut drops every connection and refuses new ones (ending a stall).
func (p *cutProxy) Cut() {
	p.mu.Lock()
	p.cut = true
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// Stall stops every byte, both ways, on the connections open and on new
// ones, without closing any: a link that goes silent (a radio out of
// range, a middlebox dropping packets) rather than one that fails. The
// endpoints' socket buffers fill, then their writes block, until Restore.
func (p *cutProxy) Stall() {
	p.mu.Lock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
	p.mu.Unlock()
}

// Restore ends a cut (connections are accepted again) or a stall (what
// waited goes on).
func (p *cutProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
	p.mu.Unlock()
}

// gatedReader reads from c, holding what it read while the proxy is
// stalled: the proxy then reads no more, so the sender's buffers fill.
type gatedReader struct {
	p *cutProxy
	c net.Conn
}

func (g gatedReader) Read(b []byte) (int, error) {
	n, err := g.c.Read(b)
	g.p.mu.Lock()
	stalled := g.p.stalled
	g.p.mu.Unlock()
	if stalled != nil {
		<-stalled
	}
	return n, err
}

package testkit

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy on loopback in front of one target address, for
// tests of what a node does when its connection drops while both ends
// stay up (a Wi-Fi blip, a link flap): Cut resets every connection it
// carries and refuses new ones for a while, then it forwards again. It
// passes bytes as they come and looks at none of them.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu          sync.Mutex
	conns       map[*net.TCPConn]struct{}
	refuseUntil time.Time

	accepted, refused atomic.Int64
}

// NewProxy listens on addr (host:port on loopback, port 0 for any) and
// forwards each connection to target. It is closed, its connections with
// it, at the end of the test. It skips the test when it cannot listen on
// addr (say, 127.0.0.2 on a system without the whole 127/8 on loopback).
func NewProxy(tb testing.TB, addr, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Skipf("cannot listen on %s: %v", addr, err)
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[*net.TCPConn]struct{})}
	p.wg.Go(p.accept)
	tb.Cleanup(func() {
		_ = ln.Close()
		p.reset()
		p.wg.Wait()
	})
	return p
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted counts the connections the proxy has forwarded.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// Refused counts the connections it reset on arrival, during a Cut.
func (p *Proxy) Refused() int { return int(p.refused.Load()) }

// Cut resets (TCP RST) every connection the proxy carries, on both sides,
// and resets each new connection on arrival for d; then it forwards new
// connections again. It returns at once.
func (p *Proxy) Cut(d time.Duration) {
	p.mu.Lock()
	p.refuseUntil = time.Now().Add(d)
	p.mu.Unlock()
	p.reset()
}

// reset resets every connection the proxy carries.
func (p *Proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		rst(c)
		delete(p.conns, c)
	}
}

// rst closes c with SO_LINGER 0, so that the kernel sends a RST rather
// than a FIN: the peer sees "connection reset", as after a link failure
// that a middlebox noticed.
func rst(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

func (p *Proxy) accept() {
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		client := nc.(*net.TCPConn)
		p.mu.Lock()
		refusing := time.Now().Before(p.refuseUntil)
		p.mu.Unlock()
		if refusing {
			p.refused.Add(1)
			rst(client)
			continue
		}
		sc, err := net.DialTimeout("tcp", p.target, Wait)
		if err != nil {
			rst(client)
			continue
		}
		server := sc.(*net.TCPConn)
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.accepted.Add(1)
		p.wg.Go(func() { p.pipe(server, client) })
		p.wg.Go(func() { p.pipe(client, server) })
	}
}

// pipe copies src to dst until either fails, then resets both: a
// connection the proxy stops carrying is gone for both ends.
func (p *Proxy) pipe(dst, src *net.TCPConn) {
	_, _ = io.Copy(dst, src) // ends at a Cut, or when an end closes: either way both go
	p.mu.Lock()
	_, cs := p.conns[src]
	_, cd := p.conns[dst]
	delete(p.conns, src)
	delete(p.conns, dst)
	p.mu.Unlock()
	if cs || cd {
		rst(src)
		rst(dst)
	}
}

package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
)

// tcpReq is the floor for requests: length-prefixed echo over plain TCP
// connections on 127.0.0.1 (one per worker), bufio on both sides, one
// goroutine per connection on the server, no framing library.
type tcpReq struct {
	ln    net.Listener
	conns []*tcpClient
	wg    sync.WaitGroup
	mu    sync.Mutex
	srv   []net.Conn
}

type tcpClient struct {
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	buf []byte
}

func newTCPReq(workers int) (_ *tcpReq, err error) {
	r := &tcpReq{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	r.wg.Go(func() {
		for {
			nc, err := r.ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.srv = append(r.srv, nc)
			r.mu.Unlock()
			r.wg.Go(func() { tcpEcho(nc) })
		}
	})
	if err := r.dial(workers, r.ln.Addr().String()); err != nil {
		return nil, err
	}
	return r, nil
}

// dial opens one connection per worker to the echo server at addr.
func (r *tcpReq) dial(workers int, addr string) error {
	for range workers {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		r.conns = append(r.conns, &tcpClient{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)})
	}
	return nil
}

// newTCPClients connects workers clients to an echo server at addr, in
// another process.
func newTCPClients(workers int, addr string) (*tcpReq, error) {
	r := &tcpReq{}
	if err := r.dial(workers, addr); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func tcpEcho(nc net.Conn) {
	r, w := bufio.NewReader(nc), bufio.NewWriter(nc)
	var buf []byte
	for {
		var err error
		if buf, err = readFramed(r, buf); err != nil {
			return
		}
		if err := writeFramed(w, buf); err != nil {
			return
		}
	}
}

func readFramed(r *bufio.Reader, buf []byte) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > 64<<20 {
		return nil, errors.New("tcp: frame too large")
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func writeFramed(w *bufio.Writer, p []byte) error {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(p)))
	_, _ = w.Write(h[:])
	_, _ = w.Write(p)
	return w.Flush()
}

func (r *tcpReq) Request(worker int, p []byte) ([]byte, error) {
	c := r.conns[worker]
	if err := writeFramed(c.w, p); err != nil {
		return nil, err
	}
	var err error
	c.buf, err = readFramed(c.r, c.buf)
	return c.buf, err
}

func (r *tcpReq) Close() {
	if r.ln != nil {
		_ = r.ln.Close()
	}
	for _, c := range r.conns {
		_ = c.nc.Close()
	}
	r.mu.Lock()
	for _, nc := range r.srv {
		_ = nc.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

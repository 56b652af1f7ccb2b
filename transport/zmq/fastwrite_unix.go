//go:build unix

package zmq

import (
	"errors"
	"net"
	"syscall"
)

// fastWriter makes one non-blocking write(2) through a syscall.RawConn. Its
// callback is a method value made once per connection, so a write does not
// allocate a closure. Used under the connection's wmu only.
type fastWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

// newFastWriter returns a fastWriter for nc, or nil when nc has no file
// descriptor.
func newFastWriter(nc net.Conn) *fastWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &fastWriter{rc: rc}
	w.fn = w.write
	return w
}

func (w *fastWriter) write(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.b)
	return true // done, even on EAGAIN: the writer goroutine waits instead
}

// Write makes one write system call and never waits for the socket to
// become writable: it returns how much the kernel took.
func (w *fastWriter) Write(b []byte) (int, error) {
	w.b = b
	err := w.rc.Write(w.fn)
	n, werr := max(w.n, 0), w.err
	w.b, w.err = nil, nil
	switch {
	case err != nil:
		return n, err
	case werr == nil, errors.Is(werr, syscall.EAGAIN), errors.Is(werr, syscall.EINTR):
		return n, nil
	}
	return n, werr
}

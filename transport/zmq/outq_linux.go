package zmq

import (
	"net"
	"syscall"
	"unsafe"
)

// unsentBytes reports how many bytes nc's kernel send queue still holds:
// for TCP those not yet acknowledged by the peer, for a Unix socket those
// the peer has not read (SIOCOUTQ). ok is false when nc has no file
// descriptor or the ioctl fails.
func unsentBytes(nc net.Conn) (n int, ok bool) {
	sc, isSC := nc.(syscall.Conn)
	if !isSC {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var v int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v)))
	}); err != nil || errno != 0 {
		return 0, false
	}
	return int(v), true
}

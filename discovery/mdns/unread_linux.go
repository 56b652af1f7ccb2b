package mdns

import (
	"syscall"
	"unsafe"
)

// unread reports whether a datagram waits in the receive queue of the
// socket rc (ioctl SIOCINQ, alias TIOCINQ: the size of the next datagram).
// It reports false when it cannot tell.
func unread(rc syscall.RawConn) bool {
	if rc == nil {
		return false
	}
	var n int32
	var errno syscall.Errno
	err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	return err == nil && errno == 0 && n > 0
}

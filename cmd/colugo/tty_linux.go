package main

import (
	"syscall"
	"unsafe"
)

// isTerminal reports whether fd is a terminal: TCGETS succeeds on a tty
// only (not on /dev/null, another character device).
func isTerminal(fd uintptr) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

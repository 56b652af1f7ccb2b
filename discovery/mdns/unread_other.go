//go:build !linux

package mdns

import "syscall"

// unread reports whether a datagram waits in the receive queue of the
// socket rc. Outside Linux it cannot tell and reports false, so Settled
// covers the packets the listener had read when the first session's window
// ended, not those still queued in the socket.
func unread(syscall.RawConn) bool { return false }

//go:build unix

package record

import "syscall"

const openNonblock = syscall.O_NONBLOCK

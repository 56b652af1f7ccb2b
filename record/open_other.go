//go:build !unix

package record

const openNonblock = 0

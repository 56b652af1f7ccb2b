package colugo_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

func TestOptionsPrint(t *testing.T) {
	for _, c := range []struct {
		opt  any
		want string
	}{
		{colugo.WithDefaultTimeout(time.Second), "WithDefaultTimeout(1s)"},
		{colugo.WithMaxHandlers(8), "WithMaxHandlers(8)"},
		{colugo.WithCodec(codec.Raw{}), "WithCodec(raw)"},
		{colugo.Block(time.Millisecond), "Block(1ms)"},
		{colugo.WithKey(key1), "WithKey(<secret>, 0 previous)"}, // never the key itself
		{colugo.WithZeroCopy(), "WithZeroCopy()"},
		{colugo.WithEventBuffer(16), "WithEventBuffer(16)"},
	} {
		if got := fmt.Sprint(c.opt); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	if colugo.WithMaxHandlers(8) != colugo.WithMaxHandlers(8) {
		t.Error("equal options do not compare equal")
	}
}

package colugo_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// TestMaxPeers: a node keeps at most WithMaxPeers peers, counts the
// others it found (a flood of discovery records costs bounded work), and
// takes one of them when a kept peer leaves.
func TestMaxPeers(t *testing.T) {
	net := colugotest.NewNetwork(t)
	others := map[string]*colugo.Node{}
	for i := range 5 {
		name := fmt.Sprintf("p%d", i)
		others[name] = net.NewNode(name)
	}
	watcher := net.NewNode("watcher", colugo.WithMaxPeers(2))
	names := func() map[string]bool {
		m := map[string]bool{}
		for _, p := range watcher.Peers() {
			m[p.Name] = true
		}
		return m
	}
	testwait.Until(t, "two peers kept, three refused", func() bool {
		return len(names()) == 2 && watcher.Stats().PeersRefused >= 3
	})
	kept := names()
	for name := range kept {
		_ = others[name].Close() // one leaves: a waiting one is taken
		delete(kept, name)
		break
	}
	testwait.Until(t, "a waiting peer taken", func() bool {
		now := names()
		if len(now) != 2 {
			return false
		}
		for name := range now {
			if !kept[name] {
				return true // one that was refused
			}
		}
		return false
	})
	if n := len(watcher.Peers()); n > 2 {
		t.Errorf("%d peers kept, want at most 2", n)
	}
	if _, err := colugo.NewNode("x", colugo.WithMaxPeers(0)); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("WithMaxPeers(0): %v, want ErrInvalidOption", err)
	}
}

// hugeSchema is the JSON codec with a 17 MiB schema for every type.
type hugeSchema struct{ codec.JSON }

func (hugeSchema) Describe(any) ([]byte, error) { return bytes.Repeat([]byte{'s'}, 17<<20), nil }

// TestOwnDescribeTooLarge: a node whose $describe is over what peers
// accept says so, once, through its error handler; its peers do not list
// it.
func TestOwnDescribeTooLarge(t *testing.T) {
	net := colugotest.NewNetwork(t)
	errs := make(chan error, 16)
	big := net.NewNode("big", colugo.WithErrorHandler(func(err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	if _, err := colugo.NewPublisher[int](big, "t", colugo.WithCodec(hugeSchema{})); err != nil {
		t.Fatal(err)
	}
	peer := net.NewNode("peer")
	timeout := time.After(wait)
	for {
		select {
		case err := <-errs:
			if !strings.Contains(err.Error(), "over the 16777216 that peers accept") {
				continue
			}
			if ps := peer.Peers(); len(ps) != 0 {
				t.Errorf("the peer lists %s", ps[0].Name)
			}
			return
		case <-timeout:
			t.Fatalf("no report of the large $describe; peer refused %d", peer.Stats().PeersRefused)
		}
	}
}

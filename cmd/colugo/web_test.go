package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/colugo-go/colugo"
)

// TestWeb runs `colugo web` as a user does: it prints the URL to open,
// a Foxglove client that connects there gets serverInfo and sees a topic
// of the network advertised, and Ctrl-C stops it with status 0.
func TestWeb(t *testing.T) {
	dir := t.TempDir()
	pubNode := node(t, dir, "robot")
	p, err := colugo.NewPublisher[pose](pubNode, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	publishEvery(t, p, 20*time.Millisecond, func(i int) pose { return pose{X: i} })

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "web", "--listen", "127.0.0.1:0", "--max-clients", "1")
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var url string
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("colugo web exited: %v", cmd.Wait())
			}
			if _, rest, found := strings.Cut(l, "serving "); found {
				url, _, _ = strings.Cut(rest, " ")
			}
		case <-ctx.Done():
			t.Fatal("colugo web printed no URL")
		}
	}
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"foxglove.websocket.v1"}})
	if err != nil {
		t.Fatalf("dialling %s: %v", url, err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	// --max-clients 1: a second client is refused while the first stays.
	if c2, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"foxglove.websocket.v1"}}); err == nil {
		c2.CloseNow()
		t.Error("a second client was served with --max-clients 1")
	} else if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a second client: %v, %v; want 503", resp, err)
	}
	var info, advertised bool
	for !info || !advertised {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading (serverInfo %v, advertise %v): %v", info, advertised, err)
		}
		if typ != websocket.MessageText {
			continue
		}
		var op struct {
			Op       string `json:"op"`
			Name     string `json:"name"`
			Channels []struct {
				Topic string `json:"topic"`
			} `json:"channels"`
		}
		if err := json.Unmarshal(b, &op); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		switch op.Op {
		case "serverInfo":
			info = op.Name == "colugo"
		case "advertise":
			for _, ch := range op.Channels {
				advertised = advertised || ch.Topic == "robot/pose"
			}
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("colugo web after Ctrl-C: %v (want status 0)", err)
	}
}

func TestWebUsage(t *testing.T) {
	dir := t.TempDir()
	if r := runCLI(t, dir, "web", "extra"); r.code != exitUsage {
		t.Errorf("web with an argument: exit %d, want %d", r.code, exitUsage)
	}
	if r := runCLI(t, dir, "web", "--listen", "no-port"); r.code != exitUsage || !strings.Contains(r.stderr, "--listen") {
		t.Errorf("web --listen no-port: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, dir, "web", "--max-clients", "0"); r.code != exitUsage || !strings.Contains(r.stderr, "--max-clients") {
		t.Errorf("web --max-clients 0: exit %d, stderr %q", r.code, r.stderr)
	}
	// An address in use fails before the node starts: -v logs nothing of
	// a node.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := "colugo web: listen tcp " + ln.Addr().String() + ": bind: address already in use\n"
	if r := runCLI(t, dir, "web", "-v", "--listen", ln.Addr().String()); r.code != exitFail || r.stderr != want {
		t.Errorf("web --listen in use: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

// TestLimitListener: past n open connections Accept waits until one
// closes (once, however often it is closed), and the listener's Close
// ends a waiting Accept.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(inner, 2)
	accepted := make(chan net.Conn, 4)
	done := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection accepted while two are open")
	case <-time.After(100 * time.Millisecond): // it waits: looked at for a while, at least
	}
	_ = first.Close()
	_ = first.Close() // a second Close gives back nothing more
	third := <-accepted
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
		t.Fatal("a fourth connection accepted: a second Close gave back a slot")
	case <-time.After(100 * time.Millisecond):
	}
	_ = ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the waiting Accept")
	}
	_, _ = second.Close(), third.Close()
}

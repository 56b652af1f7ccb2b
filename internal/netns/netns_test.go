package netns_test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/internal/netns"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunIsolated(t *testing.T) {
	netns.Run(t, func(t *testing.T) {
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" || ifs[0].Flags&net.FlagMulticast == 0 || ifs[0].Flags&net.FlagUp == 0 {
			t.Fatalf("interfaces = %+v, want lo up with multicast only", ifs)
		}
	})
}

// TestHosts checks that two simulated hosts reach each other over their
// veths and see only lo and their own veth.
func TestHosts(t *testing.T) {
	switch netns.Role(t) {
	case "listen":
		c, err := net.ListenPacket("udp4", os.Getenv("LISTEN"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		os.Stdout.WriteString("ready\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("got " + string(buf[:n]) + " from " + from.String() + "\n")
		return
	case "send":
		c, err := net.Dial("udp4", os.Getenv("SENDTO"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range 20 { // bounded: one datagram every 100 ms for 2 s
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Log(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return
	}
	netns.Run(t, func(t *testing.T) {
		hosts := netns.NewHosts(t, 2)
		netns.CheckInterfaces(t, "lo", "br0", "v1p", "v2p")
		addr := hosts[0].IP + ":7777"
		l := hosts[0].Start(t, "listen", "LISTEN="+addr)
		if !waitLine(t, l.Lines(), "ready", 10*time.Second) {
			t.Fatal("listener not ready")
		}
		s := hosts[1].Start(t, "send", "SENDTO="+addr)
		if !waitLine(t, l.Lines(), "got hello from "+hosts[1].IP, 10*time.Second) {
			t.Fatal("datagram from h2 not received on h1")
		}
		if err := l.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

func waitLine(t *testing.T, lines <-chan string, prefix string, d time.Duration) bool {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return false
			}
			t.Log("child:", l)
			if strings.HasPrefix(l, prefix) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

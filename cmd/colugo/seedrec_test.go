package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/zeroconf/v2"

	"github.com/colugo-go/colugo/internal/netns"
	"github.com/colugo-go/colugo/record"
)

// Seed nodes for --seed tests: pyzmq stand-ins of the seed's PUB sockets
// (../../testdata/seedpeer.py) on loopback, announced as the seed
// announces them (one _colugo._tcp record per socket, TXT topic,
// socket_type, node_uuid), inside a private network namespace only: the
// CLI's --seed finds seed nodes with mDNS.

const python = "/usr/bin/python3" // Debian's, with python3-zmq

// seedStandIn runs seedpeer.py pub (a PUB on 127.0.0.1 sending "warm"
// frames every 5 ms until stdin closes) and announces it as a seed
// publisher of topic with mDNS on the namespace's seed0. It must run
// inside netns.Run.
func seedStandIn(t *testing.T, topic, uuid string) {
	t.Helper()
	if !netns.Inside() {
		t.Fatal("seedStandIn outside a network namespace") // it sends mDNS
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	cmd := exec.CommandContext(ctx, python, "../../testdata/seedpeer.py", "pub", "0")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close() // it ends
		_ = cmd.Wait()
		cancel()
	})
	sc := bufio.NewScanner(out)
	port := 0
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "port "); ok {
			port, _ = strconv.Atoi(p)
			break
		}
	}
	if port == 0 {
		t.Fatalf("seedpeer.py pub: no port line")
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	iface, err := net.InterfaceByName("seed0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zeroconf.RegisterProxy("_"+topic+"._"+uuid, "_colugo._tcp", "local.", port, "seed-"+uuid,
		[]string{"127.0.0.1"}, []string{"topic=" + topic, "socket_type=1", "node_uuid=" + uuid}, []net.Interface{*iface})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

// TestRecordSeed: colugo record --seed records seed publishers' topics (a
// pattern on the command line matching them), their frames as raw text,
// in the usual MCAP file and summary; a seed topic the pattern does not
// match is not recorded, and without --seed nothing of them is.
func TestRecordSeed(t *testing.T) {
	if err := exec.CommandContext(t.Context(), python, "-c", "import zmq").Run(); err != nil {
		t.Skipf("%s cannot import zmq (install python3-zmq): %v", python, err)
	}
	if !netns.Inside() && os.Getenv("COLUGO_TEST_BIN") == "" {
		t.Setenv("COLUGO_TEST_BIN", binPath) // the child runs this build
	}
	netns.Run(t, func(t *testing.T) {
		// The seed directory wants an interface other than lo: one end of a
		// veth pair whose both ends are in this namespace, so nothing it
		// sends leaves it (mDNS reaches this namespace's own sockets by
		// multicast loopback).
		netns.IP(t, "link", "add", "seed0", "type", "veth", "peer", "name", "seed1")
		netns.IP(t, "link", "set", "seed1", "up")
		netns.IP(t, "link", "set", "seed0", "multicast", "on", "up")
		netns.IP(t, "addr", "add", "10.77.9.1/24", "dev", "seed0")
		netns.CheckInterfaces(t, "lo", "seed0", "seed1")
		dir := t.TempDir()
		seedStandIn(t, "cli/a", "11111111-aaaa-4aaa-8aaa-000000000001")
		seedStandIn(t, "cli/b", "11111111-aaaa-4aaa-8aaa-000000000002")
		seedStandIn(t, "other", "11111111-aaaa-4aaa-8aaa-000000000003")

		file := filepath.Join(dir, "seed.mcap")
		cmd := exec.CommandContext(t.Context(), binPath, "record", "-o", file, "cli/*", "--seed", "--json", "--every", "50ms", "--timeout", "20s")
		// Inside the namespace only: lo is its one interface.
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local,mdns")
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Progress lines, every 50 ms: once both topics have messages, stop
		// it as Ctrl-C does.
		seen := map[string]bool{}
		sc := bufio.NewScanner(stderr)
		deadline := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
		defer deadline.Stop()
		for sc.Scan() && !(seen["cli/a"] && seen["cli/b"]) {
			t.Log("record: " + sc.Text())
			if m := progressLine.FindStringSubmatch(sc.Text()); m != nil {
				seen[m[1]] = true
			}
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
		err = cmd.Wait()
		t.Logf("record: %v, stdout %s", err, stdout.String())
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 130) {
			t.Fatalf("record: %v", err)
		}
		if !seen["cli/a"] || !seen["cli/b"] {
			t.Fatalf("progress showed messages of %v, want cli/a and cli/b", seen)
		}

		var sum recordSummary
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatalf("summary %q: %v", stdout.String(), err)
		}
		if len(sum.Topics) != 2 || sum.Messages == 0 || sum.Gaps != 0 {
			t.Errorf("summary %+v, want cli/a and cli/b, messages, no gap", sum)
		}
		for _, tp := range sum.Topics {
			if !strings.HasPrefix(tp.Topic, "cli/") || tp.Publishers != 1 || len(tp.Codecs) != 1 || tp.Codecs[0] != "raw" || tp.Messages == 0 {
				t.Errorf("summary topic %+v, want cli/*, one publisher, raw, messages", tp)
			}
		}
		f, err := record.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rd, err := record.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		n := map[string]int{}
		for {
			m, _, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Data) != "warm" || m.Codec != "raw" || m.Type != "" {
				t.Fatalf("recorded %+v, want the seed's warm frames, raw, no type", m)
			}
			n[m.Topic]++
		}
		if n["cli/a"] == 0 || n["cli/b"] == 0 || len(n) != 2 {
			t.Errorf("messages per topic in the file %v, want cli/a and cli/b only", n)
		}

		// Without --seed the seed's topics are not seen: nothing matches.
		r := runSeedCLI(t, dir, "record", "-o", filepath.Join(dir, "none.mcap"), "cli/*", "--timeout", "1s")
		if r.code != 1 || !strings.Contains(r.stderr, `no publisher of a topic matching "cli/*" found`) {
			t.Errorf("record without --seed: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// progressLine is a line of record's progress table with messages of a
// cli/ topic, as raw.
var progressLine = regexp.MustCompile(`^\s*(cli/\S+)\s+raw\s+[1-9][0-9]* msgs`)

// runSeedCLI is runCLI inside the namespace, with mdns allowed.
func runSeedCLI(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local,mdns")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("colugo %v: %v", args, err)
	}
	t.Logf("colugo %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

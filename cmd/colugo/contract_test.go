package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestContract is the exit-code contract of cmd/colugo/README.md, one row
// per case of issue 16: 0 success, 1 the operation failed (nothing found,
// remote error, timeout), 2 usage error at once (before any network
// activity: within a second, far below --timeout).
func TestContract(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	notMCAP := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notMCAP, []byte(strings.Repeat("not a recording\n", 10)), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "rec.mcap")
	if r := runCLI(t, dir, "record", "-o", rec, "--for", "500ms", "--every", "0", "robot/pose"); r.code != 0 {
		t.Fatalf("record for the play cases: exit %d", r.code)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string        // regexp stderr must match
		stdout string        // regexp stdout must match ("" : anything)
		within time.Duration // the run must end within this
	}{
		{"codec bogus is a usage error at once", []string{"echo", "robot/pose", "--codec", "bogus", "--timeout", "20s"}, 2,
			`unknown codec "bogus" \(--codec takes json, protobuf, raw\)`, "^$", 3 * time.Second},
		{"hz codec bogus", []string{"hz", "robot/pose", "--codec", "bogus"}, 2, `unknown codec "bogus"`, "^$", 3 * time.Second},
		{"pub codec bogus", []string{"pub", "x", "1", "--codec", "bogus"}, 2, `unknown codec "bogus"`, "^$", 3 * time.Second},
		{"echo codec nobody uses is bounded by --timeout", []string{"echo", "robot/pose", "--codec", "protobuf", "--timeout", "1s"}, 1,
			`no publisher of topic "robot/pose" with codec protobuf found within 1s`, "^$", 5 * time.Second},
		{"hz of a topic nobody publishes, --count reached first", []string{"hz", "no/such", "--count", "1", "--every", "100ms", "--timeout", "1s"}, 1,
			`no publisher of topic "no/such" found within 1s`, "^$", 5 * time.Second},
		{"bw of a topic nobody publishes", []string{"bw", "no/such", "--count", "1", "--every", "100ms", "--timeout", "1s"}, 1,
			`no publisher of topic "no/such" found within 1s`, "^$", 5 * time.Second},
		{"record of a topic nobody publishes", []string{"record", "-o", filepath.Join(dir, "x.mcap"), "no/such", "--timeout", "1s", "--every", "0"}, 1,
			`no publisher of topic "no/such" found, nothing recorded of it`, "", 5 * time.Second},
		{"play --topics matching nothing", []string{"play", rec, "--topics", "nomatch", "--wait", "0s"}, 1,
			`no topic of .*rec\.mcap matches --topics "nomatch" \(its topics: robot/pose\)`, "^$", 5 * time.Second},
		{"play of a file that is not MCAP", []string{"play", notMCAP}, 1, `notes\.txt is not an MCAP file`, "^$", 3 * time.Second},
		{"--seed without mdns in COLUGO_DISCOVERY is refused at once (no multicast)", []string{"echo", "chatter", "--seed", "--timeout", "20s"}, 1,
			`--seed \(it needs mdns in COLUGO_DISCOVERY or --discovery\).*finds seed nodes with mDNS, but COLUGO_DISCOVERY="local" has no mdns`, "^$", 3 * time.Second},
		{"--seed with --discovery none", []string{"call", "rpc.topic", `"x"`, "--seed", "--discovery", "none", "--timeout", "20s"}, 1,
			`--seed \(it needs mdns.*but COLUGO_DISCOVERY="none" has no mdns`, "^$", 3 * time.Second},
		{"echo bad name", []string{"echo", "", "--timeout", "20s"}, 2, `colugo echo: invalid topic name "": empty`, "^$", 3 * time.Second},
		{"hz bad name", []string{"hz", "", "--timeout", "20s"}, 2, `colugo hz: invalid topic name "": empty`, "^$", 3 * time.Second},
		{"pub bad name", []string{"pub", "", "1"}, 2, `colugo pub: invalid topic name "": empty`, "^$", 3 * time.Second},
		{"call bad name", []string{"call", "", "{}", "--timeout", "20s"}, 2, `colugo call: invalid service name "": empty`, "^$", 3 * time.Second},
		{"record bad name", []string{"record", "-o", filepath.Join(dir, "y.mcap"), strings.Repeat("n", 256)}, 2,
			`colugo record: invalid topic name "n+": 256 bytes, at most 255`, "^$", 3 * time.Second},
		{"echo --last bad name", []string{"echo", "\xff", "--last", "--timeout", "20s"}, 2, `invalid topic name "\\xff": not UTF-8`, "^$", 3 * time.Second},
		{"help echo", []string{"help", "echo"}, 0, "^$", `(?s)usage: colugo echo TOPIC.*example:\n  colugo echo robot/pose --count 2.*-count`, 3 * time.Second},
		{"echo --help", []string{"echo", "--help"}, 0, "^$", `(?s)usage: colugo echo TOPIC.*example:.*-since`, 3 * time.Second},
		{"help of an unknown command", []string{"help", "frob"}, 2, `unknown command "frob"`, "^$", 3 * time.Second},
		{"version", []string{"--version"}, 0, "^$", `^colugo github\.com/colugo-go/colugo \S+.* go1\.\d+`, 3 * time.Second},
		{"topics columns", []string{"topics", "--hz=false", "--wait", "300ms"}, 0, "^$",
			`(?m)^TOPIC +CODEC +TYPE +HISTORY +PUBLISHERS +SUBSCRIBERS\n(.*\n)*robot/pose +json +main\.pose +- +camera +viewer$`, 5 * time.Second},
		{"services columns", []string{"services", "--wait", "300ms"}, 0, "^$",
			`(?m)^SERVICE +CODEC +REQUEST-TYPE +REPLY-TYPE +SERVERS\nmath/add +json +main\.addReq +main\.addResp +calc$`, 5 * time.Second},
		{"call with a field the request type lacks", []string{"call", "math/add", `{"A":2,"C":3}`}, 2,
			`VALUE does not match main\.addReq \(the server's JSON Schema\): unknown field "C"`, "^$", 5 * time.Second},
		{"call with known fields, any case", []string{"call", "math/add", `{"a":2,"B":3}`}, 0, "^$", `^\{"Sum":5\}\n$`, 5 * time.Second},
		{"web bad --listen", []string{"web", "--listen", "no-port"}, 2,
			`colugo web: --listen "no-port": address no-port: missing port in address\nusage: colugo web \(`, "^$", 3 * time.Second},
		{"web --listen port out of range", []string{"web", "--listen", "127.0.0.1:70000"}, 2,
			`colugo web: --listen "127\.0\.0\.1:70000": the port must be a number from 0 to 65535`, "^$", 3 * time.Second},
		{"web bad flag", []string{"web", "--bogus"}, 2, `flag provided but not defined: -bogus\nusage: colugo web \(colugo web --help`, "^$", 3 * time.Second},
		{"web with an argument", []string{"web", "extra"}, 2, `web takes no arguments`, "^$", 3 * time.Second},
		// 192.0.2.1 (TEST-NET-1) is no interface's: the warning, then the
		// bind fails at once, before any node starts; nothing is sent.
		{"web --listen not loopback warns", []string{"web", "--listen", "192.0.2.1:0"}, 1,
			`^colugo web: warning: listening on 192\.0\.2\.1:0, beyond this host: anyone who reaches it sees the network \(and no --token is set\)\n` +
				`colugo web: listen tcp 192\.0\.2\.1:0: bind: cannot assign requested address\n$`, "^$", 3 * time.Second},
		{"web --help", []string{"web", "--help"}, 0, "^$",
			`(?s)^usage: colugo web \[FLAGS\]\n.*example:\n  colugo web --listen 127\.0\.0\.1:8765\n.*-allow-publish.*-listen string`, 3 * time.Second},
		{"help bridge", []string{"help", "bridge"}, 0, "^$",
			`(?s)^usage: colugo bridge --config FILE \[FLAGS\]\n.*example:\n  colugo bridge --config lab\.yaml --stats 10s\n.*-config string.*-stats duration`, 3 * time.Second},
		{"help completion", []string{"help", "completion"}, 0, "^$",
			`(?s)^usage: colugo completion bash\|zsh\n.*example:\n  source <\(colugo completion bash\)`, 3 * time.Second},
		{"completion --help", []string{"completion", "--help"}, 0, "^$", `^usage: colugo completion bash\|zsh\n`, 3 * time.Second},
		{"completion of an unknown shell", []string{"completion", "fish"}, 2, `^colugo completion: unknown shell "fish" \(bash or zsh\)\nusage: colugo completion bash\|zsh \(`, "^$", 3 * time.Second},
		{"no progress line without a terminal", []string{"echo", "no/such", "--timeout", "1500ms"}, 1,
			`^colugo echo: no publisher of topic "no/such" found within 1.5s \(published topics: robot/log, robot/pose\)\n$`, "^$", 5 * time.Second},
	}
	// Columns line up: each header starts where its cells start (on main
	// "CODEC TYPE" was one column, so the types started one early).
	aligned := map[string][2]string{"topics columns": {"TYPE", "main.pose"}, "services columns": {"REQUEST-TYPE", "main.addReq"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(c.name, "not loopback") && !testNetUnassigned(t) {
				t.Skip("192.0.2.1 can be bound here (an interface has it, or net.ipv4.ip_nonlocal_bind is 1)")
			}
			r := runCLI(t, dir, c.args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d", r.code, c.code)
			}
			if !regexp.MustCompile(c.stderr).MatchString(r.stderr) {
				t.Errorf("stderr %q does not match %q", r.stderr, c.stderr)
			}
			if c.stdout != "" && !regexp.MustCompile(c.stdout).MatchString(r.stdout) {
				t.Errorf("stdout %q does not match %q", r.stdout, c.stdout)
			}
			if a, ok := aligned[c.name]; ok {
				lines := strings.Split(r.stdout, "\n")
				for _, l := range lines[1:] {
					if i := strings.Index(l, a[1]); i >= 0 && i != strings.Index(lines[0], " "+a[0])+1 {
						t.Errorf("%q starts at column %d, its header %q at %d", a[1], i, a[0], strings.Index(lines[0], " "+a[0])+1)
					}
				}
			}
			if r.took > c.within {
				t.Errorf("took %v, want at most %v", r.took, c.within)
			}
		})
	}
}

// TestEmptyGraph: with no node at all, the listings say so on stderr, not
// only a header.
func TestEmptyGraph(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, cmd := range []string{"nodes", "topics", "services"} {
		r := runCLI(t, dir, cmd, "--wait", "100ms")
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "colugo "+cmd+": no "+cmd+" found (discovery local (COLUGO_DISCOVERY), --wait 100ms)") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", cmd, r.code, r.stdout, r.stderr)
		}
	}
	// What chose the discovery: the flag, else the variable.
	if r := runCLI(t, dir, "nodes", "--wait", "100ms", "--discovery", "none"); !strings.Contains(r.stderr, "(discovery none (--discovery), --wait 100ms)") {
		t.Errorf("nodes --discovery none: stderr %q", r.stderr)
	}
	if r := runCLI(t, dir, "services", "--wait", "100ms"); !strings.Contains(r.stderr, "(discovery local (COLUGO_DISCOVERY), --wait 100ms)") {
		t.Errorf("services: stderr %q", r.stderr)
	}
	r := runCLI(t, dir, "doctor", "--listen", "0s", "--wait", "100ms")
	if !strings.Contains(r.stdout, "0 nodes announced") && !strings.Contains(r.stdout, "does not exist yet") {
		t.Errorf("doctor: %q", r.stdout)
	}
}

// TestJSONSchema: record and play --json print one snake_case summary
// line, durations in seconds.
func TestJSONSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	file := filepath.Join(dir, "j.mcap")
	r := runCLI(t, dir, "record", "-o", file, "--for", "500ms", "--every", "0", "--json", "robot/pose")
	var rs map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || r.code != 0 {
		t.Fatalf("record --json: exit %d, %v", r.code, err)
	}
	topics, _ := rs["topics"].([]any)
	if d, ok := rs["duration_s"].(float64); !ok || d < 0.4 || d > 5 || rs["file"] != file || len(topics) != 1 ||
		topics[0].(map[string]any)["topic"] != "robot/pose" || rs["messages"].(float64) < 10 {
		t.Fatalf("record --json: %v", rs)
	}
	r = runCLI(t, dir, "play", file, "--rate", "0", "--wait", "0s", "--json")
	var ps map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ps); err != nil || r.code != 0 {
		t.Fatalf("play --json: exit %d, %v", r.code, err)
	}
	for _, k := range []string{"file", "pass", "messages", "total", "bytes", "position_s", "duration_s", "last_topic"} {
		if _, ok := ps[k]; !ok {
			t.Errorf("play --json has no %q: %v", k, ps)
		}
	}
	if d := ps["duration_s"].(float64); d <= 0 || d > 5 {
		t.Errorf("duration_s %v, want seconds", d)
	}
}

// TestPlayLoopInterrupted: play --loop stopped with SIGINT prints its
// summary (and exits 0).
func TestPlayLoopInterrupted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graph(t, dir)
	file := filepath.Join(dir, "loop.mcap")
	if r := runCLI(t, dir, "record", "-o", file, "--for", "300ms", "--every", "0", "robot/pose"); r.code != 0 {
		t.Fatalf("record: exit %d", r.code)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "play", file, "--loop", "--rate", "1", "--wait", "0s", "--every", "50ms", "--json")
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local")
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the second pass has begun: the loop is running.
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "pass 2: ") {
			break
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, stderr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("play --loop interrupted: %v (stdout %q)", err, out.String())
	}
	var ps playSummary
	if err := json.Unmarshal(out.Bytes(), &ps); err != nil || ps.Pass < 2 || ps.Total == 0 || ps.File != file {
		t.Fatalf("summary %q: %+v %v", out.String(), ps, err)
	}
}

// testNetUnassigned reports whether binding 192.0.2.1 fails here, as it
// does on a host none of whose interfaces has it (RFC 5737) and that
// does not allow binding foreign addresses.
func testNetUnassigned(t *testing.T) bool {
	t.Helper()
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_nonlocal_bind"); err != nil || strings.TrimSpace(string(b)) != "0" {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok && p.IP.Equal(net.IPv4(192, 0, 2, 1)) {
			return false
		}
	}
	return true
}

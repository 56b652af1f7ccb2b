package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the session in cmd/colugo/README.md with this run's output")

// sessionStart and sessionEnd bound README.md's session: the commands it
// shows, each followed by its output (and "# exit N" when not 0).
const sessionStart = "this is real output:\n\n```\n"

// readmeCommand is one "$ colugo ..." of the session.
type readmeCommand struct {
	line     string   // as written, after "$ "
	args     []string // the arguments, shell-quoted ones unquoted
	want     []string // its output lines
	code     int
	from, to int // its output's lines in the README (to exclusive)
}

// TestREADMESession runs the session of cmd/colugo/README.md against the
// example programs it names and checks each command's output against what
// the README shows, after masking what differs between runs (ids, ports,
// times, numbers, column widths). go test -run TestREADMESession
// -update-readme ./cmd/colugo writes this run's output into the README
// instead, so the README cannot drift from the tool.
func TestREADMESession(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six example programs")
	}
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines, cmds := parseSession(t, string(raw))

	dir := t.TempDir()
	bins := t.TempDir()
	build := exec.Command("go", "build", "-o", bins+"/", "../../examples/publisher", "../../examples/subscriber",
		"../../examples/server", "../../examples/protobuf")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the examples: %v\n%s", err, out)
	}
	for _, p := range [][]string{{"publisher"}, {"subscriber"}, {"server"}, {"protobuf", "pub"}, {"protobuf", "sub"}, {"protobuf", "serve"}} {
		startExample(t, dir, filepath.Join(bins, p[0]), p[1:]...)
	}
	testwait.Until(t, "the six example nodes", func() bool {
		r := runCLI(t, dir, "nodes", "--wait", "200ms", "--json")
		return r.code == 0 && strings.Count(r.stdout, `"name"`) >= 6
	})

	for i := len(cmds) - 1; i >= 0; i-- { // from the end: rewriting keeps the earlier indices
		c := cmds[i]
		r := runCLI(t, dir, c.args...)
		got := strings.Split(strings.TrimRight(r.stdout+r.stderr, "\n"), "\n")
		if r.code != 0 {
			got = append(got, "# exit "+strconv.Itoa(r.code))
		}
		if *updateREADME {
			lines = slices.Replace(lines, c.from, c.to, got...)
			continue
		}
		if r.code != c.code {
			t.Errorf("$ %s: exit %d, the README says %d", c.line, r.code, c.code)
		}
		if g, w := mask(got), mask(c.want); !slices.Equal(g, w) {
			t.Errorf("$ %s: output differs from the README's (masked):\ngot:\n%s\nREADME:\n%s\n(go test -run TestREADMESession -update-readme ./cmd/colugo rewrites it)",
				c.line, strings.Join(g, "\n"), strings.Join(w, "\n"))
		}
	}
	if *updateREADME {
		if err := os.WriteFile("README.md", []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// parseSession returns the README's lines and the session's commands.
func parseSession(t *testing.T, readme string) ([]string, []readmeCommand) {
	t.Helper()
	i := strings.Index(readme, sessionStart)
	if i < 0 {
		t.Fatalf("README.md has no %q", sessionStart)
	}
	lines := strings.Split(readme, "\n")
	first := strings.Count(readme[:i+len(sessionStart)], "\n")
	var cmds []readmeCommand
	for n := first; n < len(lines) && lines[n] != "```"; n++ {
		l := lines[n]
		if !strings.HasPrefix(l, "$ colugo ") {
			continue
		}
		line := strings.TrimPrefix(l, "$ ")
		if j := strings.Index(line, "  #"); j >= 0 {
			line = strings.TrimSpace(line[:j]) // a comment for the reader
		}
		c := readmeCommand{line: line, args: shellWords(t, strings.TrimPrefix(line, "colugo ")), from: n + 1}
		for c.to = c.from; c.to < len(lines) && lines[c.to] != "" && lines[c.to] != "```"; c.to++ {
			if code, ok := strings.CutPrefix(lines[c.to], "# exit "); ok {
				c.code, _ = strconv.Atoi(code)
			}
			c.want = append(c.want, lines[c.to])
		}
		cmds = append(cmds, c)
	}
	if len(cmds) < 10 {
		t.Fatalf("found %d commands in the README's session", len(cmds))
	}
	return lines, cmds
}

// shellWords splits s as a shell would, for the session's simple quoting.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(ch)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(^|[^.0-9a-f])[0-9a-f]{16}\b`), "${1}ID"}, // not the digits of a float
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "ADDR"},
	{regexp.MustCompile(`/tmp/\S+/colugo\b`), "DIR"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+Z`), "TIME"},
	{regexp.MustCompile(`-?\d+(\.\d+)?(e[-+]?\d+)?(ns|µs|us|ms|s|m|h)\b`), "D"},
	{regexp.MustCompile(`-?\d+(\.\d+)?(e[-+]?\d+)?`), "N"},
	// protobuf-go puts a no-break space in some error messages, or not,
	// depending on a hash of the binary (internal/detrand), so that nobody
	// relies on their text: any change to the CLI may flip it.
	{regexp.MustCompile(`[\s\x{00a0}]+`), " "},
}

// mask hides what differs between runs and sorts the lines (the order of
// some, such as doctor's per-topic checks, depends on timing).
func mask(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		for _, m := range masks {
			l = m.re.ReplaceAllString(l, m.with)
		}
		out = append(out, strings.TrimSpace(l))
	}
	slices.Sort(out)
	return out
}

// startExample runs an example program in dir's registry until the test
// ends; it is then interrupted (killed after 5 s).
func startExample(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		select {
		case <-done:
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// colugo bridge runs colugo-bridge from beside itself (else PATH) with its
// arguments and exit code, and says how to install it when it is missing.
func TestBridgeCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "colugo")
	b, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		if args == nil {
			args = []string{"--config", "site a.yaml"}
		}
		cmd := exec.Command(bin, append([]string{"bridge"}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+t.TempDir(), "COLUGO_DISCOVERY=local")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	if out, code := run(); code != 1 || !strings.Contains(out, "go install github.com/colugo-go/colugo/bridge/cmd/colugo-bridge@latest") {
		t.Errorf("without colugo-bridge: exit %d, output %q", code, out)
	}
	if out, code := run("--help"); code != 0 || !strings.Contains(out, "usage: colugo bridge --config FILE [FLAGS]") ||
		!strings.Contains(out, "-stats duration") || !strings.Contains(out, "colugo-bridge@latest") {
		t.Errorf("--help without colugo-bridge: exit %d, output %q; want 0, the help and how to install", code, out)
	}
	fake := "#!/bin/sh\nprintf '%s|' \"$@\"\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "colugo-bridge"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, code := run(); code != 3 || out != "--config|site a.yaml|" {
		t.Errorf("with colugo-bridge: exit %d, output %q; want 3, the arguments as given", code, out)
	}
}

// TestBridgeFlagsMirror: the flags colugo help bridge and completion show
// are colugo-bridge's (a module of its own, so read from its source).
func TestBridgeFlagsMirror(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../bridge/cmd/colugo-bridge/main.go")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`fs\.(\w+)\("(\w+)", [^,]+, "([^"]*)"\)`).FindAllStringSubmatch(string(src), -1) {
		want = append(want, m[2]+" "+m[1]+": "+m[3])
	}
	var got []string
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	bridgeFlags(fs, nil)
	fs.VisitAll(func(f *flag.Flag) {
		kind := "?"
		switch f.Value.(flag.Getter).Get().(type) {
		case string:
			kind = "String"
		case time.Duration:
			kind = "Duration"
		case bool:
			kind = "Bool"
		case int:
			kind = "Int"
		}
		got = append(got, f.Name+" "+kind+": "+f.Usage)
	})
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("bridgeFlags:\n%s\ncolugo-bridge's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

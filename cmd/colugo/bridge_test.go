package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	run := func() (string, int) {
		cmd := exec.Command(bin, "bridge", "--config", "site a.yaml")
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
	fake := "#!/bin/sh\nprintf '%s|' \"$@\"\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "colugo-bridge"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, code := run(); code != 3 || out != "--config|site a.yaml|" {
		t.Errorf("with colugo-bridge: exit %d, output %q; want 3, the arguments as given", code, out)
	}
}

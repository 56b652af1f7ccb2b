package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// bridgeProgram is the program `colugo bridge` runs. The bridge links NATS
// (and needs go 1.26), which stay out of this binary: it is a module of
// its own, github.com/colugo-go/colugo/bridge.
const bridgeProgram = "colugo-bridge"

// bridgeFlags are colugo-bridge's flags, for colugo help bridge and
// completion only: colugo bridge passes its arguments on unparsed.
// TestBridgeFlagsMirror keeps them in step with colugo-bridge's source.
func bridgeFlags(fs *flag.FlagSet, _ *cli) {
	fs.String("config", "", "the bridge's configuration file (YAML; see the bridge package)")
	fs.String("name", "bridge", "the bridge's node name on the site")
	fs.Duration("stats", 30*time.Second, "print the link state and counts this often (0: only at the end)")
}

// runBridge runs colugo-bridge with args, from beside this binary or from
// PATH, with this process's streams, and returns its exit code. The
// child gets the interrupt from the terminal itself; ctx ending (a signal
// sent to this process alone) is passed on as an interrupt.
func runBridge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	path := ""
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), bridgeProgram); isExecutable(p) {
			path = p
		}
	}
	if path == "" {
		p, err := exec.LookPath(bridgeProgram)
		if err != nil {
			help := len(args) == 1 && slices.Contains([]string{"-h", "-help", "--help"}, args[0])
			if help { // the help asked for, from the mirror of the flags
				cmd := findCommand("bridge")
				commandHelp(stdout, cmd, newFlagSet(cmd, &cli{}, stderr))
			}
			fmt.Fprintf(stderr, "colugo bridge: %s is not installed (beside colugo or in PATH); install it with\n"+
				"  go install github.com/colugo-go/colugo/bridge/cmd/%s@latest\n", bridgeProgram, bridgeProgram)
			if help {
				return exitOK
			}
			return exitFail
		}
		path = p
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "colugo bridge: %v\n", err)
		return exitFail
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(os.Interrupt)
		err = <-done
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	default:
		fmt.Fprintf(stderr, "colugo bridge: %v\n", err)
		return exitFail
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

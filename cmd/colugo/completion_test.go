package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/internal/testwait"
)

// completionScript writes `colugo completion SHELL` to a file in dir.
func completionScript(t *testing.T, dir, shell string) string {
	t.Helper()
	r := runCLI(t, dir, "completion", shell)
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "_colugo") {
		t.Fatalf("colugo completion %s: exit %d, stderr %q", shell, r.code, r.stderr)
	}
	file := filepath.Join(dir, "colugo."+shell)
	if err := os.WriteFile(file, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestCompletionScripts: both scripts parse in their shell (zsh only when
// installed), and completion takes exactly one known shell.
func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, shell := range []string{"bash", "zsh"} {
		t.Run(shell, func(t *testing.T) {
			path, err := exec.LookPath(shell)
			if err != nil {
				t.Skipf("%s is not installed", shell)
			}
			file := completionScript(t, dir, shell)
			if out, err := exec.Command(path, "-n", file).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
	for _, args := range [][]string{{"completion"}, {"completion", "fish"}, {"completion", "bash", "zsh"}, {"completion", "--json", "bash"}} {
		if r := runCLI(t, dir, args...); r.code != exitUsage || r.stdout != "" {
			t.Errorf("colugo %s: exit %d, stdout %q; want 2, nothing", strings.Join(args, " "), r.code, r.stdout)
		}
	}
}

// bashComplete completes the command line words (the last one the word
// being completed, "" for a new one) as bash does on TAB: through the
// function the script registered with complete -F, COMP_WORDS and
// COMP_CWORD set.
func bashComplete(t *testing.T, dir, script string, words ...string) []string {
	t.Helper()
	const driver = `source "$1"; shift
fn=$(complete -p colugo | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[[ -n $fn ]] || { echo "no complete -F for colugo" >&2; exit 3; }
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
((${#COMPREPLY[@]} == 0)) || printf '%s\n' "${COMPREPLY[@]}"
`
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"--norc", "--noprofile", "-c", driver, "bash", script, binPath}, words...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("completing %q: %v", words, err)
	}
	if len(out) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// zshDriver types a line and TAB in an interactive zsh (on a zpty) with
// the script loaded, and prints OK once the screen shows the pattern: zle
// draws the completed line. The caller's timeout bounds the waits.
const zshDriver = `zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PS1='%% '; autoload -Uz compinit; compinit -u -D; source ${(q)1}; print RE''ADY"
zpty -r z out '*READY*' || exit 4
zpty -w -n z "$2"$'\t'
zpty -r z out "*${~3}*" || exit 5
print -r -- OK
zpty -d z
`

// zshComplete reports whether completing line in zsh shows want (a zsh
// pattern), within 10 s; it skips the test when zsh has no zpty.
func zshComplete(t *testing.T, dir, script, line, want string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "zsh", "-f", "-c", zshDriver, "zsh", script, line, want)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "COLUGO_DISCOVERY=local", "PATH="+filepath.Dir(binPath)+":"+os.Getenv("PATH"))
	out, err := cmd.Output()
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
		t.Skip("zsh has no zsh/zpty module")
	}
	return err == nil && string(out) == "OK\n"
}

// TestCompletion drives the bash script as bash does on TAB:
// subcommands, flags per subcommand, flag values, and topic and service
// names from running example programs; then the zsh script, in zsh on a
// pseudo-terminal, for a few of the same (when zsh is installed).
//
// Not parallel, as TestREADMESession: the builds, example programs and
// shells it runs would load the machine while the rate tests measure.
func TestCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	script := completionScript(t, dir, "bash")
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"ec"}, []string{"echo"}},
		{[]string{"c"}, []string{"call", "completion"}},
		{[]string{"--v"}, []string{"--version"}},
		{[]string{"echo", "--co"}, []string{"--codec", "--count"}},
		{[]string{"record", "-"}, []string{"--compression", "--discovery", "--every", "--for", "--json", "-o", "--seed", "--timeout", "-v", "--wait", "--help"}},
		{[]string{"echo", "--codec", ""}, []string{"json", "protobuf", "raw"}},
		{[]string{"echo", "--codec", "=", "p"}, []string{"protobuf"}},
		{[]string{"record", "--compression", ""}, []string{"zstd", "lz4", "none"}},
		{[]string{"completion", ""}, []string{"bash", "zsh"}},
		{[]string{"help", "p"}, []string{"pub", "play"}},
		{[]string{"bridge", "--"}, []string{"--config", "--name", "--stats", "--help"}},
		{[]string{"echo", "--count", ""}, nil}, // a number
	} {
		if got := bashComplete(t, dir, script, c.words...); !slices.Equal(got, c.want) {
			t.Errorf("colugo %s<TAB>: %q, want %q", strings.Join(c.words, " "), got, c.want)
		}
	}

	// Against the example programs: names come from the network.
	bins := t.TempDir()
	build := exec.Command("go", "build", "-o", bins+"/", "../../examples/publisher", "../../examples/server")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the examples: %v\n%s", err, out)
	}
	startExample(t, dir, filepath.Join(bins, "publisher"))
	startExample(t, dir, filepath.Join(bins, "server"))
	var got []string
	testwait.Until(t, "completion of colugo echo <TAB> to the publisher's topic", func() bool {
		got = bashComplete(t, dir, script, "echo", "")
		return slices.Equal(got, []string{"robot/pose"})
	})
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"echo", "robot/"}, []string{"robot/pose"}},
		{[]string{"echo", "--count", "2", "--json", ""}, []string{"robot/pose"}}, // after flags and their values
		{[]string{"echo", "--codec", "=", "json", ""}, []string{"robot/pose"}},
		{[]string{"echo", "--discovery", "local", ""}, []string{"robot/pose"}},
		{[]string{"echo", "x"}, nil},
		{[]string{"echo", "robot/pose", ""}, nil}, // echo takes one topic
		{[]string{"hz", ""}, []string{"robot/pose"}},
		{[]string{"record", "-o", "x.mcap", "robot/pose", ""}, []string{"robot/pose"}}, // record takes many
		{[]string{"pub", "robot/pose", ""}, nil},                                       // VALUE
		{[]string{"call", ""}, []string{"math/add"}},
		{[]string{"call", "math/add", ""}, nil},
	} {
		if got := bashComplete(t, dir, script, c.words...); !slices.Equal(got, c.want) {
			t.Errorf("colugo %s<TAB>: %q, want %q", strings.Join(c.words, " "), got, c.want)
		}
	}

	if _, err := exec.LookPath("zsh"); err != nil {
		t.Log("zsh is not installed: its script's completions are not tried")
		return
	}
	zscript := completionScript(t, dir, "zsh")
	for _, c := range []struct{ line, want string }{
		{"colugo ec", "colugo echo"},
		{"colugo echo --cod", "colugo echo --codec"}, // zle draws "=" apart
		{"colugo echo --codec ", "json*protobuf*raw"},
		{"colugo completion ", "bash*zsh"},
		{"colugo echo ", "colugo echo robot/pose"},
		{"colugo echo --count 2 ", "colugo echo --count 2 robot/pose"},
		{"colugo call ", "colugo call math/add"},
	} {
		if !zshComplete(t, dir, zscript, c.line, c.want) {
			t.Errorf("zsh: %s<TAB> did not show %q", c.line, c.want)
		}
	}
}

// TestCompleteNames: __complete prints every topic (published or
// subscribed) or service name once, sorted, and exits 0 with none; names
// from the network are data to the script, never code, and one with a
// control character is left out (a newline would make it two).
func TestCompleteNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if r := runCLI(t, dir, "__complete", "topics"); r.code != 0 || r.stdout != "" {
		t.Errorf("__complete topics with no node: exit %d, stdout %q; want 0, nothing", r.code, r.stdout)
	}
	if r := runCLI(t, dir, "__complete", "nodes"); r.code != exitUsage {
		t.Errorf("__complete nodes: exit %d, want 2", r.code)
	}
	graph(t, dir)
	pwned := filepath.Join(dir, "pwned")
	evil := []string{"a\nb", "$(touch " + pwned + ")", "sp ace"}
	n := node(t, dir, "evil")
	for _, name := range evil {
		if _, err := colugo.NewPublisher[int](n, name); err != nil {
			t.Fatal(err)
		}
	}
	want := "$(touch " + pwned + ")\nrobot/log\nrobot/pose\nsp ace\n"
	var r result
	testwait.Until(t, "__complete topics to list the topics", func() bool {
		r = runCLI(t, dir, "__complete", "topics")
		return r.code == 0 && r.stdout == want
	})
	if r = runCLI(t, dir, "__complete", "services", "--wait", "1s"); r.code != 0 || r.stdout != "math/add\n" {
		t.Errorf("__complete services: exit %d, stdout %q", r.code, r.stdout)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		return
	}
	script := completionScript(t, dir, "bash")
	got := bashComplete(t, dir, script, "echo", "$")
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("completing a topic name ran the command in it")
	}
	if q := `\$\(touch\ ` + pwned + `\)`; !slices.Equal(got, []string{q}) {
		t.Errorf("colugo echo $<TAB>: %q, want %q (quoted)", got, q)
	}
}

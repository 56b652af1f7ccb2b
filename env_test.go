package colugo

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
)

func TestDiscoveryFromEnv(t *testing.T) {
	prog := discovery.Static("10.0.0.9:1")
	for _, tc := range []struct {
		env     string
		want    string // type of the result, or "prog"
		wantErr bool
	}{
		{"", "prog", false},
		{"  ", "prog", false},
		{"local", "*local.Registry", false},
		{"none", "*discovery.static", false},
		{"static:127.0.0.1:7001", "*discovery.static", false},
		{"static:127.0.0.1:7001,127.0.0.1:7002", "*discovery.static", false},
		{"local,static:127.0.0.1:7001", "*discovery.multi", false},
		{"static:127.0.0.1:7001,local", "*discovery.multi", false},
		{"mdns", "*mdns.Discovery", false}, // constructed only: nothing is started here
		{"local,mdns", "*discovery.multi", false},
		{"carrier-pigeon", "", true},
		{"127.0.0.1:7001", "", true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(EnvDiscovery, tc.env)
			d, err := discoveryFromEnv(prog)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), EnvDiscovery) {
					t.Fatalf("err = %v, want ErrInvalidOption naming %s", err, EnvDiscovery)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := typeString(d)
			if tc.want == "prog" {
				if d != prog {
					t.Fatalf("got %s, want the program's own discovery", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	// A program that already uses a host-local registry keeps its directory.
	t.Setenv(EnvDiscovery, "local")
	own := local.New(local.WithDir(t.TempDir()))
	if d, _ := discoveryFromEnv(own); d != own {
		t.Fatal("COLUGO_DISCOVERY=local replaced the program's own local registry")
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:7001":   "127.0.0.1:7001",
		"[::]:7001":      "127.0.0.1:7001",
		"10.0.0.5:7001":  "10.0.0.5:7001",
		"inproc:3/pub":   "inproc:3/pub",
		"127.0.0.1:7001": "127.0.0.1:7001",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}

func typeString(v any) string { return fmt.Sprintf("%T", v) }

// TestDependencies keeps CLI- and codec-specific modules out of programs
// that only import the root package.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, forbidden := range []string{"google.golang.org/protobuf", "github.com/colugo-go/colugo/codec/protobuf", "github.com/colugo-go/colugo/colugotest", "testing"} {
		for _, dep := range strings.Fields(string(out)) {
			if dep == forbidden || strings.HasPrefix(dep, forbidden+"/") {
				t.Errorf("the root package depends on %s", dep)
			}
		}
	}
}

package bridge_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies is the bridge's row of the module root's deps_test.go
// (this is a module of its own, which go list there cannot reach): the
// bridge links NATS's client, not its server (test-only), tracing SDKs,
// the test framework or colugo's test fakes.
func TestDependencies(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, ban := range []string{
		"testing",
		"go.opentelemetry.io",
		"github.com/nats-io/nats-server",
		"github.com/colugo-go/colugo/colugotest",
		"github.com/colugo-go/colugo/record",
		"google.golang.org/protobuf",
		"github.com/coder/websocket",
	} {
		for _, dep := range strings.Fields(string(out)) {
			if dep == ban || strings.HasPrefix(dep, ban+"/") {
				t.Errorf("bridge depends on %s", dep)
				break
			}
		}
	}
}

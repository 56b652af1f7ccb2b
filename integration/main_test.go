package integration

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/internal/testkit"
)

// roleEnv names the role a child process of this test binary plays; see
// roles and spawn.
const roleEnv = "COLUGO_TEST_ROLE"

// roles are the bodies of the child processes that the tests here start
// (spawn): each runs in a re-execution of this test binary, as the one test
// TestRole, until its stdin closes or its own time limit passes.
var roles = map[string]func(t *testing.T){
	"node":         nodeRole,
	"chaos":        chaosRole,
	"burst-sub":    burstSubscriberRole,
	"hostile-load": hostileLoadRole,
}

// TestMain is the one entry point of this package's processes: a child
// (roleEnv set) runs only TestRole, which dispatches to its role; the
// parent runs the tests, under goleak.
func TestMain(m *testing.M) {
	// Safety net: a node that a test creates without naming its discovery
	// must not announce itself on this machine's real network.
	if os.Getenv(colugo.EnvDiscovery) == "" {
		os.Setenv(colugo.EnvDiscovery, "local")
	}
	if os.Getenv(roleEnv) != "" {
		os.Exit(m.Run()) // spawn ran it with -test.run=^TestRole$
	}
	goleak.VerifyTestMain(m)
}

// TestRole is not a test: in a child process started by spawn it runs the
// role named by roleEnv; elsewhere it is skipped.
func TestRole(t *testing.T) {
	role := os.Getenv(roleEnv)
	if role == "" {
		t.Skip("child processes only")
	}
	fn, ok := roles[role]
	if !ok {
		t.Fatalf("unknown role %q", role)
	}
	fn(t)
}

const wait = testkit.Wait

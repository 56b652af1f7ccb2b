package main

import (
	"context"
	"strings"
	"testing"

	"github.com/colugo-go/colugo"
)

// TestAnswersWhenDiscovered: with the host-local registry, nodes, services,
// topics --hz=false and doctor answer once discovery has looked at the
// network (Node.WaitDiscovered), not at the end of --wait: with a minute
// of it, runCLI's 30 s bound would kill them.
func TestAnswersWhenDiscovered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := node(t, dir, "robot")
	if _, err := colugo.Serve(n, "math/add", func(_ context.Context, r addReq) (addResp, error) { return addResp{r.A + r.B}, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.NewPublisher[pose](n, "robot/pose"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nodes", "--wait", "1m"}, "robot"},
		{[]string{"services", "--wait", "1m"}, "math/add"},
		{[]string{"topics", "--hz=false", "--wait", "1m"}, "robot/pose"},
		{[]string{"doctor", "--wait", "1m", "--listen", "0s"}, "robot"},
	} {
		r := runCLI(t, dir, tc.args...)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("colugo %v: exit %d, stdout without %q", tc.args, r.code, tc.want)
		}
	}
}

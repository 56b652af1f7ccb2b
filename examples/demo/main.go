// Command demo shows two colugo nodes in two processes finding each other
// and talking: alice (this process) publishes greetings and serves
// math/add; bob (a child process, this same program) subscribes to the
// greetings and calls math/add. Both print what they exchange; the demo
// exits with status 0 when bob is done, or 1 after 30 s.
//
//	go run ./examples/demo
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/examples"
)

const (
	roleEnv = "COLUGO_DEMO_ROLE"
	limit   = 30 * time.Second
)

// lan adds mDNS discovery on the LAN to the host-local registry.
var lan = flag.Bool("lan", false, "also find peers on the LAN with mDNS")

func main() {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var err error
	if os.Getenv(roleEnv) == "bob" {
		err = bob(ctx)
	} else {
		err = alice(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func alice(ctx context.Context) error {
	node, err := colugo.NewNode("alice", examples.Discovery(*lan), examples.Errors())
	if err != nil {
		return err
	}
	defer node.Close()
	say := func(format string, args ...any) { fmt.Printf("[alice] "+format+"\n", args...) }
	if _, err := colugo.Serve(node, "math/add", func(_ context.Context, r examples.AddRequest) (examples.AddReply, error) {
		say("serving math/add: %d + %d", r.A, r.B)
		return examples.AddReply{Sum: r.A + r.B}, nil
	}); err != nil {
		return err
	}
	pub, err := colugo.NewPublisher[string](node, "chat/greetings")
	if err != nil {
		return err
	}
	say("node %s up, starting bob", node.ID())

	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), roleEnv+"=bob")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("bob: %w", err)
			}
			say("bob finished; %d greetings published", n-1)
			return nil
		case <-ctx.Done():
			_ = cmd.Process.Kill() // our own child, by its PID
			<-done
			return fmt.Errorf("bob did not finish within %v", limit)
		case <-tick.C:
			_ = pub.Publish(ctx, fmt.Sprintf("hello #%d from alice", n))
		}
	}
}

func bob(ctx context.Context) error {
	node, err := colugo.NewNode("bob", examples.Discovery(*lan), examples.Errors())
	if err != nil {
		return err
	}
	defer node.Close()
	say := func(format string, args ...any) { fmt.Printf("    [bob] "+format+"\n", args...) }
	greetings, err := colugo.Subscribe[string](ctx, node, "chat/greetings")
	if err != nil {
		return err
	}
	for range 3 {
		select {
		case g := <-greetings:
			say("received %q", g)
		case <-ctx.Done():
			return fmt.Errorf("no greetings: %w", ctx.Err())
		}
	}
	for i := 1; i <= 3; i++ {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := colugo.Request[examples.AddRequest, examples.AddReply](rctx, node, "math/add", examples.AddRequest{A: i, B: i * 10})
		cancel()
		if err != nil {
			return err
		}
		say("math/add(%d, %d) = %d", i, i*10, r.Sum)
	}
	for _, p := range node.Peers() {
		say("peer %s (%s): topics %v, services %v", p.Name, p.ID, names(p.Topics), names(p.Services))
	}
	return nil
}

func names(ts []colugo.TopicInfo) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

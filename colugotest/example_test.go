package colugotest_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
)

type Pose struct{ X, Y float64 }

type Goal struct{ X, Y float64 }
type Accepted struct{ OK bool }

// robotTest is what a test of your own node looks like; in a _test.go
// file it is
//
//	func TestRobot(t *testing.T) { ... }
//
// with this body. It takes a testing.TB here only so that the Example
// below can run it.
func robotTest(t testing.TB) {
	net := colugotest.NewNetwork(t) // its nodes are closed when the test ends
	robot, ctl := net.NewNode("robot"), net.NewNode("controller")

	// The code under test: a robot that publishes its pose and takes goals.
	pub, err := colugo.NewPublisher[Pose](robot, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(robot, "robot/goal", func(_ context.Context, g Goal) (Accepted, error) {
		return Accepted{OK: g.X >= 0}, nil
	}); err != nil {
		t.Fatal(err)
	}

	// The test drives it from another node, as a real controller would.
	poses, err := colugo.Subscribe[Pose](t.Context(), ctl, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitSubscribers(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(t.Context(), Pose{X: 1, Y: 2}); err != nil {
		t.Fatal(err)
	}
	got := colugotest.Next(t, poses, time.Second) // fails the test after 1 s
	fmt.Println("pose:", got.X, got.Y)

	reply, err := colugo.Request[Goal, Accepted](t.Context(), ctl, "robot/goal", Goal{X: -1})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("goal accepted:", reply.OK)
}

// Example runs robotTest as go test runs a test function. An Example gets
// no *testing.T, and colugotest takes one (a testing.TB) so that its nodes
// close, and its failures report, with the test: exampleT stands in for it.
// In your tests, pass t.
func Example() {
	t := newExampleT()
	defer t.finish()
	robotTest(t)
	// Output:
	// pose: 1 2
	// goal accepted: false
}

// exampleT is the part of testing.TB that colugotest and robotTest use.
// Other methods are the embedded nil interface's: they panic.
type exampleT struct {
	testing.TB
	ctx      context.Context
	cancel   context.CancelFunc
	cleanups []func()
}

func newExampleT() *exampleT {
	ctx, cancel := context.WithCancel(context.Background())
	return &exampleT{ctx: ctx, cancel: cancel}
}

func (*exampleT) Helper()                        {}
func (e *exampleT) Context() context.Context     { return e.ctx }
func (e *exampleT) Cleanup(f func())             { e.cleanups = append(e.cleanups, f) }
func (*exampleT) Log(args ...any)                { fmt.Fprintln(os.Stderr, args...) }
func (*exampleT) Logf(format string, a ...any)   { fmt.Fprintf(os.Stderr, format+"\n", a...) }
func (*exampleT) Fatal(args ...any)              { panic(fmt.Sprint(args...)) }
func (*exampleT) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// finish does what testing does when a test ends: it cancels Context,
// then runs the cleanups, last registered first.
func (e *exampleT) finish() {
	e.cancel()
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

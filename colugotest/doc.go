// Package colugotest helps users unit-test their own nodes without sockets
// or multicast, the way net/http/httptest helps test handlers: a Network
// gives real *colugo.Node values on an in-process transport and in-memory
// discovery, closed automatically when the test ends.
//
//	func TestMyRobot(t *testing.T) {
//		net := colugotest.NewNetwork(t)
//		robot, ctl := net.NewNode("robot"), net.NewNode("controller")
//		poses, _ := colugo.Subscribe[Pose](t.Context(), ctl, "robot/pose")
//		pub, _ := colugo.NewPublisher[Pose](robot, "robot/pose")
//		...
//		got := colugotest.Next(t, poses, time.Second)
//	}
//
// # Late joiners
//
// History works on a Network as it does over sockets, since it lives in
// the publishing Node, not in the transport: a publisher with
// colugo.WithHistory keeps its last messages, a subscription with
// colugo.WithLastValue or colugo.WithHistory gets them first (Replayed, with
// their original sequence numbers), then the live ones, and colugo.Latest
// returns the newest kept value, or colugo.ErrNoValue when the publishers
// keep none. So a test can check that a node which starts late still
// learns a latched value, say a robot description published once at
// startup, by publishing before the late node exists:
//
//	func TestViewerStartsLate(t *testing.T) {
//		net := colugotest.NewNetwork(t)
//		robot := net.NewNode("robot")
//		pub, err := colugo.NewPublisher[string](robot, "robot/description", colugo.WithHistory(1))
//		if err != nil {
//			t.Fatal(err)
//		}
//		if err := pub.Publish(t.Context(), "<robot/>"); err != nil { // before the viewer exists
//			t.Fatal(err)
//		}
//
//		viewer := net.NewNode("viewer") // the late joiner
//		got, err := colugo.Subscribe[string](t.Context(), viewer, "robot/description", colugo.WithLastValue())
//		if err != nil {
//			t.Fatal(err)
//		}
//		if d := colugotest.Next(t, got, time.Second); d != "<robot/>" {
//			t.Fatalf("got %q", d)
//		}
//		if d, err := colugo.Latest[string](t.Context(), viewer, "robot/description"); d != "<robot/>" || err != nil {
//			t.Fatalf("Latest: %q, %v", d, err)
//		}
//	}
//
// Without the publisher's WithHistory, or the subscriber's WithLastValue,
// Next fails the test: the description was published once, before the
// subscription existed. The same test runs unchanged with colugo.WithKey on
// both nodes.
//
// The COLUGO_DISCOVERY environment variable does not apply to these nodes:
// no packet can leave the process.
package colugotest

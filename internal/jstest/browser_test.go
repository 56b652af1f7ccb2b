package jstest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// browserResults is what browser.mjs prints.
type browserResults struct {
	Checks struct {
		Graph          []string `json:"graph"`
		GraphTopics    []string `json:"graphTopics"`
		SubscribeEdges int      `json:"subscribeEdges"`
		Pose           struct {
			First  string `json:"first"`
			Second string `json:"second"`
		} `json:"pose"`
		PoseRate string `json:"poseRate"`
		PosePB   string `json:"posePB"`
		Add      string `json:"add"`
		AddPB    string `json:"addPB"`
		// AddPBPrefill is the form's request made from the protobuf schema.
		AddPBPrefill string `json:"addPBPrefill"`
		AddPBBad     string `json:"addPBBad"`
		Hostile      struct {
			XSS      any  `json:"xss"`
			Elements int  `json:"elements"`
			Shown    bool `json:"shown"`
			InGraph  bool `json:"inGraph"`
		} `json:"hostile"`
		Phone struct {
			ScrollWidth int      `json:"scrollWidth"`
			ClientWidth int      `json:"clientWidth"`
			Columns     int      `json:"columns"`
			Small       []string `json:"small"`
		} `json:"phone"`
	} `json:"checks"`
	Screenshots []string `json:"screenshots"`
	Console     []string `json:"console"`
	Problems    []string `json:"problems"`
	Error       string   `json:"error"`
}

// TestBrowserPage opens colugo web's page in headless Chromium, on a
// network of the example nodes, and checks what it shows: the graph, a
// JSON topic updating, a protobuf topic decoded, a service call, and the
// phone layout. Screenshots go to $COLUGO_ARTIFACTS, else a temp dir.
func TestBrowserPage(t *testing.T) {
	needJS(t, true)
	n := newNetwork(t)
	n.start("publisher")
	n.start("subscriber")
	n.start("server")
	n.start("protobuf", "pub")
	n.start("protobuf", "serve")
	// A topic whose name and payload are markup: the page must show it as
	// text (browser.mjs checks nothing of it runs or becomes an element).
	const hostile = `<img src=x onerror="window.__xss=1">`
	n.start("colugo", "pub", "--count", "0", "--rate", "10", hostile, `{"<b>k</b>":"<script>window.__xss=2</script>"}`)
	addr, _ := n.web()

	shots := os.Getenv("COLUGO_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	out := n.node(45*time.Second, "browser.mjs", "http://"+addr+"/", shots, hostile)
	var r browserResults
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("browser.mjs output: %v\n%s", err, out)
	}
	for _, p := range r.Screenshots {
		t.Logf("screenshot: %s", p)
	}
	c := r.Checks
	for _, want := range []string{"publisher", "subscriber", "server", "protobuf-pub", "protobuf-serve"} {
		if !contains(c.Graph, want) {
			t.Errorf("graph nodes %q lack %s", c.Graph, want)
		}
	}
	for _, want := range []string{"robot/pose", "robot/pose.pb"} {
		if !contains(c.GraphTopics, want) {
			t.Errorf("graph topics %q lack %s", c.GraphTopics, want)
		}
	}
	if c.SubscribeEdges < 2 { // the subscriber's and the gateway's own
		t.Errorf("%d subscribe edges, want ≥ 2", c.SubscribeEdges)
	}
	if c.Pose.First == c.Pose.Second || !strings.Contains(c.Pose.Second, `"seq"`) {
		t.Errorf("robot/pose did not update: %q then %q", c.Pose.First, c.Pose.Second)
	}
	if !strings.HasSuffix(c.PoseRate, "Hz") {
		t.Errorf("robot/pose rate %q", c.PoseRate)
	}
	for _, want := range []string{`"x"`, `"theta"`, `"frame"`, `"map"`} {
		if !strings.Contains(c.PosePB, want) {
			t.Errorf("robot/pose.pb shown as %q: no %s", c.PosePB, want)
		}
	}
	if !strings.Contains(c.Add, `"sum": 5`) {
		t.Errorf("math/add {a:2,b:3} shown as %q", c.Add)
	}
	if !strings.Contains(c.AddPB, `"sum": 5`) {
		t.Errorf("math/add.pb {a:2,b:\"3\"} shown as %q", c.AddPB)
	}
	if !strings.Contains(c.AddPBPrefill, `"a": 0`) || !strings.Contains(c.AddPBPrefill, `"b": 0`) {
		t.Errorf("math/add.pb form prefilled with %q, want its fields a and b", c.AddPBPrefill)
	}
	if !strings.Contains(c.AddPBBad, "no field c") {
		t.Errorf("math/add.pb {c:1} shown as %q, want a refusal", c.AddPBBad)
	}
	if h := c.Hostile; h.XSS != nil || h.Elements != 0 || !h.Shown || !h.InGraph {
		t.Errorf("hostile topic: %+v", h)
	}
	if p := c.Phone; p.ScrollWidth > p.ClientWidth || p.Columns != 1 || len(p.Small) > 0 {
		t.Errorf("phone layout: %+v", p)
	}
	if len(r.Problems) > 0 || r.Error != "" {
		t.Errorf("browser.mjs: problems %q, error %s", r.Problems, r.Error)
	}
	if len(r.Console) > 0 {
		t.Errorf("page console: %q", r.Console)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package main

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// fakeBridge is a node that tells what a bridge's node tells (this binary
// and its tests link no NATS): a status document "bridge" in the shape of
// bridge.Status, an imported topic and service and an export
// subscription marked with a Relay. link is its link state.
func fakeBridge(t *testing.T, dir string, link *atomic.Value) {
	t.Helper()
	n := node(t, dir, "bridge-lab")
	if err := n.SetStatus("bridge", func() any {
		return map[string]any{
			"site": "lab", "id": n.ID(), "server": "nats://127.0.0.1:4222",
			"export": map[string]any{"topics": []any{map[string]any{"name": "robot/**", "max_rate": 10}},
				"services": []any{map[string]any{"name": "math/add"}}},
			"import": map[string]any{"topics": []any{map[string]any{"name": "fleet/**", "prefix": "hq", "jetstream": true}},
				"services": []any{map[string]any{"name": "plan/route"}}},
			"exporting": map[string]any{"topics": []string{"robot/pose"}, "services": []string{"math/add"}},
			"importing": map[string]any{"services": []string{"plan/route"}},
			"stats": map[string]any{"link": link.Load(), "reconnects": 1, "disconnects": 2, "spooled": 12, "queued": 3072, "export_refused": 9,
				"jetstream_errors": 5, "jetstream_error": "import **: stream: too wide\x1b[2J",
				"export": map[string]any{"messages": 1000, "drops": map[string]any{"queue": 3, "loop": 0, "rate": 7}},
				"import": map[string]any{"messages": 50, "drops": map[string]any{"loop": 4, "duplicate": 0}}},
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.NewPublisher[[]byte](n, "fleet/goal", colugo.WithCodec(codec.Raw{}),
		colugo.WithRelay(colugo.Relay{Via: "nats", Remote: "hq", Name: "colugo.t.hq.fleet.goal"})); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(n, "plan/route", func(_ context.Context, r int) (int, error) { return r, nil },
		colugo.WithRelay(colugo.Relay{Via: "nats", Remote: "hq", Name: "colugo.s.plan.route"})); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.SubscribeReceived[[]byte](t.Context(), n, "robot/pose", colugo.WithAnyCodec(),
		colugo.WithRelay(colugo.Relay{Via: "nats", Name: "colugo.t.robot.pose"})); err != nil {
		t.Fatal(err)
	}
}

// TestNodesAndDoctorShowBridges runs the binary against a bridge-like
// node: nodes marks it (BRIDGE column, and --json carries its status and
// relays), doctor shows its site, link, entries, what crosses and its
// drops, and warns when its link is down.
func TestNodesAndDoctorShowBridges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var link atomic.Value
	link.Store("up")
	fakeBridge(t, dir, &link)
	plain := node(t, dir, "plain")
	if _, err := colugo.NewPublisher[pose](plain, "robot/pose"); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, dir, "nodes")
	if r.code != 0 || !regexp.MustCompile(`(?m)^NAME .* BRIDGE$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^bridge-lab .*fleet/goal .*plan/route +site lab, link up$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^plain .* -$`).MatchString(r.stdout) {
		t.Errorf("nodes does not mark the bridge")
	}
	r = runCLI(t, dir, "nodes", "--json")
	var found bool
	for line := range strings.Lines(r.stdout) {
		var p colugo.PeerInfo
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("nodes --json: %v", err)
		}
		if p.Name != "bridge-lab" {
			continue
		}
		found = true
		var st struct {
			Site string `json:"site"`
		}
		if err := json.Unmarshal(p.Status["bridge"], &st); err != nil || st.Site != "lab" {
			t.Errorf("nodes --json status: %s", p.Status["bridge"])
		}
		if len(p.Topics) != 1 || p.Topics[0].Relay == nil || p.Topics[0].Relay.Remote != "hq" {
			t.Errorf("nodes --json topics: %+v", p.Topics)
		}
	}
	if !found {
		t.Error("nodes --json: no bridge-lab")
	}

	r = runCLI(t, dir, "doctor", "--listen", "0s")
	for _, want := range []string{
		`(?m)^OK +bridge bridge-lab +site lab, bridge id \w+: link up to nats://127\.0\.0\.1:4222 \(2 disconnects, 1 reconnects\)$`,
		`(?m)^INFO +bridge bridge-lab +exports topics robot/\*\* \(10 Hz\); services math/add; exporting now: topics robot/pose; services math/add$`,
		`(?m)^INFO +bridge bridge-lab +imports topics fleet/\*\* \(prefix hq, jetstream\); services plan/route; importing now: topics fleet/goal \(from hq\); services plan/route \(from hq\)$`,
		`(?m)^WARN +bridge bridge-lab +export drops: queue 3, rate 7 \(of 1000 forwarded\)$`,
		`(?m)^INFO +bridge bridge-lab +import drops: loop 4 \(of 50 forwarded; by its config or the topology\)$`,
		`(?m)^INFO +bridge bridge-lab +12 JetStream messages held until their stream has them \(spool\)$`,
		`(?m)^INFO +bridge bridge-lab +3\.0 KiB queued for export, waiting for NATS$`,
		`(?m)^WARN +bridge bridge-lab +9 topics matching its export patterns not exported: max_export_topics reached$`,
		`(?m)^WARN +bridge bridge-lab +5 failed attempts at making JetStream streams or consumers, .*\(retried until they succeed\)$`,
		`(?m)^WARN +bridge bridge-lab +last JetStream failure: import \*\*: stream: too wide\\x1b\[2J$`, // a peer's text, escaped
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("doctor: no line matching %s", want)
		}
	}
	if r.code != 0 { // warnings are no problems
		t.Errorf("doctor exit %d", r.code)
	}
	link.Store("down")
	r = runCLI(t, dir, "doctor", "--listen", "0s")
	if !regexp.MustCompile(`(?m)^WARN +bridge bridge-lab +site lab, bridge id \w+: link down to nats://127\.0\.0\.1:4222 \(.*\): nothing crosses`).MatchString(r.stdout) {
		t.Error("doctor does not warn of the link down")
	}
}

// TestDoctorBadBridgeStatus: a node whose bridge status is not one (a
// hostile or broken peer) is reported, not trusted; nodes says so too.
func TestDoctorBadBridgeStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := node(t, dir, "liar")
	if err := n.SetStatus("bridge", func() any { return map[string]any{"site": 5, "stats": "x"} }); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, dir, "doctor", "--listen", "0s")
	if !regexp.MustCompile(`(?m)^WARN +bridge liar +unreadable bridge status in \$describe: `).MatchString(r.stdout) {
		t.Error("doctor does not report the bad status")
	}
	r = runCLI(t, dir, "nodes")
	if !regexp.MustCompile(`(?m)^liar .* unreadable status$`).MatchString(r.stdout) {
		t.Error("nodes does not report the bad status")
	}
}

// TestBridgeStatusMirror keeps the CLI's reading of the bridge's status
// document in step with the bridge module's source (which this module
// cannot import): every JSON name read exists there, the document's name
// is the same, and the drop reasons doctor takes as expected are
// reasons of bridge.Drops.
func TestBridgeStatusMirror(t *testing.T) {
	t.Parallel()
	const file = "../../bridge/bridge.go"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string][]string{} // bridge type -> JSON names of its fields
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		for _, fl := range st.Fields.List {
			if fl.Tag == nil {
				continue
			}
			tag := reflect.StructTag(strings.Trim(fl.Tag.Value, "`")).Get("json")
			tags[ts.Name.Name] = append(tags[ts.Name.Name], strings.Split(tag, ",")[0])
		}
		return true
	})
	var stats = reflect.TypeFor[bridgeStatus]().Field(7).Type
	for _, m := range []struct {
		cli    reflect.Type
		bridge string
	}{
		{reflect.TypeFor[bridgeStatus](), "Status"}, {reflect.TypeFor[bridgeRules](), "Rules"}, {reflect.TypeFor[bridgeRule](), "Rule"},
		{reflect.TypeFor[bridgeNames](), "Names"}, {stats, "Stats"}, {reflect.TypeFor[bridgeDirection](), "Direction"},
	} {
		if len(tags[m.bridge]) == 0 {
			t.Errorf("no JSON-tagged type %s in %s", m.bridge, file)
			continue
		}
		for i := range m.cli.NumField() {
			name := strings.Split(m.cli.Field(i).Tag.Get("json"), ",")[0]
			if !slices.Contains(tags[m.bridge], name) {
				t.Errorf("%v reads %q, which bridge.%s has not (%v)", m.cli, name, m.bridge, tags[m.bridge])
			}
		}
	}
	for reason := range expectedDrop {
		if !slices.Contains(tags["Drops"], reason) {
			t.Errorf("expected drop %q is no bridge.Drops reason (%v)", reason, tags["Drops"])
		}
	}
	src, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range src.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				v := s.(*ast.ValueSpec)
				if len(v.Names) == 1 && v.Names[0].Name == "StatusName" && len(v.Values) == 1 {
					lit, ok := v.Values[0].(*ast.BasicLit)
					found = ok && lit.Value == `"`+bridgeStatusName+`"`
				}
			}
		}
	}
	if !found {
		t.Errorf("bridge.StatusName is not %q", bridgeStatusName)
	}
}

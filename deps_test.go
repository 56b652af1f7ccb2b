package colugo

import (
	"os/exec"
	"strings"
	"testing"
)

// A ban is a package (and everything under it) that a package of this
// module must not link, and why.
type ban struct{ dep, why string }

var (
	banTestOnly = []ban{
		{"testing", "test-only: it links the test framework into programs"},
		{"net/http/httptest", "test-only HTTP servers (testify's assert links it)"},
		{"github.com/stretchr/testify", "test-only assertions (the mcap module's non-test testutils.go links it)"},
		{"github.com/davecgh/go-spew", "test-only, through testify"},
		{"github.com/pmezard/go-difflib", "test-only, through testify"},
		{"gopkg.in/yaml.v3", "test-only, through testify; colugo reads no YAML"},
		{"github.com/foxglove/mcap", "record has its own MCAP reader and writer; the mcap module is the tests' reference only"},
		{"github.com/go-zeromq/zmq4", "the tests' ZMTP reference only: transport/zmq implements ZMTP itself"},
		{"golang.org/x/text", "only zmq4 (title-casing READY property names) needed it"},
		{"github.com/colugo-go/colugo/colugotest", "test fakes belong in tests"},
		{"github.com/colugo-go/colugo/record/recordtest", "test helpers belong in tests"},
	}
	banOptional = []ban{
		{"google.golang.org/protobuf", "protobuf is opt-in (codec/protobuf): JSON and raw users must not link it"},
		{"github.com/colugo-go/colugo/codec/protobuf", "opt-in codec"},
		{"github.com/colugo-go/colugo/record", "recording is opt-in (and links compression)"},
		{"go.opentelemetry.io", "tracing and metrics live in an optional package"},
		{"github.com/nats-io", "NATS belongs to benchmarks and bridges, not to nodes"},
		{"github.com/coder/websocket", "websockets belong to the web gateway, not to nodes"},
	}
)

// TestDependencies keeps test-only, CLI-only and opt-in modules out of the
// packages (and so the programs) that must not carry them: each row is a
// package of this module and the packages it must not link, with a reason
// per ban.
func TestDependencies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pkg  string
		bans [][]ban
	}{
		{".", [][]ban{banTestOnly, banOptional}},
		{"./codec", [][]ban{banTestOnly, banOptional, {{"github.com/colugo-go/colugo/transport", "codecs stand alone: gateways use them without the network"}}}},
		{"./colugotest", [][]ban{banTestOnly[1:], banOptional}}, // it is built on testing (banTestOnly[0])
		{"./record", [][]ban{banTestOnly}},
		{"./cmd/colugo", [][]ban{banTestOnly, banOptional[3:5]}},       // it decodes protobuf from $describe schemas, records and serves the web gateway (websocket)
		{"./gateway/foxglove", [][]ban{banTestOnly, banOptional[3:5]}}, // a node's gateway to browsers: websocket, no tracing SDK or NATS
		{"./gateway/webui", [][]ban{banTestOnly, banOptional, {{"github.com/colugo-go/colugo", "the page is static files: it reaches the network through the gateway"}}}},
	} {
		t.Run(strings.TrimPrefix(tc.pkg, "./"), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "list", "-deps", tc.pkg).Output()
			if err != nil {
				t.Skipf("go list unavailable: %v", err)
			}
			deps := strings.Fields(string(out))
			self := "github.com/colugo-go/colugo" + strings.TrimPrefix(tc.pkg, ".") // go list -deps lists it too
			for _, bans := range tc.bans {
				for _, b := range bans {
					for _, dep := range deps {
						if dep != self && (dep == b.dep || strings.HasPrefix(dep, b.dep+"/")) {
							t.Errorf("%s depends on %s: %s", tc.pkg, dep, b.why)
							break // one line per ban
						}
					}
				}
			}
		})
	}
}

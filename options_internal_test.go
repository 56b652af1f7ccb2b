package colugo

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport/inproc"
)

// TestOptionStrings checks that every option prints as the call that makes
// it (secrets redacted), and finds every exported function returning an
// option in the package's source, so that a new option without a String
// method, or missing here, fails.
func TestOptionStrings(t *testing.T) {
	cases := map[string]struct {
		opt  any
		want string
	}{
		"WithEventBuffer":    {WithEventBuffer(16), "WithEventBuffer(16)"},
		"WithKey":            {WithKey([]byte("0123456789abcdef0123456789abcdef"), []byte("old")), "WithKey(<secret>, 1 previous)"},
		"WithSendTimeWindow": {WithSendTimeWindow(30 * time.Second), "WithSendTimeWindow(30s)"},
		"WithReplayLimits":   {WithReplayLimits(10, 20), "WithReplayLimits(10, 20)"},
		"WithCodec":          {WithCodec(codec.Raw{}), "WithCodec(raw)"},
		"WithDiscovery":      {WithDiscovery(discovery.Static()), "WithDiscovery(*discovery.static)"},
		"WithTransport":      {WithTransport(inproc.NewNetwork().New()), "WithTransport(*inproc.Transport)"},
		"WithLogger":         {WithLogger(slog.Default()), "WithLogger(...)"},
		"WithErrorHandler":   {WithErrorHandler(func(error) {}), "WithErrorHandler(...)"},
		"WithDefaultTimeout": {WithDefaultTimeout(2 * time.Second), "WithDefaultTimeout(2s)"},
		"WithRecover":        {WithRecover(), "WithRecover()"},
		"WithMaxHandlers":    {WithMaxHandlers(8), "WithMaxHandlers(8)"},
		"WithMaxPeers":       {WithMaxPeers(8), "WithMaxPeers(8)"},
		"WithBuffer":         {WithBuffer(8), "WithBuffer(8)"},
		"WithQueueBytes":     {WithQueueBytes(1 << 20), "WithQueueBytes(1048576)"},
		"WithQueueBudget":    {WithQueueBudget(NewQueueBudget(1 << 20)), "WithQueueBudget(NewQueueBudget(1048576))"},
		"WithBackPressure":   {WithBackPressure(time.Second), "WithBackPressure(1s)"},
		"WithDropPolicy":     {WithDropPolicy(Block(2 * time.Second)), "WithDropPolicy(Block(2s))"},
		"WithZeroCopy":       {WithZeroCopy(), "WithZeroCopy()"},
		"WithFailFast":       {WithFailFast(), "WithFailFast()"},
		"WithAnyCodec":       {WithAnyCodec(), "WithAnyCodec()"},
		"WithHistory":        {WithHistory(3), "WithHistory(3)"},
		"WithSeedCompat":     {WithSeedCompat(SeedConfig{}), "WithSeedCompat(directory mDNS, reply budget 1.5s, plaintext allowed false)"},
		"SeedVisible":        {SeedVisible(), "SeedVisible()"},
		"WithLastValue":      {WithLastValue(), "WithLastValue()"},
		"WithHistoryBytes":   {WithHistoryBytes(1024), "WithHistoryBytes(1024)"},
		"WithTracer":         {WithTracer(nil), "WithTracer(...)"},
		"WithRelay":          {WithRelay(Relay{Via: "nats", Remote: "b", Name: "colugo.t.x"}), "WithRelay(nats b colugo.t.x)"},
	}
	for name, c := range cases {
		s, ok := c.opt.(fmt.Stringer)
		if !ok {
			t.Errorf("%s: %T has no String method", name, c.opt)
			continue
		}
		if got := s.String(); got != c.want {
			t.Errorf("%s: String() = %q, want %q", name, got, c.want)
		}
	}
	for _, p := range []DropPolicy{DropOldest, DropNewest, Block(time.Second)} {
		if got := WithDropPolicy(p).(fmt.Stringer).String(); got != "WithDropPolicy("+p.String()+")" {
			t.Errorf("WithDropPolicy(%v) prints %q", p, got)
		}
	}
	for _, name := range optionFuncs(t) {
		if _, ok := cases[name]; !ok {
			t.Errorf("option %s is not in TestOptionStrings: add it, with what String() prints", name)
		}
	}
}

// optionFuncs lists the package's exported functions whose result type is
// an option interface (its name ends in "Option").
func optionFuncs(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() || fn.Type.Results == nil || len(fn.Type.Results.List) != 1 {
				continue
			}
			if id, ok := fn.Type.Results.List[0].Type.(*ast.Ident); ok && strings.HasSuffix(id.Name, "Option") {
				names = append(names, fn.Name.Name)
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d option functions: the scan is broken", len(names))
	}
	return names
}

package jsonschema_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/internal/jsonschema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Point struct {
	X, Y float64
}

type Tagged struct {
	A int    `json:"a"`
	B string `json:"b,omitempty"`
	C bool   `json:"-"`
	//lint:ignore SA5008 deliberate: encoding/json names this field "-"
	D uint8             `json:"-,"`
	E int64             `json:"e,string"`
	F *Point            `json:"f"`
	G []byte            `json:"g"`
	H [2]int            `json:"h"`
	I map[string]Point  `json:"i,omitzero"`
	J any               `json:"j"`
	K json.RawMessage   `json:"k"`
	L time.Time         `json:"l"`
	M map[int]bool      `json:"m"`
	N map[Text][]string `json:"n"`
}

// Text has MarshalText: a string, and usable as a map key.
type Text struct{ v int }

func (t Text) MarshalText() ([]byte, error) { return []byte(fmt.Sprint(t.v)), nil }

type Base struct {
	ID   string `json:"id"`
	Name string
}

type Other struct {
	Name string
}

type Embeds struct {
	Base
	*Other        // Name ties with Base.Name at depth 1: dropped
	Own    string `json:"own"`
}

type PtrEmbed struct {
	*Base
	Z int
}

type Node struct {
	Value    int     `json:"value"`
	Children []*Node `json:"children"`
	Next     *Node   `json:"next,omitempty"`
}

type A struct{ B *B }
type B struct{ A *A }

func gen(t *testing.T, typ reflect.Type) map[string]any {
	t.Helper()
	b, err := jsonschema.Generate(typ, 0)
	if err != nil {
		t.Fatalf("Generate(%v): %v", typ, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Generate(%v) gave invalid JSON %s: %v", typ, b, err)
	}
	if m["$schema"] != jsonschema.Dialect {
		t.Fatalf("Generate(%v): $schema %v", typ, m["$schema"])
	}
	delete(m, "$schema")
	return m
}

func TestGenerateTable(t *testing.T) {
	for _, tc := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[bool](), `{"type":"boolean"}`},
		{reflect.TypeFor[int32](), `{"type":"integer"}`},
		{reflect.TypeFor[uint](), `{"type":"integer","minimum":0}`},
		{reflect.TypeFor[float32](), `{"type":"number"}`},
		{reflect.TypeFor[string](), `{"type":"string"}`},
		{reflect.TypeFor[*string](), `{"anyOf":[{"type":"string"},{"type":"null"}]}`},
		{reflect.TypeFor[**int](), `{"anyOf":[{"type":"integer"},{"type":"null"}]}`},
		{reflect.TypeFor[[]int](), `{"type":["array","null"],"items":{"type":"integer"}}`},
		{reflect.TypeFor[[]byte](), `{"type":["string","null"],"contentEncoding":"base64"}`},
		{reflect.TypeFor[[3]byte](), `{"type":"array","items":{"type":"integer","minimum":0},"minItems":3,"maxItems":3}`},
		{reflect.TypeFor[map[string]int](), `{"type":["object","null"],"additionalProperties":{"type":"integer"}}`},
		{reflect.TypeFor[any](), `{}`},
		{reflect.TypeFor[json.RawMessage](), `{}`},
		{reflect.TypeFor[*json.RawMessage](), `{}`},
		{reflect.TypeFor[time.Time](), `{"type":"string","format":"date-time"}`},
		{reflect.TypeFor[Text](), `{"type":"string"}`},
		{reflect.TypeFor[struct{}](), `{"type":"object","properties":{},"additionalProperties":false}`},
		{reflect.TypeFor[struct {
			A int `json:"a,omitempty"`
			b int
		}](), `{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false}`},
		{reflect.TypeFor[Point](), `{"$ref":"#/$defs/jsonschema_test.Point","$defs":{"jsonschema_test.Point":
			{"type":"object","properties":{"X":{"type":"number"},"Y":{"type":"number"}},"required":["X","Y"],"additionalProperties":false}}}`},
		{reflect.TypeFor[Tagged](), `{"$ref":"#/$defs/jsonschema_test.Tagged","$defs":{
			"jsonschema_test.Point":{"type":"object","properties":{"X":{"type":"number"},"Y":{"type":"number"}},"required":["X","Y"],"additionalProperties":false},
			"jsonschema_test.Tagged":{"type":"object","additionalProperties":false,"properties":{
				"a":{"type":"integer"},"b":{"type":"string"},"-":{"type":"integer","minimum":0},"e":{"type":"string"},
				"f":{"anyOf":[{"$ref":"#/$defs/jsonschema_test.Point"},{"type":"null"}]},
				"g":{"type":["string","null"],"contentEncoding":"base64"},
				"h":{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":2},
				"i":{"type":["object","null"],"additionalProperties":{"$ref":"#/$defs/jsonschema_test.Point"}},
				"j":{},"k":{},"l":{"type":"string","format":"date-time"},
				"m":{"type":["object","null"],"additionalProperties":{"type":"boolean"}},
				"n":{"type":["object","null"],"additionalProperties":{"type":["array","null"],"items":{"type":"string"}}}},
				"required":["a","-","e","f","g","h","j","k","l","m","n"]}}}`},
		{reflect.TypeFor[Embeds](), `{"$ref":"#/$defs/jsonschema_test.Embeds","$defs":{"jsonschema_test.Embeds":
			{"type":"object","properties":{"id":{"type":"string"},"own":{"type":"string"}},"required":["id","own"],"additionalProperties":false}}}`},
		{reflect.TypeFor[PtrEmbed](), `{"$ref":"#/$defs/jsonschema_test.PtrEmbed","$defs":{"jsonschema_test.PtrEmbed":
			{"type":"object","properties":{"id":{"type":"string"},"Name":{"type":"string"},"Z":{"type":"integer"}},"required":["Z"],"additionalProperties":false}}}`},
		{reflect.TypeFor[Node](), `{"$ref":"#/$defs/jsonschema_test.Node","$defs":{"jsonschema_test.Node":
			{"type":"object","properties":{"value":{"type":"integer"},
			"children":{"type":["array","null"],"items":{"anyOf":[{"$ref":"#/$defs/jsonschema_test.Node"},{"type":"null"}]}},
			"next":{"anyOf":[{"$ref":"#/$defs/jsonschema_test.Node"},{"type":"null"}]}},
			"required":["value","children"],"additionalProperties":false}}}`},
	} {
		got := gen(t, tc.typ)
		var want map[string]any
		if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
			t.Fatalf("%v: bad want: %v", tc.typ, err)
		}
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			t.Errorf("%v:\n got %s\nwant %s", tc.typ, gb, wb)
		}
	}
}

func TestGenerateUnsupported(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[chan int](),
		reflect.TypeFor[func()](),
		reflect.TypeFor[complex128](),
		reflect.TypeFor[unsafe.Pointer](),
		reflect.TypeFor[map[Point]int](),
		reflect.TypeFor[struct{ C chan int }](),
		reflect.TypeFor[[]struct{ F func() }](),
	} {
		if b, err := jsonschema.Generate(typ, 0); !errors.Is(err, jsonschema.ErrUnsupported) {
			t.Errorf("Generate(%v) = %s, %v; want ErrUnsupported", typ, b, err)
		}
	}
	// Tagged "-" or unexported: skipped, like encoding/json.
	for _, typ := range []reflect.Type{
		reflect.TypeFor[struct {
			C chan int `json:"-"`
			f func()
		}](),
	} {
		if _, err := jsonschema.Generate(typ, 0); err != nil {
			t.Errorf("Generate(%v): %v", typ, err)
		}
	}
}

func TestGenerateRecursiveTerminates(t *testing.T) {
	m := gen(t, reflect.TypeFor[A]())
	defs, _ := m["$defs"].(map[string]any)
	if len(defs) != 2 {
		t.Fatalf("$defs %v, want A and B", defs)
	}
	_ = gen(t, reflect.TypeFor[map[string][]*Node]())
}

func TestGenerateLimit(t *testing.T) {
	typ := reflect.TypeFor[Tagged]()
	full, err := jsonschema.Generate(typ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jsonschema.Generate(typ, len(full)); err != nil {
		t.Errorf("at its own size: %v", err)
	}
	if b, err := jsonschema.Generate(typ, len(full)-1); !errors.Is(err, jsonschema.ErrTooLarge) || b != nil {
		t.Errorf("one byte under: %s, %v; want ErrTooLarge", b, err)
	}
}

func TestGenerateNilType(t *testing.T) {
	if got := gen(t, nil); len(got) != 0 {
		t.Errorf("nil type: %v", got)
	}
}

// validate is a small validator for the keywords Generate writes.
func validate(schema, root map[string]any, v any, path string) error {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: dangling $ref %s", path, ref)
		}
		return validate(def, root, v, path)
	}
	if branches, ok := schema["anyOf"].([]any); ok {
		var errs []error
		for _, s := range branches {
			err := validate(s.(map[string]any), root, v, path)
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		return fmt.Errorf("%s: no anyOf branch: %w", path, errors.Join(errs...))
	}
	if typ, ok := schema["type"]; ok {
		types := []any{typ}
		if l, ok := typ.([]any); ok {
			types = l
		}
		okType := false
		for _, ty := range types {
			switch ty {
			case "null":
				okType = okType || v == nil
			case "boolean":
				_, b := v.(bool)
				okType = okType || b
			case "string":
				_, b := v.(string)
				okType = okType || b
			case "number":
				_, b := v.(float64)
				okType = okType || b
			case "integer":
				f, b := v.(float64)
				okType = okType || b && f == math.Trunc(f)
			case "array":
				_, b := v.([]any)
				okType = okType || b
			case "object":
				_, b := v.(map[string]any)
				okType = okType || b
			}
		}
		if !okType {
			return fmt.Errorf("%s: %v (%T) is not %v", path, v, v, typ)
		}
	}
	if min, ok := schema["minimum"].(float64); ok {
		if f, ok := v.(float64); ok && f < min {
			return fmt.Errorf("%s: %v < minimum %v", path, f, min)
		}
	}
	switch v := v.(type) {
	case []any:
		if n, ok := schema["minItems"].(float64); ok && float64(len(v)) < n {
			return fmt.Errorf("%s: %d items < %v", path, len(v), n)
		}
		if n, ok := schema["maxItems"].(float64); ok && float64(len(v)) > n {
			return fmt.Errorf("%s: %d items > %v", path, len(v), n)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range v {
				if err := validate(items, root, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asSlice(schema["required"]) {
			if _, ok := v[r.(string)]; !ok {
				return fmt.Errorf("%s: missing required %q", path, r)
			}
		}
		for k, e := range v {
			if p, ok := props[k]; ok {
				if err := validate(p.(map[string]any), root, e, path+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: unknown property %q", path, k)
				}
			case map[string]any:
				if err := validate(ap, root, e, path+"."+k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asSlice(v any) []any { l, _ := v.([]any); return l }

// TestSchemaValidatesEncodings checks that real encoding/json output of
// sample values validates against the generated schema, and that the
// validator refuses altered documents (unknown field, wrong type).
func TestSchemaValidatesEncodings(t *testing.T) {
	n := 7
	samples := []any{
		Tagged{},
		Tagged{A: -3, B: "x", E: 42, F: &Point{1.5, -2}, G: []byte{0, 1, 255}, H: [2]int{1, 2},
			I: map[string]Point{"p": {}}, J: []any{1, "a"}, K: json.RawMessage(`{"q":[1]}`),
			L: time.Unix(1e9, 0).UTC(), M: map[int]bool{-1: true}, N: map[Text][]string{{3}: {"a"}}},
		Embeds{Base: Base{ID: "i", Name: "n"}, Other: &Other{Name: "o"}, Own: "w"},
		PtrEmbed{Z: 1},
		PtrEmbed{Base: &Base{ID: "a", Name: "b"}, Z: 2},
		Node{Value: 1, Children: []*Node{{Value: 2}, nil}, Next: &Node{Value: 3, Children: []*Node{}}},
		A{B: &B{A: &A{}}},
		map[string][]*Node{"k": {{Value: 1}}, "nil": nil},
		[]*int{&n, nil},
		&n,
		struct {
			U  uint16 `json:"u,string"`
			Bs []byte
		}{U: 9},
	}
	for _, s := range samples {
		typ := reflect.TypeOf(s)
		root := gen(t, typ)
		doc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(doc, &v); err != nil {
			t.Fatal(err)
		}
		if err := validate(root, root, v, "$"); err != nil {
			t.Errorf("%v: %s does not validate: %v", typ, doc, err)
		}
		if obj, ok := v.(map[string]any); ok {
			if _, ref := root["$ref"]; ref {
				obj["zz_unknown"] = 1
				if err := validate(root, root, obj, "$"); err == nil {
					t.Errorf("%v: unknown field accepted", typ)
				}
				delete(obj, "zz_unknown")
				def := root["$defs"].(map[string]any)[strings.TrimPrefix(root["$ref"].(string), "#/$defs/")].(map[string]any)
				for k, p := range def["properties"].(map[string]any) {
					if len(p.(map[string]any)) == 0 {
						continue // {} accepts anything
					}
					old := obj[k]
					obj[k] = func() {} // no typed schema accepts a Go func value
					if err := validate(root, root, obj, "$"); err == nil {
						t.Errorf("%v: wrong type for %q accepted", typ, k)
					}
					obj[k] = old
				}
			}
		}
	}
}

// odd types, to check generation never panics.
type (
	Self     *Self
	SelfMap  map[string]SelfMap
	SelfList []SelfList
	Mixed    struct {
		S        Self
		SelfMap  `json:"sm"`
		SelfList `json:",omitempty"`
		Ch       <-chan int `json:"-"`
		Iface    fmt.Stringer
		Arr      [0]func() `json:"-"`
		Deep     struct{ In struct{ Most *Mixed } }
	}
)

func TestGenerateOddTypesNoPanic(t *testing.T) {
	base := []reflect.Type{
		reflect.TypeFor[Mixed](), reflect.TypeFor[SelfMap](), reflect.TypeFor[SelfList](),
		reflect.TypeFor[chan int](), reflect.TypeFor[func()](), reflect.TypeFor[error](),
		reflect.TypeFor[Node](), reflect.TypeFor[[]byte](), reflect.TypeFor[map[bool]int](),
		reflect.TypeFor[uintptr](), reflect.TypeFor[complex64](), reflect.TypeFor[Tagged](),
	}
	// Wrap each in pointers, slices, arrays, maps and structs, two deep.
	wrap := func(t reflect.Type) []reflect.Type {
		out := []reflect.Type{reflect.PointerTo(t), reflect.SliceOf(t), reflect.ArrayOf(2, t), reflect.MapOf(reflect.TypeFor[string](), t)}
		out = append(out, reflect.StructOf([]reflect.StructField{
			{Name: "F", Type: t},
			{Name: "G", Type: t, Tag: `json:"g,omitempty"`},
		}))
		if t.Kind() == reflect.Struct && t.Name() != "" {
			out = append(out, reflect.StructOf([]reflect.StructField{{Name: t.Name(), Type: t, Anonymous: true}}))
		}
		return out
	}
	types := base
	for _, t := range base {
		for _, w := range wrap(t) {
			types = append(types, w)
			types = append(types, wrap(w)...)
		}
	}
	for _, typ := range types {
		b, err := jsonschema.Generate(typ, 1<<16)
		if err != nil {
			if !errors.Is(err, jsonschema.ErrUnsupported) && !errors.Is(err, jsonschema.ErrTooLarge) {
				t.Errorf("Generate(%v): unexpected error %v", typ, err)
			}
			continue
		}
		if !json.Valid(b) {
			t.Errorf("Generate(%v): invalid JSON", typ)
		}
	}
}

// Unnamed structs are inlined, so nesting them widely grows the schema
// exponentially: Generate stops at its node budget before building it
// (3^9 struct nodes here), rather than after marshalling it all.
func TestGenerateWideNestingStops(t *testing.T) {
	typ := reflect.TypeFor[int]()
	for range 9 {
		typ = reflect.StructOf([]reflect.StructField{{Name: "A", Type: typ}, {Name: "B", Type: typ}, {Name: "C", Type: typ}})
	}
	b, err := jsonschema.Generate(typ, 16<<10)
	if !errors.Is(err, jsonschema.ErrTooLarge) || !strings.Contains(err.Error(), "over 16384 bytes") {
		t.Errorf("%d bytes, %v; want ErrTooLarge from the budget", len(b), err)
	}
	if _, err := jsonschema.Generate(typ, 0); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

// Package jsonschema derives a JSON Schema (draft 2020-12) from a Go type
// by reflection, following encoding/json's rules, so that tools that do
// not have a program's types can check or build its JSON messages.
//
// The mapping: bool is boolean; integers are integer (unsigned ones with
// minimum 0); floats are number; strings are string; a field tagged
// ",string" is string; a pointer is its element's schema or null; a slice
// is an array or null, and []byte a base64 string (contentEncoding
// base64) or null; an array [N]T an array of exactly N items; a map with
// string, integer or encoding.TextMarshaler keys an object (or null)
// whose values all have the element's schema; an interface is {} (any
// value). time.Time is a date-time string; any other type with a
// MarshalJSON or UnmarshalJSON method (json.RawMessage among them) is {};
// one with MarshalText is a string.
//
// A struct is an object with additionalProperties false, so tools can
// refuse unknown fields. Its properties are the fields encoding/json
// encodes: exported fields and the fields promoted from embedded structs
// (with encoding/json's precedence: shallower first, then tagged, ties
// dropped), named by their json tags, and fields tagged "-" left out.
// Fields without omitempty or omitzero are required, except those
// promoted through an embedded pointer (absent when it is nil). Named
// struct, map, slice and array types are written once under $defs and
// referenced by $ref, which is how recursive types terminate.
//
// Types encoding/json cannot encode (channels, functions, complex
// numbers, unsafe pointers, maps with other keys), anywhere in the type
// not tagged "-", make [Generate] return an error wrapping
// [ErrUnsupported].
package jsonschema

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dialect is the $schema of every generated schema.
const Dialect = "https://json-schema.org/draft/2020-12/schema"

// ErrUnsupported is wrapped by Generate's error for a type encoding/json
// cannot encode.
var ErrUnsupported = errors.New("jsonschema: type cannot be encoded as JSON")

// ErrTooLarge is Generate's error when the schema would exceed the limit.
var ErrTooLarge = errors.New("jsonschema: schema too large")

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	unmarshalerType   = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	timeType          = reflect.TypeFor[time.Time]()
)

// maxDefs bounds the named struct types one schema defines, so a huge
// type graph fails fast instead of building a large document first.
const maxDefs = 1024

// Generate returns the JSON Schema of t's JSON encoding, compact, with
// $schema set to [Dialect]. A schema longer than limit bytes (limit > 0)
// gives an error wrapping [ErrTooLarge]; limit <= 0 means no byte limit,
// but a type needing over a million schema nodes (unnamed structs nested
// widely are inlined, so they grow exponentially) gives ErrTooLarge too.
// A nil t gives {} (JSON of a nil interface is any value).
func Generate(t reflect.Type, limit int) (json.RawMessage, error) {
	// Every schema node is at least 2 bytes ("{}"): a budget of nodes
	// stops a type whose unnamed parts nest widely (inlined, so growing
	// exponentially) before it is built.
	budget := 1 << 20
	if limit > 0 {
		budget = limit/2 + 1
	}
	g := &gen{defs: map[string]any{}, names: map[reflect.Type]string{}, used: map[string]bool{}, budget: budget, limit: limit}
	var root map[string]any
	if t == nil {
		root = map[string]any{}
	} else {
		s, err := g.schema(t, "")
		if err != nil {
			return nil, err
		}
		root = s
	}
	// A root that is only a $ref stays as {"$ref": ...}: 2020-12 allows
	// $ref next to other keywords.
	out := map[string]any{"$schema": Dialect}
	for k, v := range root {
		out[k] = v
	}
	if len(g.defs) > 0 {
		out["$defs"] = g.defs
	}
	b, err := json.Marshal(out) // maps marshal with sorted keys: deterministic
	if err != nil {
		return nil, fmt.Errorf("jsonschema: %w", err)
	}
	if limit > 0 && len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes for %v, limit %d", ErrTooLarge, len(b), t, limit)
	}
	return b, nil
}

type gen struct {
	defs  map[string]any          // $defs entries by name
	names map[reflect.Type]string // named struct types already given a $defs name
	used  map[string]bool         // $defs names taken

	budget int // schema nodes left
	limit  int
}

func unsupported(t reflect.Type, path string) error {
	if path == "" {
		return fmt.Errorf("%w: %v", ErrUnsupported, t)
	}
	return fmt.Errorf("%w: %v at %s", ErrUnsupported, t, path)
}

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(iface))
}

func nullable(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// schema is t's schema; path names where t sits, for errors.
func (g *gen) schema(t reflect.Type, path string) (map[string]any, error) {
	if g.budget--; g.budget < 0 {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, g.limit)
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}, nil
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		if implements(t, marshalerType) || implements(t, unmarshalerType) {
			return map[string]any{}, nil
		}
		if implements(t, textMarshalerType) {
			return map[string]any{"type": "string"}, nil
		}
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
		if t.Name() == "" {
			return g.body(t, path)
		}
		// Named: written once under $defs, which ends recursion.
		if name, ok := g.names[t]; ok {
			return map[string]any{"$ref": "#/$defs/" + name}, nil
		}
		if len(g.names) >= maxDefs {
			return nil, fmt.Errorf("%w: more than %d named types", ErrTooLarge, maxDefs)
		}
		name := g.defName(t)
		g.names[t] = name
		s, err := g.body(t, path)
		if err != nil {
			return nil, err
		}
		g.defs[name] = s
		return map[string]any{"$ref": "#/$defs/" + name}, nil
	}
	return g.body(t, path)
}

// body is t's schema, without the $defs indirection of named types.
func (g *gen) body(t reflect.Type, path string) (map[string]any, error) {
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return map[string]any{"type": "integer", "minimum": 0}, nil
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}, nil
	case reflect.String:
		return map[string]any{"type": "string"}, nil
	case reflect.Interface:
		return map[string]any{}, nil
	case reflect.Pointer:
		// encoding/json follows pointers to pointers: the innermost
		// element's schema, or null. A cycle of pointer types (type P *P)
		// can only encode as null.
		e := t.Elem()
		seen := map[reflect.Type]bool{t: true}
		for e.Kind() == reflect.Pointer {
			if seen[e] {
				return map[string]any{"type": "null"}, nil
			}
			seen[e] = true
			e = e.Elem()
		}
		s, err := g.schema(e, path)
		if err != nil {
			return nil, err
		}
		if len(s) == 0 {
			return s, nil // {} already allows null
		}
		return nullable(s), nil
	case reflect.Slice:
		e := t.Elem()
		if e.Kind() == reflect.Uint8 && !implements(e, marshalerType) && !implements(e, textMarshalerType) {
			return map[string]any{"type": []any{"string", "null"}, "contentEncoding": "base64"}, nil
		}
		items, err := g.schema(e, path+"[]")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": []any{"array", "null"}, "items": items}, nil
	case reflect.Array:
		items, err := g.schema(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items, "minItems": t.Len(), "maxItems": t.Len()}, nil
	case reflect.Map:
		k := t.Key()
		switch k.Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !implements(k, textMarshalerType) {
				return nil, unsupported(t, path)
			}
		}
		vals, err := g.schema(t.Elem(), path+"{}")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": vals}, nil
	case reflect.Struct:
		return g.object(t, path)
	default: // Chan, Func, Complex64, Complex128, UnsafePointer
		return nil, unsupported(t, path)
	}
}

// defName is a $defs name for t that is free and needs no escaping in a
// JSON pointer or URI fragment.
func (g *gen) defName(t reflect.Type) string {
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, t.String())
	name := base
	for i := 2; g.used[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	g.used[name] = true
	return name
}

// field is one JSON object member of a struct, as encoding/json finds it.
type field struct {
	name     string
	tagged   bool
	index    []int
	typ      reflect.Type
	optional bool // omitempty/omitzero, or under an embedded pointer
	quoted   bool // ",string" on a scalar
}

// fields lists t's JSON members with encoding/json's typeFields rules:
// breadth first through embedded structs, the shallowest name wins, at
// equal depth a tagged one wins, and otherwise the name is dropped.
func fields(t reflect.Type) []field {
	type item struct {
		typ      reflect.Type
		index    []int
		optional bool
	}
	current := []item{}
	next := []item{{typ: t}}
	visited := map[reflect.Type]bool{}
	var out []field
	for len(next) > 0 {
		current, next = next, current[:0]
		count := map[string]int{}
		var level []field
		for _, it := range current {
			if visited[it.typ] {
				continue
			}
			visited[it.typ] = true
			for i := range it.typ.NumField() {
				sf := it.typ.Field(i)
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validName(name) {
					name = ""
				}
				index := append(slices.Clone(it.index), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := field{name: name, tagged: name != "", index: index, typ: sf.Type, optional: it.optional}
					if f.name == "" {
						f.name = sf.Name
					}
					for o := range strings.SplitSeq(opts, ",") {
						switch o {
						case "omitempty", "omitzero":
							f.optional = true
						case "string":
							switch sf.Type.Kind() {
							case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
								reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
								reflect.Float32, reflect.Float64, reflect.String:
								f.quoted = true
							}
						}
					}
					level = append(level, f)
					count[f.name]++
					continue
				}
				next = append(next, item{typ: ft, index: index, optional: it.optional || sf.Type.Kind() == reflect.Pointer})
			}
		}
		taken := map[string]bool{}
		for _, f := range out {
			taken[f.name] = true
		}
		for _, f := range level {
			if taken[f.name] {
				continue // a shallower field hides it
			}
			if count[f.name] > 1 {
				// Ties at one depth: a single tagged one wins, else none.
				var tagged []field
				for _, o := range level {
					if o.name == f.name && o.tagged {
						tagged = append(tagged, o)
					}
				}
				taken[f.name] = true
				if len(tagged) == 1 {
					out = append(out, tagged[0])
				} else {
					// Dropped, and hides deeper ones too.
					out = append(out, field{name: f.name, index: nil})
				}
				continue
			}
			out = append(out, f)
			taken[f.name] = true
		}
	}
	kept := out[:0]
	for _, f := range out {
		if f.index != nil {
			kept = append(kept, f)
		}
	}
	slices.SortFunc(kept, func(a, b field) int { return slices.Compare(a.index, b.index) })
	return kept
}

// validName is encoding/json's isValidTag.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// object is the schema of struct t's members.
func (g *gen) object(t reflect.Type, path string) (map[string]any, error) {
	props := map[string]any{}
	required := []any{}
	for _, f := range fields(t) {
		var s map[string]any
		if f.quoted {
			s = map[string]any{"type": "string"}
		} else {
			var err error
			if s, err = g.schema(f.typ, path+"."+f.name); err != nil {
				return nil, err
			}
		}
		props[f.name] = s
		if !f.optional {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

package jsonschema_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/jsonschema"
)

// typeFrom builds a Go type from a byte program: leaves, then wrappers
// (pointer, slice, array, map, struct of the last types, embedded ones).
func typeFrom(prog []byte) reflect.Type {
	leaves := []reflect.Type{
		reflect.TypeFor[int](), reflect.TypeFor[string](), reflect.TypeFor[[]byte](), reflect.TypeFor[chan int](),
		reflect.TypeFor[func()](), reflect.TypeFor[any](), reflect.TypeFor[time.Time](), reflect.TypeFor[json.RawMessage](),
		reflect.TypeFor[complex64](), reflect.TypeFor[Node](), reflect.TypeFor[SelfMap](), reflect.TypeFor[Mixed](),
		reflect.TypeFor[Text](), reflect.TypeFor[map[bool]int](), reflect.TypeFor[Base](), reflect.TypeFor[uint8](),
	}
	stack := []reflect.Type{reflect.TypeFor[bool]()}
	top := func(i int) reflect.Type { return stack[max(0, len(stack)-1-i)] }
	for i, op := range prog {
		if i >= 64 || len(stack) > 64 {
			break
		}
		var t reflect.Type
		switch op % 8 {
		case 0, 1:
			t = leaves[int(op/8)%len(leaves)]
		case 2:
			t = reflect.PointerTo(top(0))
		case 3:
			t = reflect.SliceOf(top(0))
		case 4:
			if top(0).Size() > 1<<16 {
				t = reflect.SliceOf(top(0)) // keep arrays buildable
			} else {
				t = reflect.ArrayOf(int(op/8)%3, top(0))
			}
		case 5:
			t = reflect.MapOf(reflect.TypeFor[string](), top(0))
		case 6, 7:
			n := 1 + int(op/8)%3
			var fs []reflect.StructField
			names := map[string]bool{}
			for j := range n {
				ft := top(j)
				f := reflect.StructField{Name: "F" + strconv.Itoa(j), Type: ft}
				switch (int(op) / 32) % 4 {
				case 1:
					f.Tag = `json:"x,omitempty"`
				case 2:
					f.Tag = `json:",string"`
				case 3:
					// Only method-free types: reflect.StructOf does not
					// support promoted methods (encoding/json crashes on them).
					if ft.Kind() == reflect.Struct && ft.Name() != "" && reflect.PointerTo(ft).NumMethod() == 0 {
						f.Name, f.Anonymous = ft.Name(), true
					}
				}
				if names[f.Name] {
					f.Name, f.Anonymous = "G"+strconv.Itoa(j), false
				}
				names[f.Name] = true
				fs = append(fs, f)
			}
			long := 0
			for _, f := range fs {
				long += len(f.Type.String())
			}
			if long > 2000 {
				t = top(0) // reflect limits type names
			} else {
				t = reflect.StructOf(fs)
			}
		}
		stack = append(stack, t)
	}
	return top(0)
}

// Generation never panics: it gives valid JSON or one of its errors, and
// an error exactly when encoding/json refuses the zero value (types with
// no chan/func/complex reachable from a zero value may still differ, so
// only the no-error direction is checked against json.Marshal).
func FuzzGenerate(f *testing.F) {
	for _, s := range []string{"", "\x00", "\x02\x03\x06", "\x08\x16\x05\x1e", "\x18\x06\x0e\x26\x46\x86\xc6", "\x48\x50\x07\x2f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		typ := typeFrom(prog)
		b, err := jsonschema.Generate(typ, 1<<20)
		if err != nil {
			if !errors.Is(err, jsonschema.ErrUnsupported) && !errors.Is(err, jsonschema.ErrTooLarge) {
				t.Fatalf("Generate(%v): %v", typ, err)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Generate(%v): invalid JSON %s", typ, b)
		}
		if typ.Size() > 1<<16 {
			return // nested arrays: too big a zero value to build
		}
		if _, err := json.Marshal(reflect.New(typ).Elem().Interface()); err != nil {
			t.Fatalf("Generate(%v) gave a schema but json.Marshal of the zero value fails: %v", typ, err)
		}
	})
}

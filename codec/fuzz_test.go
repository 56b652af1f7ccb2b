package codec_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/colugo-go/colugo/codec"
)

// FuzzJSONUnmarshal checks that no input makes JSON.Unmarshal panic, and
// that a decoded value re-encodes stably: encode(decode(encode(v))) ==
// encode(v). (Comparing values would trip over [] versus nil slices, which
// omitempty folds together.)
func FuzzJSONUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"X":1,"Y":-2.5,"Theta":3.14,"Frame":"map"}`,
		`{"Frame":"🤖","Tags":["a","b"],"Meta":{"k":1},"Next":{"X":2,"Next":null}}`,
		`{}`, `null`, `[]`, `{"X":"1"}`, `{"x":1e400}`, `{"Frame":"\ud800"}`,
		"{\"Frame\":\"\xff\"}", `{"Tags":[]}`, `{"Next":{"Next":{"Next":{}}}}`, `{"X":1}trailing`,
	} {
		f.Add([]byte(s))
	}
	c := codec.JSON{}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p pose
		if err := c.Unmarshal(data, &p); err != nil {
			return
		}
		once, err := c.Marshal(p)
		if err != nil {
			t.Fatalf("re-marshal of a decoded value: %v", err)
		}
		var q pose
		if err := c.Unmarshal(once, &q); err != nil {
			t.Fatalf("decode of re-marshalled %s: %v", once, err)
		}
		twice, err := c.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("unstable round trip:\n%s\n%s", once, twice)
		}
	})
}

// FuzzRawRoundTrip checks that any bytes pass through Raw unchanged in both
// the []byte and the string forms, and that decoded values never alias the
// frame.
func FuzzRawRoundTrip(f *testing.F) {
	for _, s := range []string{"", "\x00", "hello", "\xff\xfe\x00\x80", "🤖 robot/pose"} {
		f.Add([]byte(s))
	}
	c := codec.Raw{}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := bytes.Clone(data)
		for _, v := range []any{data, string(data), &data} {
			enc, err := c.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, want) {
				t.Fatalf("Marshal(%T) = %x, want %x", v, enc, want)
			}
		}
		frame := bytes.Clone(data)
		var b []byte
		var s string
		if err := c.Unmarshal(frame, &b); err != nil {
			t.Fatal(err)
		}
		if err := c.Unmarshal(frame, &s); err != nil {
			t.Fatal(err)
		}
		for i := range frame {
			frame[i] ^= 0xff
		}
		if !bytes.Equal(b, want) || s != string(want) {
			t.Fatalf("Unmarshal: got %x and %q, want %x", b, s, want)
		}
	})
}

// FuzzJSONDifferential checks codec.JSON against encoding/json on any
// input: both accept it or both refuse it, decode it to the same value, and
// encode that value to the same bytes.
func FuzzJSONDifferential(f *testing.F) {
	for _, s := range unmarshalInputs {
		if len(s) < 1000 {
			f.Add([]byte(s))
		}
	}
	f.Add([]byte(`{"X":1,"Y":-2.5,"Theta":3.14,"Frame":"map","Tags":["<a>"],"Meta":{"b":1,"a":2},"Next":{"X":2}}`))
	f.Add([]byte(`{"renamed":1,"AsString":"5","bytes":"AAE=","nested":{"a":1},"map":{"z":{},"a":{}},"int_map":{"3":"x"},"E1":2}`))
	c := codec.JSON{}
	targets := []func() any{
		func() any { return new(any) }, func() any { return new(pose) }, func() any { return new(tagged) },
		func() any { return new(tree) }, func() any { return new(withAny) }, func() any { return new(map[string][]float32) },
		func() any { return new([]*inner) }, func() any { return new(string) }, func() any { return new(int16) },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range targets {
			want, got := mk(), mk()
			wantErr := json.Unmarshal(data, want)
			gotErr := c.Unmarshal(bytes.Clone(data), got)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("%q into %T: encoding/json error %v, codec.JSON error %v", data, want, wantErr, gotErr)
			}
			if wantErr != nil {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q into %T:\ncodec.JSON    %#v\nencoding/json %#v", data, want, got, want)
			}
			v := reflect.ValueOf(got).Elem().Interface()
			wantOut, wantErr := json.Marshal(v)
			gotOut, gotErr := c.Marshal(v)
			if (wantErr == nil) != (gotErr == nil) || !bytes.Equal(gotOut, wantOut) {
				t.Fatalf("encoding %#v:\ncodec.JSON    %s %v\nencoding/json %s %v", v, gotOut, gotErr, wantOut, wantErr)
			}
		}
	})
}

package codec_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"sync"
	"testing"

	"github.com/colugo-go/colugo/codec"
)

type pose struct {
	X, Y, Theta float64
	Frame       string
	Tags        []string       `json:",omitempty"`
	Meta        map[string]int `json:",omitempty"`
	Next        *pose          `json:",omitempty"`
}

func TestNames(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c    codec.Codec
		want string
	}{{codec.JSON{}, "json"}, {codec.Raw{}, "raw"}} {
		if got := tt.c.Name(); got != tt.want {
			t.Errorf("%T.Name() = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	c := codec.JSON{}
	tests := []struct {
		name string
		in   any
		out  func() any // a pointer to decode into
	}{
		{"struct", pose{X: 1, Y: -2.5, Theta: math.Pi, Frame: "map"}, func() any { return new(pose) }},
		{"nested", pose{Frame: "a", Tags: []string{"x", "y"}, Meta: map[string]int{"k": 1}, Next: &pose{X: 2}}, func() any { return new(pose) }},
		{"zero", pose{}, func() any { return new(pose) }},
		{"pointer", &pose{X: 3, Frame: "✓ utf-8 🤖"}, func() any { return new(*pose) }},
		{"string", "hello\x00world", func() any { return new(string) }},
		{"int64", int64(math.MaxInt64), func() any { return new(int64) }},
		{"bytes", []byte{0, 1, 2, 0xff}, func() any { return new([]byte) }},
		{"map", map[string]float64{"a": 1}, func() any { return new(map[string]float64) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := c.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			out := tt.out()
			if err := c.Unmarshal(data, out); err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(out).Elem().Interface(); !reflect.DeepEqual(got, tt.in) {
				t.Fatalf("round trip: got %#v, want %#v", got, tt.in)
			}
		})
	}
}

func TestJSONErrors(t *testing.T) {
	t.Parallel()
	c := codec.JSON{}
	unsupported := []struct {
		name string
		v    any
	}{
		{"chan", make(chan int)},
		{"func", func() {}},
		{"complex", complex(1, 2)},
		{"struct with chan", struct{ C chan int }{make(chan int)}},
	}
	for _, tt := range unsupported {
		t.Run("Marshal/"+tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := c.Marshal(tt.v); !errors.Is(err, codec.ErrUnsupportedType) {
				t.Fatalf("Marshal(%T) error = %v, want ErrUnsupportedType", tt.v, err)
			}
		})
	}
	into := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"non-pointer", pose{}},
		{"nil pointer", (*pose)(nil)},
	}
	for _, tt := range into {
		t.Run("Unmarshal/"+tt.name, func(t *testing.T) {
			t.Parallel()
			if err := c.Unmarshal([]byte(`{}`), tt.v); !errors.Is(err, codec.ErrUnsupportedType) {
				t.Fatalf("Unmarshal into %T error = %v, want ErrUnsupportedType", tt.v, err)
			}
		})
	}
	// Bad data is a decode error, not an unsupported type.
	for _, data := range []string{``, `{`, `{"X":"one"}`, `[1,2]`, "\xff", `{"X":1}x`} {
		var p pose
		err := c.Unmarshal([]byte(data), &p)
		if err == nil || errors.Is(err, codec.ErrUnsupportedType) {
			t.Errorf("Unmarshal(%q) error = %v, want a decode error", data, err)
		}
	}
	// A value JSON cannot represent is a value error.
	if _, err := c.Marshal(math.NaN()); err == nil || errors.Is(err, codec.ErrUnsupportedType) {
		t.Errorf("Marshal(NaN) error = %v, want a value error", err)
	}
}

func TestRawRoundTrip(t *testing.T) {
	t.Parallel()
	c := codec.Raw{}
	payloads := [][]byte{nil, {}, {0}, []byte("hello"), {0xff, 0xfe, 0x00, 0x80}, bytes.Repeat([]byte{0xab}, 1<<16)}
	for _, p := range payloads {
		data, err := c.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var b []byte
		if err := c.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, p) {
			t.Fatalf("[]byte round trip: got %x, want %x", b, p)
		}
		var s string
		if err := c.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		if s != string(p) {
			t.Fatalf("string round trip: got %q, want %q", s, p)
		}
		// Pointer and string forms marshal to the same bytes.
		for _, v := range []any{&p, string(p), &s} {
			got, err := c.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, p) {
				t.Fatalf("Marshal(%T) = %x, want %x", v, got, p)
			}
		}
	}
}

func TestRawMarshalDoesNotCopy(t *testing.T) {
	t.Parallel()
	in := []byte("abc")
	out, err := codec.Raw{}.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &in[0] {
		t.Fatal("Raw.Marshal copied a []byte; it is documented to alias")
	}
}

func TestRawUnmarshalCopies(t *testing.T) {
	t.Parallel()
	c := codec.Raw{}
	data := []byte("payload")
	var b []byte
	var s string
	if err := c.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	if err := c.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'X' // the transport reuses its buffer
	}
	if string(b) != "payload" || s != "payload" {
		t.Fatalf("received values alias the frame: %q %q", b, s)
	}
	// Two receivers of one frame do not share memory either.
	var b2 []byte
	if err := c.Unmarshal(data, &b2); err != nil {
		t.Fatal(err)
	}
	var b3 []byte
	if err := c.Unmarshal(data, &b3); err != nil {
		t.Fatal(err)
	}
	b2[0] = 'Y'
	if b3[0] != 'X' {
		t.Fatal("two Unmarshals of one frame share memory")
	}
}

func TestRawUnsupported(t *testing.T) {
	t.Parallel()
	c := codec.Raw{}
	type blob []byte
	marshal := []any{nil, 42, pose{}, &pose{}, blob("x"), []int{1}, (*[]byte)(nil), (*string)(nil), new(*string)}
	for _, v := range marshal {
		if _, err := c.Marshal(v); !errors.Is(err, codec.ErrUnsupportedType) {
			t.Errorf("Marshal(%T) error = %v, want ErrUnsupportedType", v, err)
		}
	}
	unmarshal := []any{nil, []byte{}, "", new(int), new(blob), new(pose), (*[]byte)(nil), (*string)(nil)}
	for _, v := range unmarshal {
		if err := c.Unmarshal([]byte("x"), v); !errors.Is(err, codec.ErrUnsupportedType) {
			t.Errorf("Unmarshal into %T error = %v, want ErrUnsupportedType", v, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	var jc codec.JSON
	var rc codec.Raw
	shared := []byte("shared frame") // one frame many subscribers decode
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				in := pose{X: float64(g), Y: float64(i), Frame: "f"}
				data, err := jc.Marshal(in)
				if err != nil {
					t.Error(err)
					return
				}
				var out pose
				if err := jc.Unmarshal(data, &out); err != nil || !reflect.DeepEqual(in, out) {
					t.Errorf("json: got %v, %v; want %v", out, err, in)
					return
				}
				var b []byte
				if err := rc.Unmarshal(shared, &b); err != nil || string(b) != "shared frame" {
					t.Errorf("raw: got %q, %v", b, err)
					return
				}
				b[0] = byte(g) // each goroutine owns its copy
			}
		})
	}
	wg.Wait()
}

package codec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo/codec"
)

// codec.JSON must be encoding/json as users see it: the same bytes out, and
// the same inputs accepted and decoded to the same values. These tests
// compare the two over many types and inputs.

type inner struct {
	A int    `json:"a"`
	B string `json:"b,omitempty"`
}

type Embedded struct {
	E1 int
	E2 string `json:"e2"`
}

type Conflict struct {
	E1 int // conflicts with Embedded.E1 at the same depth: neither is encoded
}

type tagged struct {
	Renamed   int            `json:"renamed"`
	Omit      string         `json:",omitempty"`
	OmitPtr   *int           `json:",omitempty"`
	OmitSlice []int          `json:",omitempty"`
	OmitMap   map[string]int `json:",omitempty"`
	Skip      int            `json:"-"`
	//lint:ignore SA5008 a field named "-" is deliberate
	Dash      int               `json:"-,"`
	AsString  int64             `json:",string"`
	FloatStr  float64           `json:"fs,string"`
	BoolStr   bool              `json:",string,omitempty"`
	HTML      string            `json:"<html>&"`
	Unicode   string            `json:"ünï"`
	Bytes     []byte            `json:"bytes"`
	Array     [3]uint8          `json:"array"`
	Nested    inner             `json:"nested"`
	PtrNested *inner            `json:"ptr_nested"`
	Map       map[string]inner  `json:"map"`
	IntMap    map[int]string    `json:"int_map"`
	UintMap   map[uint8]bool    `json:"uint_map"`
	Raw       json.RawMessage   `json:"raw"`
	Number    json.Number       `json:"number"`
	Time      time.Time         `json:"time"`
	IP        net.IP            `json:"ip"`
	Big       *big.Int          `json:"big"`
	Text      textKey           `json:"text"`
	TextMap   map[textKey]int   `json:"text_map"`
	Custom    custom            `json:"custom"`
	PtrCustom *ptrCustom        `json:"ptr_custom"`
	Slices    [][]float32       `json:"slices"`
	F32       float32           `json:"f32"`
	unexp     int               //nolint:unused // not encoded
	Embedded                    // promoted fields
	*Conflict `json:"conflict"` // tagged: a field of its own
}

type textKey string

func (k textKey) MarshalText() ([]byte, error) { return []byte("k:" + string(k)), nil }

func (k *textKey) UnmarshalText(b []byte) error {
	s, ok := strings.CutPrefix(string(b), "k:")
	if !ok {
		return fmt.Errorf("no k: prefix in %q", b)
	}
	*k = textKey(s)
	return nil
}

type custom struct{ V int }

func (c custom) MarshalJSON() ([]byte, error) { return fmt.Appendf(nil, ` [ %d , "<c>" ] `, c.V), nil }

func (c *custom) UnmarshalJSON(b []byte) error {
	var a []any
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 2 {
		return errors.New("want two elements")
	}
	f, _ := a[0].(float64)
	c.V = int(f)
	return nil
}

type ptrCustom struct{ V string }

func (c *ptrCustom) MarshalJSON() ([]byte, error) { return json.Marshal("p:" + c.V) }

type badMarshaler struct{}

func (badMarshaler) MarshalJSON() ([]byte, error) { return []byte(`{bad`), nil }

type failMarshaler struct{}

func (failMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("nope") }

type withOmitZero struct {
	T time.Time `json:",omitzero"`
	N int       `json:"n,omitzero"`
}

type tree struct {
	Name string
	Kids []tree `json:",omitempty"`
}

// plain has no methods: only its fields' types decide which library
// decodes it.
type plain struct {
	N json.Number
	I int
	U uint
}

type plainArray struct{ A [2]int }

// rmap and rslice can hold themselves.
type (
	rmap   map[string]rmap
	rslice []rslice
)

// cyclic values can be cyclic.
type cyclic struct {
	Name string
	Next *cyclic
}

type withAny struct {
	V any
	M map[string]any
}

func fullTagged() tagged {
	seven := 7
	return tagged{
		Renamed: 1, Omit: "o", OmitPtr: &seven, OmitSlice: []int{1}, OmitMap: map[string]int{"z": 1, "a": 2},
		Skip: 9, Dash: 3, AsString: -42, FloatStr: 2.5, BoolStr: true,
		HTML: "<script>&amp;'\"\u2028\u2029\x00\x1f\x7f", Unicode: "ünï ✓ 🤖 \xff\xfe bad utf-8",
		Bytes: []byte{0, 1, 2, 0xff}, Array: [3]uint8{1, 2, 3},
		Nested: inner{A: 1, B: "b"}, PtrNested: &inner{A: 2},
		Map:    map[string]inner{"b": {A: 1}, "a": {A: 2}, "<": {}, "é": {}, "": {}},
		IntMap: map[int]string{10: "ten", -1: "minus", 2: "two"}, UintMap: map[uint8]bool{200: true, 3: false},
		Raw: json.RawMessage(` { "x" : [1, 2] } `), Number: "1.5e3",
		Time: time.Date(2026, 12, 2, 6, 33, 49, 123456789, time.FixedZone("x", 3600)),
		IP:   net.IPv4(192, 0, 2, 1), Big: big.NewInt(math.MaxInt64),
		Text: "t", TextMap: map[textKey]int{"b": 1, "a": 2},
		Custom: custom{V: 5}, PtrCustom: &ptrCustom{V: "x"},
		Slices: [][]float32{{1.5, -0}, nil, {}}, F32: 0.1, unexp: 1,
		Embedded: Embedded{E1: 4, E2: "e"}, Conflict: &Conflict{E1: 8},
	}
}

// marshalCases are values of many types; each must encode to encoding/json's
// bytes, or fail where it fails.
func marshalCases() []any {
	floats := []any{}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789.125,
		math.MaxFloat64, math.SmallestNonzeroFloat64, math.Pi, 5e-324, 1 << 53, 1<<53 + 1} {
		floats = append(floats, f, float32(f))
	}
	self := map[string]any{}
	self["self"] = self
	loop := &tree{Name: "x"}
	ring := &cyclic{Name: "ring"}
	ring.Next = ring
	selfMap := rmap{}
	selfMap["m"] = selfMap
	selfSlice := rslice{nil}
	selfSlice[0] = selfSlice
	var nilMap map[string]int
	var nilSlice []string
	var nilPtr *inner
	cases := []any{
		nil, true, false, 0, -1, int8(-128), int16(math.MaxInt16), int32(math.MinInt32), int64(math.MinInt64),
		uint(math.MaxUint), uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(math.MaxUint64), uintptr(7),
		"", "plain", "<>&", "\u2028\u2029", "\x00\x01\t\n\r\"\\/", "\xff", "a\xc3", "\xed\xa0\x80", "🤖", strings.Repeat("x", 5000),
		[]byte(nil), []byte{}, []byte("hello world, base64"), [0]int{}, [2]bool{true},
		nilMap, map[string]int{}, map[string]int{"b": 2, "a": 1, "A": 0, "aa": 3, "\u00e9": 4, "<": 5},
		map[int64]int{-5: 1, 5: 2, 10: 3}, map[uint]string{1: "a", 10: "b", 2: "c"},
		nilSlice, []string{}, []string{"a", "<b>"}, nilPtr, &inner{}, inner{}, inner{A: 1, B: "x"},
		tagged{}, fullTagged(), &[]tagged{fullTagged(), {}},
		struct{}{}, struct{ A, b int }{1, 2}, struct {
			X *struct{ Y []map[string][]*int }
		}{},
		withOmitZero{}, withOmitZero{N: 1},
		tree{Name: "root", Kids: []tree{{Name: "a"}, {Name: "b", Kids: []tree{{Name: "c"}}}}},
		withAny{V: []any{1, "x", nil, map[string]any{"k": 1.5}}, M: map[string]any{"b": true, "a": nil}},
		[]any{1, 2.5, "s", nil, true}, any(map[string]any{"x": fullTagged()}),
		json.RawMessage(`{"a" : 1}`), json.RawMessage(`{bad`), json.Number("12"), json.Number("x"),
		badMarshaler{}, failMarshaler{}, []failMarshaler{{}}, custom{V: -1}, &ptrCustom{V: "<>"}, ptrCustom{V: "value"},
		textKey("<t>"), map[textKey]string{"z": "1", "a": "2"},
		time.Time{}, time.Unix(1e9, 0).UTC(), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		math.NaN(), math.Inf(1), float32(math.Inf(-1)), []float64{1, math.NaN()},
		make(chan int), func() {}, complex(1, 2), struct{ C chan int }{}, map[[2]int]int{{1, 2}: 3}, map[bool]int{true: 1},
		self, loop, ring, &cyclic{Next: &cyclic{}}, plain{}, plain{N: "1", I: -1, U: 1},
		plainArray{A: [2]int{1, 2}}, selfMap, selfSlice, rmap{"a": {"b": nil}}, rslice{{}, nil},
	}
	loop.Kids = []tree{*loop} // a copy: not a cycle
	return append(cases, floats...)
}

func TestJSONMarshalMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for i, v := range marshalCases() {
		want, wantErr := json.Marshal(v)
		got, gotErr := codec.JSON{}.Marshal(v)
		if (wantErr == nil) != (gotErr == nil) {
			t.Errorf("case %d (%T): encoding/json error %v, codec.JSON error %v", i, v, wantErr, gotErr)
			continue
		}
		if wantErr != nil {
			var ute *json.UnsupportedTypeError
			if errors.As(wantErr, &ute) != errors.Is(gotErr, codec.ErrUnsupportedType) {
				t.Errorf("case %d (%T): encoding/json error %v, codec.JSON error %v: ErrUnsupportedType differs", i, v, wantErr, gotErr)
			}
			if errors.As(wantErr, &ute) && !errors.As(gotErr, &ute) {
				t.Errorf("case %d (%T): codec.JSON error %v does not wrap *json.UnsupportedTypeError", i, v, gotErr)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("case %d (%T):\ncodec.JSON    %s\nencoding/json %s", i, v, got, want)
		}
	}
}

// unmarshalInputs are JSON texts, good and bad, decoded into each of
// unmarshalTargets.
var unmarshalInputs = []string{
	``, ` `, `null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `01`, `1.`, `.5`, `1e3`, `1E+3`, `1e-400`, `1e400`, `-`,
	`9223372036854775807`, `9223372036854775808`, `-9223372036854775809`, `18446744073709551616`, `255`, `256`, `-129`, `3.0`, `3.5`,
	`""`, `"x"`, `"\u00e9\ud83e\udd16"`, `"\ud800"`, `"\udc00x"`, "\"\xff\"", `"\x"`, `"a` + "\n" + `"`, `"\/\b\f\n\r\t\""`,
	`"AQID"`, `"AQI"`, `"****"`, `"2026-12-02T06:33:49Z"`, `"2026-13-02T06:33:49Z"`, `"k:v"`, `"v"`,
	`[]`, `[1,2,3]`, `[1,2,]`, `[1 2]`, `[`, `]`, `[null]`, `["a",1]`, `[[1.5,2],[],null]`, `[1,2,3,4]`,
	`{}`, `{"a":1}`, `{"A":1,"a":2}`, `{"a":1,"a":2}`, `{"a":"1"}`, `{"renamed":5,"RENAMED":6}`, `{"Renamed":1}`,
	`{"AsString":"12"}`, `{"AsString":12}`, `{"AsString":"x"}`, `{"fs":"2.5"}`, `{"BoolStr":"true"}`, `{"BoolStr":"yes"}`,
	`{"bytes":"AAEC/w=="}`, `{"bytes":[1,2]}`, `{"array":[1,2,3,4]}`, `{"array":[1]}`, `{"nested":{"a":1,"b":"x","c":3}}`,
	`{"ptr_nested":null}`, `{"ptr_nested":{"a":2}}`, `{"map":{"k":{"a":1}}}`, `{"int_map":{"10":"x","-1":"y"}}`, `{"int_map":{"x":"y"}}`,
	`{"uint_map":{"300":true}}`, `{"raw":{"x" : [1]}}`, `{"number":1.5e3}`, `{"number":"1"}`, `{"time":"2026-12-02T06:33:49.123+01:00"}`,
	`{"time":"yesterday"}`, `{"ip":"192.0.2.1"}`, `{"ip":"nope"}`, `{"big":123456789012345678901234567890}`, `{"text":"k:x"}`, `{"text":"x"}`,
	`{"text_map":{"k:a":1}}`, `{"text_map":{"a":1}}`, `{"custom":[5,"x"]}`, `{"custom":[5]}`, `{"custom":{}}`,
	`{"E1":4,"e2":"e","conflict":{"E1":8}}`, `{"-":1,"Skip":2}`, `{"unexp":1}`, `{"ünï":"u","<html>&":"h"}`, `{"f32":1e39}`, `{"f32":3.4e38}`,
	`{"slices":[[1,2],[3]]}`, `{"Name":"r","Kids":[{"Name":"k","Kids":[]}]}`, `{"V":[1,{"a":null}],"M":{"x":[]}}`,
	`{"a":1}x`, `{"a":1} `, ` {"a":1}`, `{"a":1}{}`, `{"a" 1}`, `{a:1}`, `{"a":1,}`, `{"a":}`, `{"a":1`, `{"a":[1,{"b":2}]}`,
	`{"X":1,"Y":-2.5,"Theta":3.14,"Frame":"map"}`, `{"x":1,"frame":"case-folded"}`, `{"Frame":null}`, `{"Tags":["a",null]}`,
	`{"N":"1"}`, `{"N":1}`, `{"N":"x"}`, `{"A":[1]}`, `{"A":[1,2,3]}`, `{"I":1e3}`, `{"U":-1}`, `{"Name":"a","Next":{"Next":null}}`,
	`{"Meta":{"k":1.5}}`, `{"Next":{"Next":{"X":1}}}`, `{"X":"1"}`, `{"Tags":"a"}`, "\t\n {\"X\" : 1 } \r\n", "{\"X\":1}\x00",
	strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40), strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001),
	`{"Next":` + strings.Repeat(`{"Next":`, 40) + `null` + strings.Repeat(`}`, 41), `[` + strings.Repeat(`"[",`, 50) + `1]`,
}

// unmarshalTargets make fresh pointers to decode into.
var unmarshalTargets = []func() any{
	func() any { return new(any) }, func() any { return new(bool) }, func() any { return new(int) }, func() any { return new(int8) },
	func() any { return new(uint8) }, func() any { return new(uint) }, func() any { return new(uintptr) }, func() any { return new(int64) }, func() any { return new(uint64) }, func() any { return new(float32) },
	func() any { return new(float64) }, func() any { return new(string) }, func() any { return new([]byte) }, func() any { return new([]int) }, func() any { return new(map[uint]int) },
	func() any { return new([2]int) }, func() any { return new(map[string]any) }, func() any { return new(map[string]int) },
	func() any { return new(map[int]string) }, func() any { return new(*int) }, func() any { return new(json.RawMessage) },
	func() any { return new(json.Number) }, func() any { return new(time.Time) }, func() any { return new(inner) },
	func() any { return new(tagged) }, func() any { return new(pose) }, func() any { return new(tree) }, func() any { return new(withAny) },
	func() any { return new([]any) }, func() any { return new(custom) }, func() any { return new(textKey) }, func() any { return new(struct{}) },
	func() any { return new(plain) }, func() any { return new(plainArray) }, func() any { return new(cyclic) },
	func() any { return new(rmap) }, func() any { return new(rslice) },
}

func TestJSONUnmarshalMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range unmarshalInputs {
		for _, mk := range unmarshalTargets {
			want, got := mk(), mk()
			wantErr := json.Unmarshal([]byte(in), want)
			data := []byte(in)
			gotErr := codec.JSON{}.Unmarshal(data, got)
			if (wantErr == nil) != (gotErr == nil) {
				t.Errorf("%.60q into %T: encoding/json error %v, codec.JSON error %v", in, want, wantErr, gotErr)
				continue
			}
			if wantErr != nil {
				continue // both refuse; colugo drops the message, whatever either left in the value
			}
			for i := range data {
				data[i] = 'X' // decoded values must not alias the input
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%.60q into %T:\ncodec.JSON    %#v\nencoding/json %#v", in, want, got, want)
			}
		}
	}
}

// TestJSONUnmarshalBadTargets checks the targets encoding/json refuses.
func TestJSONUnmarshalBadTargets(t *testing.T) {
	t.Parallel()
	for _, v := range []any{nil, 1, inner{}, (*inner)(nil), map[string]int{}} {
		for _, in := range []string{`{}`, `1`, `{bad`} {
			wantErr := json.Unmarshal([]byte(in), v)
			gotErr := codec.JSON{}.Unmarshal([]byte(in), v)
			var iue *json.InvalidUnmarshalError
			if wantInvalid := errors.As(wantErr, &iue); wantInvalid != errors.Is(gotErr, codec.ErrUnsupportedType) || (wantErr == nil) != (gotErr == nil) {
				t.Errorf("%q into %T: encoding/json error %v, codec.JSON error %v", in, v, wantErr, gotErr)
			}
		}
	}
}

// TestJSONDeepInput checks that hostile nesting costs time linear in the
// input: the fast library rescans a nested value once per level when
// decoding into an interface, so 20000 levels would take tens of seconds
// there. Decoded with encoding/json they take milliseconds (its limit of
// 10000 levels refuses them) and the test's own time bound catches a
// regression.
func TestJSONDeepInput(t *testing.T) {
	t.Parallel()
	const n = 20000
	for _, in := range [][]byte{
		append(bytes.Repeat([]byte("["), n), bytes.Repeat([]byte("]"), n)...),
		append(bytes.Repeat([]byte(`{"a":`), n), bytes.Repeat([]byte("}"), n)...),
	} {
		start := time.Now()
		var v any
		err := codec.JSON{}.Unmarshal(in, &v)
		if err == nil {
			t.Errorf("%d levels decoded; encoding/json refuses more than 10000", n)
		}
		// Generous for a loaded machine; the quadratic path takes 100x more.
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("%d levels took %v", n, el)
		}
	}
}

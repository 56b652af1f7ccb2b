package codec_test

import (
	"encoding/json"
	"testing"

	"github.com/colugo-go/colugo/codec"
)

// pose64 encodes to 65 bytes of JSON: the root benchmarks' message.
type pose64 struct {
	X, Y, Z float64
	Seq     uint64
	Frame   string
}

var benchPose = pose64{X: 12.5, Y: -3.75, Z: 0.0625, Seq: 1_000_000, Frame: "base_link"}

func BenchmarkJSONMarshal64(b *testing.B) {
	var c codec.Codec = codec.JSON{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Marshal(benchPose); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONUnmarshal64(b *testing.B) {
	var c codec.Codec = codec.JSON{}
	data, err := c.Marshal(benchPose)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var p pose64
	for b.Loop() {
		p = pose64{}
		if err := c.Unmarshal(data, &p); err != nil {
			b.Fatal(err)
		}
	}
	if p != benchPose {
		b.Fatalf("decoded %+v", p)
	}
}

// The same with encoding/json directly, for a same-run comparison.

func BenchmarkStdJSONMarshal64(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(benchPose); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStdJSONUnmarshal64(b *testing.B) {
	data, err := json.Marshal(benchPose)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var p pose64
	for b.Loop() {
		p = pose64{}
		if err := json.Unmarshal(data, &p); err != nil {
			b.Fatal(err)
		}
	}
}

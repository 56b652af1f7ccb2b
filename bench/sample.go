package bench

// Sample is the struct of the JSON workloads: a typical small telemetry
// value, which encoding/json (and colugo's default codec) encodes to
// about 64 bytes: {"seq":123456,"stamp":0,"pub":0,"flags":0,"name":"p7","value":21.5}
// is 67 (the harness's send stamp, on one message in 16, adds about 10).
type Sample struct {
	Seq   uint64  `json:"seq"`
	Stamp int64   `json:"stamp"` // the harness's send stamp (0: not sampled)
	Pub   uint8   `json:"pub"`   // the publisher's index
	Flags uint8   `json:"flags"` // flagWarm
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// sampleOf carries the harness header of payload p (stamp, publisher,
// flags) in a Sample.
func sampleOf(p []byte, seq uint64) Sample {
	return Sample{Seq: seq, Stamp: stampOf(p), Pub: p[8], Flags: p[9], Name: "p7", Value: 21.5}
}

// payload writes s's harness header into buf (at least 10 bytes) and
// returns buf.
func (s Sample) payload(buf []byte) []byte {
	stamp(buf, s.Stamp, int(s.Pub), s.Flags)
	return buf
}

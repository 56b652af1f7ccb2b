package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/integration/internal/seedpb"
	"github.com/colugo-go/colugo/internal/testwait"
)

// The seed's protobuf examples (pub_proto.py, sub_proto.py) import
// examples.proto.test_pb2, which the seed's Bazel build generated: here
// protoc generates it into the temporary copy of the seed, and Debian's
// python3-protobuf runs it. The Go side uses seedpb, generated from the
// same .proto.

// seedProtoFile is the seed's .proto, relative to seed-colugo: also the
// path its Python module and seedpb register.
const seedProtoFile = "examples/proto/test.proto"

// needSeedProto skips t (or fails it when COLUGO_REQUIRE_SEED is set)
// unless protoc and the seed's Python can import google.protobuf.
func needSeedProto(t *testing.T) {
	t.Helper()
	var why []string
	if _, err := exec.LookPath("protoc"); err != nil {
		why = append(why, "protoc (Debian package protobuf-compiler) not found")
	}
	if out, err := exec.Command(seedPython, "-c", "import google.protobuf").CombinedOutput(); err != nil {
		why = append(why, seedPython+" cannot import google.protobuf (Debian package python3-protobuf): "+err.Error()+": "+strings.TrimSpace(string(out)))
	}
	if len(why) == 0 {
		return
	}
	if os.Getenv(envRequireSeed) != "" {
		t.Fatalf("%s is set but the seed's protobuf examples cannot run: %s", envRequireSeed, strings.Join(why, "; "))
	}
	t.Skipf("skipping: the seed's protobuf examples cannot run here (set %s=1 to make this a failure): %s", envRequireSeed, strings.Join(why, "; "))
}

// prepareSeedProto generates the seed's examples/proto/test_pb2.py into
// dir (a prepareSeed copy), and fails t unless seedpb describes the same
// file as protoc does: a .proto changed without regenerating seedpb.
func prepareSeedProto(t *testing.T, dir string) {
	t.Helper()
	root := filepath.Join(dir, "seed-colugo")
	set := filepath.Join(t.TempDir(), "test.protoset")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "protoc", "-I", root, "--python_out="+root, "--descriptor_set_out="+set, seedProtoFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc %s: %v: %s", seedProtoFile, err, out)
	}
	b, err := os.ReadFile(set)
	if err != nil {
		t.Fatal(err)
	}
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &fds); err != nil || len(fds.GetFile()) != 1 {
		t.Fatalf("protoc's descriptor set: %d files, %v", len(fds.GetFile()), err)
	}
	want := protodesc.ToFileDescriptorProto(seedpb.File_examples_proto_test_proto)
	if got := fds.GetFile()[0]; !proto.Equal(got, want) {
		t.Fatalf("seedpb does not match %s (go generate ./integration/internal/seedpb):\nprotoc: %s\nseedpb: %s",
			seedProtoFile, prototext.Format(got), prototext.Format(want))
	}
}

// seedProtoExamples: the seed's pub_proto.py and sub_proto.py (1 Hz) once
// each against typed protobuf Go programs. pub_proto.py's messages decode
// in a Subscribe[*seedpb.TestMessage]; sub_proto.py parses what a
// SeedVisible Publisher[*seedpb.TestMessage] sends while the encoding is
// valid UTF-8, which is all the seed can receive (its sockets decode every
// frame as UTF-8, and sub_proto.py encodes it back): the messages that are
// not are refused and counted on the Go side, never sent, and the seed
// subscriber goes on receiving.
func seedProtoExamples(t *testing.T, dir string, example func(string) *seedProc) {
	needSeedProto(t)
	prepareSeedProto(t, dir)
	codec := colugo.WithCodec(protobuf.Codec{})
	const topic = "proto.pub.topic" // the examples'
	t.Run("pub_proto.py", func(t *testing.T) {
		node := seedCompatNode(t, "go-sub")
		msgs, err := colugo.Subscribe[*seedpb.TestMessage](t.Context(), node, topic, codec)
		if err != nil {
			t.Fatal(err)
		}
		p := example("pub_proto.py")
		next := func() *seedpb.TestMessage {
			t.Helper()
			select {
			case m := <-msgs:
				return m
			case <-time.After(2 * wait):
				t.Fatalf("nothing from pub_proto.py; it printed %q", p.output())
			}
			return nil
		}
		// pub_proto.py counts in value, once a second: two in a row.
		m1, m2 := next(), next()
		for _, m := range []*seedpb.TestMessage{m1, m2} {
			if m.GetMessage() != "This is a message" || m.GetId() != 0 {
				t.Errorf("got %v, want message %q, id 0", m, "This is a message")
			}
		}
		if m2.GetValue() != m1.GetValue()+1 {
			t.Errorf("values %d then %d, want consecutive", m1.GetValue(), m2.GetValue())
		}
		t.Logf("from pub_proto.py: %v; %v", m1, m2)
		p.stop(t)
		checkNoExceptions(t, p)
	})
	t.Run("sub_proto.py", func(t *testing.T) {
		node := seedCompatNode(t, "go-pub")
		pub, err := colugo.NewPublisher[*seedpb.TestMessage](node, topic, codec, colugo.SeedVisible())
		if err != nil {
			t.Fatal(err)
		}
		p := example("sub_proto.py")
		publish := func(m *seedpb.TestMessage) {
			t.Helper()
			if err := pub.Publish(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
		ok := &seedpb.TestMessage{Message: "from Go", Id: 1, Value: 7}
		publishUntil(t, p, `message: "from Go"`, func() { publish(ok) })

		// Value 200 is the varint c8 01: c8 starts a two-byte UTF-8
		// sequence that 01 does not continue.
		bad := &seedpb.TestMessage{Message: "not for the seed", Id: 2, Value: 200}
		if b, err := proto.Marshal(bad); err != nil || utf8.Valid(b) {
			t.Fatalf("%x (%v) should not be UTF-8", b, err)
		}
		const nBad = 10
		before := node.Stats().Seed
		for range nBad {
			publish(bad)
		}
		// The seed subscriber still receives after them.
		publishUntil(t, p, `message: "after"`, func() { publish(&seedpb.TestMessage{Message: "after", Id: 3, Value: 8}) })
		testwait.Until(t, "the refused messages to be counted", func() bool { return node.Stats().Seed.Refused-before.Refused >= nBad })
		after := node.Stats().Seed
		if r := after.Refused - before.Refused; r != nBad {
			t.Errorf("Stats().Seed.Refused went up by %d, want %d (the messages that are not UTF-8)", r, nBad)
		}
		out := p.output()
		for _, l := range []string{"id: 1", "value: 7", `message: "after"`} {
			if !slices.Contains(out, l) {
				t.Errorf("sub_proto.py printed no %q line: %q", l, out)
			}
		}
		for _, l := range out {
			if strings.Contains(l, "not for the seed") || l == "value: 200" {
				t.Errorf("sub_proto.py received a message that is not UTF-8: %q", l)
			}
		}
		t.Logf("sub_proto.py parsed Go's messages; Stats().Seed before the %d refused ones %+v, after %+v", nBad, before, after)
		p.stop(t)
		checkNoExceptions(t, p)
	})
}

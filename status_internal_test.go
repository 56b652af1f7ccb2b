package colugo

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport/inproc"
)

// A status document's value is not in the catalog hash (peers need not
// read $describe again when counters move), its name is.
func TestStatusCatalog(t *testing.T) {
	n, err := NewNode("catalog", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	hash := func() string {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.catalog
	}
	before := hash()
	v := 0
	if err := n.SetStatus("bridge", func() any { return v }); err != nil {
		t.Fatal(err)
	}
	named := hash()
	if named == before {
		t.Fatal("a new status name left the catalog as it was")
	}
	v = 42
	if err := n.SetStatus("bridge", func() any { return v + 1 }); err != nil {
		t.Fatal(err)
	}
	if got := hash(); got != named {
		t.Error("a new status value changed the catalog")
	}
	if got := string(n.statusDocs()["bridge"]); got != "43" {
		t.Errorf("status document %s, want 43", got)
	}
	if err := n.SetStatus("bridge", nil); err != nil {
		t.Fatal(err)
	}
	if got := hash(); got != before {
		t.Error("removing the status did not restore the catalog")
	}
}

// A node without status or relays describes itself as before (no new
// keys), and an older peer's description decodes without them.
func TestDescribeWithoutStatus(t *testing.T) {
	n, err := NewNode("plain", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := NewPublisher[int](n, "t"); err != nil {
		t.Fatal(err)
	}
	b, err := n.describeJSON()
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, `"status"`) || strings.Contains(s, `"relay"`) {
		t.Errorf("new keys in a plain $describe: %s", s)
	}
	// What an older peer decodes: a PeerInfo without the new fields.
	type oldTopic struct {
		Name, Codec, Type string
	}
	type oldPeer struct {
		ID     string     `json:"id"`
		Router string     `json:"router"`
		Topics []oldTopic `json:"topics"`
	}
	if err := n.SetStatus("bridge", func() any { return map[string]int{"drops": 1} }); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPublisher[int](n, "u", WithRelay(Relay{Via: "nats", Remote: "b"})); err != nil {
		t.Fatal(err)
	}
	if b, err = n.describeJSON(); err != nil {
		t.Fatal(err)
	}
	var old oldPeer
	if err := json.Unmarshal(b, &old); err != nil || old.ID == "" || len(old.Topics) != 2 {
		t.Fatalf("an older peer's decoding: %+v %v", old, err)
	}
	info, err := decodeDescription(b)
	if err != nil || string(info.Status["bridge"]) != `{"drops":1}` || info.Topics[1].Relay == nil || info.Topics[1].Relay.Remote != "b" {
		t.Fatalf("decoded: %+v %v", info, err)
	}
}

// A hostile peer's status documents and relays are bounded on decode:
// oversized, null or misnamed documents are dropped, at most 8 kept (the
// first by name), relays with an oversized field or no Via dropped.
func TestDecodeDescriptionStatusBounds(t *testing.T) {
	var docs []string
	for i := range 20 {
		docs = append(docs, fmt.Sprintf(`"d%02d":%d`, i, i))
	}
	big := `"` + strings.Repeat("x", MaxStatusBytes) + `"` // 2 bytes over
	docs = append(docs, `"aa-big":`+big, `"aa-null":null`, `"AA":1`, `"":2`, `"`+strings.Repeat("a", 65)+`":3`)
	long := strings.Repeat("r", maxRelayField+1)
	in := `{"id":"x","router":"tcp://127.0.0.1:1","status":{` + strings.Join(docs, ",") + `},` +
		`"topics":[{"name":"a","relay":{"via":"nats","remote":"` + long + `"}},{"name":"b","relay":{"remote":"x"}},` +
		`{"name":"c","relay":{"via":"nats","remote":"b","name":"s"}}],` +
		`"subscriptions":[{"name":"d","relay":{"via":"` + long + `"}}],"services":[{"name":"e","relay":{"via":"v","name":"` + long + `"}}]}`
	info, err := decodeDescription([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Status) != maxStatusDocs || maxStatusDocs != 8 {
		t.Errorf("%d status documents kept, want 8", len(info.Status))
	}
	for i := range 8 {
		if got := string(info.Status[fmt.Sprintf("d%02d", i)]); got != fmt.Sprint(i) {
			t.Errorf("d%02d = %q", i, got)
		}
	}
	if info.Topics[0].Relay != nil || info.Topics[1].Relay != nil || info.Subscriptions[0].Relay != nil || info.Services[0].Relay != nil {
		t.Errorf("out-of-bounds relays kept: %+v %+v %+v %+v", info.Topics[0].Relay, info.Topics[1].Relay,
			info.Subscriptions[0].Relay, info.Services[0].Relay)
	}
	if r := info.Topics[2].Relay; r == nil || *r != (Relay{Via: "nats", Remote: "b", Name: "s"}) {
		t.Errorf("a good relay: %+v", r)
	}
	info, err = decodeDescription([]byte(`{"id":"x","router":"r","status":{"a":null,"b":` + big + `}}`))
	if err != nil || info.Status != nil {
		t.Errorf("nothing valid left: %+v %v", info.Status, err)
	}
}

// FuzzDecodeDescription: whatever a peer sends, decodeDescription does not
// panic and what it returns is within the documented bounds.
func FuzzDecodeDescription(f *testing.F) {
	for _, s := range []string{
		`{"id":"x","router":"r"}`,
		`{"id":"x","router":"r","status":{"bridge":{"site":"a","link":"up"}},"topics":[{"name":"t","relay":{"via":"nats","remote":"b","name":"colugo.t.t"}}]}`,
		`{"id":"x","router":"r","status":{"a":null,"B":1,"c":"` + strings.Repeat("x", 100) + `"}}`,
		`{"id":"x","router":"r","status":[1]}`,
		`{"id":"x","router":"r","services":[{"name":"s","relay":{}}],"subscriptions":[{"relay":null}]}`,
		`{"id":"x","router":"r","status":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := decodeDescription(b)
		if err != nil {
			return
		}
		if len(info.Status) > maxStatusDocs || (info.Status != nil && len(info.Status) == 0) {
			t.Fatalf("%d status documents", len(info.Status))
		}
		for name, doc := range info.Status {
			if !validStatusName(name) || len(doc) > MaxStatusBytes || !json.Valid(doc) || string(doc) == "null" {
				t.Fatalf("status %q: %d bytes", name, len(doc))
			}
		}
		for _, l := range [][]TopicInfo{info.Topics, info.Subscriptions, info.Services} {
			for _, ti := range l {
				if r := ti.Relay; r != nil && (r.Via == "" || len(r.Via) > maxRelayField || len(r.Remote) > maxRelayField || len(r.Name) > maxRelayField) {
					t.Fatalf("relay %+v", r)
				}
			}
		}
	})
}

// The sender leaves out what it must not send (the receiver's bounds are
// TestDecodeDescriptionStatusBounds's).
func TestStatusDocsBounds(t *testing.T) {
	n, err := NewNode("docs", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	exact := strings.Repeat("x", MaxStatusBytes-2) // a string of n bytes encodes to n+2
	for name, f := range map[string]func() any{
		"exact": func() any { return exact }, "over": func() any { return exact + "x" },
		"unencodable": func() any { return make(chan int) }, "null": func() any { return nil },
	} {
		if err := n.SetStatus(name, f); err != nil {
			t.Fatal(err)
		}
	}
	docs := n.statusDocs()
	if len(docs) != 1 || len(docs["exact"]) != MaxStatusBytes {
		t.Errorf("sent %d documents (exact: %d bytes), want exact alone", len(docs), len(docs["exact"]))
	}
}

package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/colugo-go/colugo/discovery"
)

// FuzzReadEntry writes fuzzed bytes as a registry entry file and reads it
// back as the poller does. Properties: no panic; an accepted entry has the
// file's ID, a router and a known format version; and what is accepted
// survives writeEntry/readEntry unchanged (the round trip a live node's
// rewrite makes). Seeds are entries written by writeEntry for real peers.
func FuzzReadEntry(f *testing.F) {
	const id = "0123456789abcdef"
	seedDir := f.TempDir()
	for _, p := range []discovery.Peer{
		{ID: id, Name: "camera", Router: "127.0.0.1:40001", Pub: "127.0.0.1:40002", Catalog: "a1b2c3d4e5f6"},
		{ID: id, Name: "🤖 robot", Router: "[::1]:7000"},
		{ID: id, Name: strings.Repeat("n", 63), Router: "host.local:1", Pub: "host.local:2"},
	} {
		if err := writeEntry(seedDir, p); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(seedDir, id+jsonExt))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "{}", "null", `{"v":0,"id":"` + id + `","router":"r"}`, `{"v":2,"id":"` + id + `","router":"r","extra":[1,2]}`,
		`{"v":1,"id":"other","router":"r"}`, `{"v":1,"id":"` + id + `"}`, `{"v":1e999}`, "{\"v\":1,\"id\":\"" + id + "\",\"router\":\"\xff\"}",
		`{"v":1,"ID":"` + id + `","Router":"r"}`, `{"v":1,"id":"` + id + `","router":"r","pid":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, id+jsonExt)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, _, err := readEntry(path, id)
		if err != nil {
			if p != (discovery.Peer{}) {
				t.Fatalf("error %v with a peer %+v", err, p)
			}
			return
		}
		if len(data) > maxEntrySize {
			t.Fatalf("accepted %d bytes, more than %d", len(data), maxEntrySize)
		}
		if p.ID != id || p.Router == "" {
			t.Fatalf("accepted %+v from a file named for %q", p, id)
		}
		var e entry
		if json.Unmarshal(data, &e) != nil || e.Version < formatVersion {
			t.Fatalf("accepted %q, which is not a version ≥ %d entry", data, formatVersion)
		}
		for _, s := range []string{p.Name, p.Router, p.Pub, p.Catalog} {
			if !utf8.ValidString(s) {
				t.Fatalf("accepted a field that is not UTF-8: %q", s)
			}
		}
		if err := writeEntry(dir, p); err != nil {
			t.Fatal(err)
		}
		q, _, err := readEntry(path, id)
		if err != nil || q != p {
			t.Fatalf("round trip: %+v, %v; want %+v", q, err, p)
		}
	})
}

// FuzzEntryFileName checks the poller's file-name rules: an ID that
// validID accepts names files that no temporary or lock file can collide
// with, and one that it refuses is never read.
func FuzzEntryFileName(f *testing.F) {
	for _, s := range []string{"0123456789abcdef", "", ".", "..", ".hidden", "a/b", "a.lock", "a.json", "a.tmp", "é", strings.Repeat("a", 201), "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if validID(id) != nil {
			return
		}
		if len(id) > maxIDLen || strings.HasPrefix(id, ".") || strings.ContainsAny(id, "/\\\x00 ") || filepath.Base(id) != id {
			t.Fatalf("validID accepts %q", id)
		}
		if name := id + jsonExt; strings.TrimSuffix(name, jsonExt) != id || strings.HasSuffix(name, lockExt) {
			t.Fatalf("entry name %q is ambiguous", name)
		}
	})
}

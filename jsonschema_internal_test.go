package colugo

import (
	"strings"

	"github.com/colugo-go/colugo/codec"
	"testing"
)

// A description from an older peer (no json_schema) still decodes, and a
// peer's schema over maxJSONSchema, or null, is dropped.
func TestDecodeDescriptionJSONSchema(t *testing.T) {
	old := `{"id":"x","name":"n","router":"tcp://127.0.0.1:1","pub":"tcp://127.0.0.1:2",` +
		`"topics":[{"name":"t","codec":"json","type":"int"}],"subscriptions":null,"services":[{"name":"s","codec":"json","type":"a","reply_type":"b"}]}`
	info, err := decodeDescription([]byte(old))
	if err != nil {
		t.Fatalf("old description: %v", err)
	}
	if len(info.Topics) != 1 || info.Topics[0].Name != "t" || info.Topics[0].JSONSchema != nil || info.Services[0].ReplyJSONSchema != nil {
		t.Fatalf("old description: %+v", info)
	}
	big := `"` + strings.Repeat("x", maxJSONSchema) + `"`
	withSchemas := `{"id":"x","router":"tcp://127.0.0.1:1","topics":[{"name":"t","json_schema":{"type":"integer"}},{"name":"u","json_schema":` + big + `}],` +
		`"services":[{"name":"s","json_schema":null,"reply_json_schema":` + big + `}]}`
	info, err = decodeDescription([]byte(withSchemas))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(info.Topics[0].JSONSchema); got != `{"type":"integer"}` {
		t.Errorf("kept schema: %s", got)
	}
	if info.Topics[1].JSONSchema != nil || info.Services[0].JSONSchema != nil || info.Services[0].ReplyJSONSchema != nil {
		t.Errorf("oversize or null schemas kept: %+v", info)
	}
}

type hugeSchema struct {
	A, B, C, D, E, F, G, H hugeSchema1
}
type hugeSchema1 struct {
	A, B, C, D, E, F, G, H hugeSchema2
}
type hugeSchema2 struct {
	A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, B0, B1, B2, B3, B4, B5, B6, B7, B8, B9 map[string][]struct {
		C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, D0, D1, D2, D3, D4, D5, D6, D7, D8, D9 []*struct {
			E0, E1, E2, E3, E4, E5, E6, E7, E8, E9 [4]uint64
		}
	}
}

// A type whose schema is over maxJSONSchema gets none; a small one does.
func TestJSONSchemaOfBounded(t *testing.T) {
	if s := jsonSchemaOf[hugeSchema](codec.JSON{}); s != nil {
		t.Errorf("huge type: %d-byte schema, want none", len(s))
	}
	if s := jsonSchemaOf[int](codec.JSON{}); string(s) != `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"integer"}` {
		t.Errorf("int: %s", s)
	}
}

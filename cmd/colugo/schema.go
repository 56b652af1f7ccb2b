package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// unknownFields checks value (JSON) against a JSON Schema from $describe
// (TopicInfo.JSONSchema) for what a Go server would silently drop: fields
// of an object whose schema has additionalProperties false and no such
// property. Names match case-insensitively, as encoding/json matches them.
// It follows $ref into $defs, objects and arrays (items); anything else in
// the schema is not checked. It returns the path of the first unknown
// field, or "".
func unknownFields(schema, value []byte) string {
	var root map[string]any
	var v any
	if json.Unmarshal(schema, &root) != nil || json.Unmarshal(value, &v) != nil {
		return ""
	}
	defs, _ := root["$defs"].(map[string]any)
	var walk func(s map[string]any, v any, path string, depth int) string
	walk = func(s map[string]any, v any, path string, depth int) string {
		if s == nil || depth > 64 {
			return ""
		}
		if ref, ok := s["$ref"].(string); ok {
			d, _ := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
			return walk(d, v, path, depth+1)
		}
		switch v := v.(type) {
		case map[string]any:
			props, _ := s["properties"].(map[string]any)
			closed := s["additionalProperties"] == false
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				ps, name := matchProp(props, k)
				if ps == nil && closed && name == "" {
					return path + "." + k
				}
				if p := walk(ps, v[k], path+"."+k, depth+1); p != "" {
					return p
				}
			}
		case []any:
			items, _ := s["items"].(map[string]any)
			for i, e := range v {
				if p := walk(items, e, fmt.Sprintf("%s[%d]", path, i), depth+1); p != "" {
					return p
				}
			}
		}
		return ""
	}
	return strings.TrimPrefix(walk(root, v, "", 0), ".")
}

// matchProp finds k among props: exactly, else case-insensitively.
func matchProp(props map[string]any, k string) (map[string]any, string) {
	if p, ok := props[k]; ok {
		m, _ := p.(map[string]any)
		return m, k
	}
	for name, p := range props {
		if strings.EqualFold(name, k) {
			m, _ := p.(map[string]any)
			return m, name
		}
	}
	return nil, ""
}

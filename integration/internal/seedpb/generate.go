// Package seedpb is the seed's own example message (TestMessage, from
// seed-colugo/examples/proto/test.proto, no proto package) as Go, for the
// integration tests in which the seed's pub_proto.py and sub_proto.py talk
// to typed protobuf subscriptions and publishers.
//
// test.pb.go is generated from the vendored seed's .proto and committed (the
// tests check that it still matches the descriptor protoc writes for that
// file). The file is registered under the seed's path,
// examples/proto/test.proto, as the seed's Python module is. To regenerate,
// install protoc and protoc-gen-go v1.36.12 (the version of
// google.golang.org/protobuf in go.mod) and run go generate here:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./integration/internal/seedpb
package seedpb

//go:generate protoc -I ../../testdata/seed/seed-colugo --go_out=. --go_opt=module=github.com/colugo-go/colugo/integration/internal/seedpb --go_opt=Mexamples/proto/test.proto=github.com/colugo-go/colugo/integration/internal/seedpb examples/proto/test.proto

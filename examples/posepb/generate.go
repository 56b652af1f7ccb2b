// Package posepb holds the protobuf messages used by colugo's protobuf
// examples and tests: Pose, AddRequest and AddReply (package colugo.examples).
//
// pose.pb.go is generated and committed; CI does not regenerate it. To
// regenerate, install protoc and protoc-gen-go v1.36.12 (the version of
// google.golang.org/protobuf in go.mod) and run go generate in this
// directory:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./examples/posepb
package posepb

//go:generate protoc --go_out=. --go_opt=paths=source_relative pose.proto

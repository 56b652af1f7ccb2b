// Package integration holds colugo's multi-process, chaos and LAN tests:
// tests that start child processes (re-executions of the test binary,
// dispatched by one TestMain to a named role) or run nodes on simulated
// hosts in private network namespaces (internal/netns). It has no API;
// run it with go test ./integration/ (go test ./... includes it).
package integration

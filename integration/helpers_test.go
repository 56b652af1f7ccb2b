package integration

import "github.com/colugo-go/colugo/internal/testkit"

// The helpers shared with the root package's tests live in internal/testkit.
type (
	AddReq  = testkit.AddReq
	AddResp = testkit.AddResp
)

var add = testkit.Add

module github.com/colugo-go/colugo/integration/testdata/seed

// Test data only (Python): its own module, so that it is not part of
// github.com/colugo-go/colugo.

go 1.25.0

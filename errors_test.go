package colugo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/colugo-go/colugo"
)

func TestRemoteErrorSentinels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code colugo.Code
		want error // nil: matches none
	}{
		{colugo.CodeNotServed, colugo.ErrNoResponders},
		{colugo.CodeCodecMismatch, colugo.ErrCodecMismatch},
		{colugo.CodeDeadlineExceeded, context.DeadlineExceeded},
		{colugo.CodeNotFound, nil}, // the application's: not ErrNoResponders
		{colugo.CodeUnknown, nil},
		{colugo.CodeInvalidArgument, nil},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			t.Parallel()
			err := error(&colugo.RemoteError{Service: "s", Code: tc.code, Message: "m"})
			for _, s := range []error{colugo.ErrNoResponders, colugo.ErrCodecMismatch, context.DeadlineExceeded} {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
		})
	}
}

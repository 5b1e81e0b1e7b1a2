package stufio

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codedError carries the status a handler's error becomes, keeping the original for errors.Is/As.
type codedError struct {
	code codes.Code
	err  error
}

func (e *codedError) Error() string              { return e.err.Error() }
func (e *codedError) Unwrap() error              { return e.err }
func (e *codedError) GRPCStatus() *status.Status { return status.New(e.code, e.err.Error()) }

// Retryable marks a passing failure (a dependency down, a timeout): the sidecar redelivers the event
// with backoff. Retryable(nil) is nil.
func Retryable(err error) error { return withCode(codes.Unavailable, err) }

// Permanent marks a failure that no retry can fix (a malformed payload, an unknown entity): the sidecar
// dead-letters the event at once. Permanent(nil) is nil.
func Permanent(err error) error { return withCode(codes.InvalidArgument, err) }

func withCode(code codes.Code, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

// statusOf is the status a handler's error is answered with (see the package documentation).
func statusOf(err error) *status.Status {
	var coded *codedError
	if errors.As(err, &coded) {
		return coded.GRPCStatus()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err)
	}
	if s, ok := status.FromError(err); ok {
		return s
	}
	return status.New(codes.Internal, err.Error())
}

type panicError struct{ value any }

func (p panicError) Error() string { return fmt.Sprintf("handler panicked: %v", p.value) }

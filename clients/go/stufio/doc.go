// Package stufio hosts Go event handlers for the stufio sidecar.
//
// The sidecar owns the NATS subscriptions and calls stufio.events.v1.EventHandler/Handle over gRPC for
// each event. A Server serves that service with your handlers, plus grpc.health.v1 and Describe:
//
//	srv := stufio.NewServer(stufio.WithName("orders"))
//	srv.Subscribe("order.created", func(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
//		return stufio.WithResult(map[string]any{"ok": true}).AddMetrics(map[string]any{"success": true}), nil
//	}, stufio.Durable("orders"))
//	err := srv.Serve(ctx, "unix:///var/run/stufio/handler.sock")
//
// A nil *Response is an empty response. Handlers written in the seed's style, returning a map such as
// {"result": ...}, {"metrics": ...}, {"publish": [...]} or any plain value, are adapted with Legacy.
//
// # Errors
//
// The error a handler returns becomes the gRPC status of Handle, and the sidecar acts on it
// (DESIGN.md §3):
//
//	Retryable(err)                     UNAVAILABLE        redeliver with backoff
//	any other error, or a panic        INTERNAL           redeliver with backoff
//	Permanent(err), a payload that     INVALID_ARGUMENT   dead-letter at once
//	  does not decode, a response
//	  that cannot be encoded
//	no subscription matches            UNIMPLEMENTED      dead-letter at once
//	an error with a GRPCStatus()       that status        per DESIGN.md §3
//	  (status.Error)
//	a context error                    CANCELED / DEADLINE_EXCEEDED
//
// In HandleStream a message has no status of its own, so the same code travels in the response's
// error_code (with error_message), which the sidecar treats exactly like a failed unary call. A handler
// can also ask for a retry or a dead letter without failing: Retry(reason, delay) and DeadLetter(reason).
package stufio

package stufio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	eventsv1 "github.com/stufio/stufio-sidecar/clients/go/gen/stufio/events/v1"
)

// PublisherAddressEnv names the environment variable NewPublisher reads when given no address: where
// the sidecar's EventPublisher listens (its publisher.listen).
const PublisherAddressEnv = "STUFIO_PUBLISHER_ADDRESS"

// DefaultPublishTimeout bounds a Publish call whose context has no deadline.
const DefaultPublishTimeout = 10 * time.Second

// Publisher emits events outside a handler through the sidecar's EventPublisher service, so they get
// the same CloudEvents headers, correlation, allow-list and stream storage as a handler's follow-ups.
type Publisher struct {
	conn   *grpc.ClientConn
	client eventsv1.EventPublisherClient
}

// PublishResult is the sidecar's answer to Publish.
type PublishResult struct {
	EventID   string `json:"event_id"`
	Subject   string `json:"subject"`
	Stream    string `json:"stream"`   // set when a JetStream stream stored the event
	Sequence  uint64 `json:"sequence"` // its sequence in Stream
	Duplicate bool   `json:"duplicate"`
}

// RequestResult is the sidecar's answer to Request. Error is set (with ErrorCode) when the handling
// side reported a failure; Result is the handler's result otherwise.
type RequestResult struct {
	Result    any    `json:"result"`
	EventID   string `json:"event_id"`
	Error     string `json:"error"`
	ErrorCode string `json:"error_code"`
}

// PublishOption sets an optional field of a Publish or Request call.
type PublishOption func(*publishOptions)

type publishOptions struct {
	eventID     string
	causationID string
}

// WithEventID names the event: retrying a call with the same id cannot store the event twice
// (JetStream's duplicate window), and PublishResult.Duplicate tells a retry that it was.
func WithEventID(id string) PublishOption { return func(o *publishOptions) { o.eventID = id } }

// WithCausationID names the event this one was caused by (Publish only).
func WithCausationID(id string) PublishOption { return func(o *publishOptions) { o.causationID = id } }

// NewPublisher connects to the sidecar's EventPublisher at address: unix:///path.sock or host:port;
// empty means $STUFIO_PUBLISHER_ADDRESS. The connection is made lazily, on the first call.
func NewPublisher(address string, opts ...grpc.DialOption) (*Publisher, error) {
	if address == "" {
		address = os.Getenv(PublisherAddressEnv)
	}
	if address == "" {
		return nil, errors.New("stufio: no EventPublisher address: pass one or set " + PublisherAddressEnv + " (the sidecar's publisher.listen)")
	}
	target := address
	if !strings.HasPrefix(address, "unix:") {
		// host:port, dialled as given (no DNS resolver round trip for 127.0.0.1:port).
		target = "passthrough:///" + strings.TrimPrefix(address, "tcp://")
	}
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("stufio: EventPublisher at %s: %w", address, err)
	}
	return &Publisher{conn: conn, client: eventsv1.NewEventPublisherClient(conn)}, nil
}

// Close closes the connection.
func (p *Publisher) Close() error { return p.conn.Close() }

// Publish publishes one event. The error is a gRPC status error: INVALID_ARGUMENT for a bad event type
// or body, PERMISSION_DENIED outside publish.allow, RESOURCE_EXHAUSTED over max_payload_bytes,
// UNAVAILABLE when NATS did not take it.
func (p *Publisher) Publish(ctx context.Context, ev PublishEventInfo, opts ...PublishOption) (*PublishResult, error) {
	o := collectOptions(opts)
	info, err := ev.proto()
	if err != nil {
		return nil, fmt.Errorf("stufio: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPublishTimeout)
		defer cancel()
	}
	resp, err := p.client.Publish(ctx, &eventsv1.PublishRequest{Event: info, EventId: o.eventID, CausationId: o.causationID})
	if err != nil {
		return nil, err
	}
	return &PublishResult{
		EventID: resp.GetEventId(), Subject: resp.GetSubject(), Stream: resp.GetStream(),
		Sequence: resp.GetSequence(), Duplicate: resp.GetDuplicate(),
	}, nil
}

// Request publishes one event and waits up to timeout (0: 10s) for the handling side's result. A
// handler failure is not an error: it comes back in RequestResult.Error. The error is a gRPC status
// error, DEADLINE_EXCEEDED when no result came in time.
func (p *Publisher) Request(ctx context.Context, ev PublishEventInfo, timeout time.Duration, opts ...PublishOption) (*RequestResult, error) {
	o := collectOptions(opts)
	info, err := ev.proto()
	if err != nil {
		return nil, fmt.Errorf("stufio: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultPublishTimeout
	}
	if _, ok := ctx.Deadline(); !ok {
		// The sidecar gives up after timeout; the call allows it a little longer to say so.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+2*time.Second)
		defer cancel()
	}
	resp, err := p.client.Request(ctx, &eventsv1.RequestRequest{Event: info, TimeoutMs: uint32(timeout.Milliseconds()), EventId: o.eventID})
	if err != nil {
		return nil, err
	}
	out := &RequestResult{EventID: resp.GetEventId(), Error: resp.GetError(), ErrorCode: resp.GetErrorCode()}
	if resp.GetResult() != nil {
		out.Result = resp.GetResult().AsInterface()
	}
	return out, nil
}

func collectOptions(opts []PublishOption) publishOptions {
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

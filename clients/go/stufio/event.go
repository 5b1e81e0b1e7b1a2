package stufio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	eventsv1 "github.com/stufio/stufio-sidecar/clients/go/gen/stufio/events/v1"
)

// Actor is who caused the event.
type Actor struct {
	Type string
	ID   string
}

// Delivery tells how the event reached the sidecar.
type Delivery struct {
	Subject        string
	Attempt        uint32 // 1 on the first delivery
	Stream         string // JetStream only
	StreamSequence uint64
	ReplyExpected  bool
	Consumer       string // the durable or queue group that delivered it
	Mode           string // "jetstream" or "core"
}

// Event is an EventMessage with Go values: Payload is the JSON body decoded the way encoding/json
// decodes into an any (map[string]any, []any, float64, string, bool, nil).
type Event struct {
	EventID       string
	EventType     string
	EntityID      string
	CorrelationID string
	CausationID   string
	Source        string
	Time          time.Time // zero when the event has none
	ContentType   string
	Data          []byte // the raw body, always
	Payload       any    // nil unless the body is JSON
	Headers       map[string]string
	Actor         Actor
	Delivery      Delivery
	Hops          uint32
	Traceparent   string

	// Message is the event as received.
	Message *eventsv1.EventMessage
}

func newEvent(msg *eventsv1.EventMessage) *Event {
	ev := &Event{
		EventID:       msg.GetEventId(),
		EventType:     msg.GetEventType(),
		EntityID:      msg.GetEntityId(),
		CorrelationID: msg.GetCorrelationId(),
		CausationID:   msg.GetCausationId(),
		Source:        msg.GetSource(),
		ContentType:   msg.GetContentType(),
		Data:          msg.GetData(),
		Headers:       msg.GetHeaders(),
		Actor:         Actor{Type: msg.GetActor().GetType(), ID: msg.GetActor().GetId()},
		Delivery: Delivery{
			Subject:        msg.GetDelivery().GetSubject(),
			Attempt:        msg.GetDelivery().GetAttempt(),
			Stream:         msg.GetDelivery().GetStream(),
			StreamSequence: msg.GetDelivery().GetStreamSequence(),
			ReplyExpected:  msg.GetDelivery().GetReplyExpected(),
			Consumer:       msg.GetDelivery().GetConsumer(),
			Mode:           msg.GetDelivery().GetMode(),
		},
		Hops:        msg.GetHops(),
		Traceparent: msg.GetTraceparent(),
		Message:     msg,
	}
	if msg.GetTime() != nil {
		ev.Time = msg.GetTime().AsTime()
	}
	if msg.GetPayload() != nil {
		ev.Payload = msg.GetPayload().AsInterface()
	} else if len(msg.GetData()) > 0 && (msg.GetContentType() == "" || isJSONContentType(msg.GetContentType())) {
		// A sidecar with handler.decode_payload: false sends the raw body only; parse it here.
		var v any
		if json.Unmarshal(msg.GetData(), &v) == nil {
			ev.Payload = v
		}
	}
	if ev.Headers == nil {
		ev.Headers = map[string]string{}
	}
	return ev
}

func isJSONContentType(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "application/json" || strings.HasSuffix(ct, "+json")
}

// Decode unmarshals the payload into v with encoding/json (so json tags apply).
func (e *Event) Decode(v any) error {
	if e.Message.GetPayload() == nil && e.Payload != nil {
		return json.Unmarshal(e.Message.GetData(), v)
	}
	if e.Message.GetPayload() == nil {
		return errors.New("the event has no JSON payload")
	}
	// Not Data: in CloudEvents structured mode the raw body is the envelope, not the payload.
	raw, err := protojson.Marshal(e.Message.GetPayload())
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// Typed adapts a handler that takes the payload decoded into T, the counterpart of the seed's
// BaseEventMessage[OrderPayload]. A payload that does not decode is a Permanent error.
func Typed[T any](fn func(ctx context.Context, ev *Event, payload T) (*Response, error)) HandlerFunc {
	return func(ctx context.Context, ev *Event) (*Response, error) {
		var payload T
		if err := ev.Decode(&payload); err != nil {
			return nil, Permanent(fmt.Errorf("payload does not fit %T: %w", payload, err))
		}
		return fn(ctx, ev, payload)
	}
}

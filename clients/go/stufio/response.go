package stufio

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	eventsv1 "github.com/stufio/stufio-sidecar/clients/go/gen/stufio/events/v1"
)

// Disposition tells the sidecar what to do with the inbound event.
type Disposition int

const (
	DispositionAck        Disposition = iota // the default
	DispositionRetry                         // redeliver after RetryDelay, else the subscription's backoff
	DispositionDeadLetter                    // never retry: copy to the dead-letter subject
)

var dispositionProto = map[Disposition]eventsv1.Disposition{
	DispositionAck:        eventsv1.Disposition_DISPOSITION_ACK,
	DispositionRetry:      eventsv1.Disposition_DISPOSITION_RETRY,
	DispositionDeadLetter: eventsv1.Disposition_DISPOSITION_DEAD_LETTER,
}

// PublishEventInfo is a follow-up event the sidecar publishes after the handler returns.
type PublishEventInfo struct {
	EventType     string
	EntityID      string
	Payload       any    // published as JSON; ignored when Data is set
	Data          []byte // a raw body, with ContentType
	ContentType   string
	CorrelationID string // empty: inherit the inbound event's
	Headers       map[string]string
	Actor         *Actor
	Delay         time.Duration // publish after this delay (millisecond precision)
}

// Response is what a handler returns: a result for the requester, metrics (numbers, booleans,
// strings), and follow-up events.
type Response struct {
	Result       any
	Metrics      map[string]any
	Publish      []PublishEventInfo
	Disposition  Disposition
	RetryDelay   time.Duration
	ErrorMessage string
}

// WithResult is a response carrying result.
func WithResult(result any) *Response { return &Response{Result: result} }

// Retry asks for redelivery after delay (0: the subscription's backoff).
func Retry(reason string, delay time.Duration) *Response {
	return &Response{Disposition: DispositionRetry, RetryDelay: delay, ErrorMessage: reason}
}

// DeadLetter asks the sidecar to dead-letter the event without retrying.
func DeadLetter(reason string) *Response {
	return &Response{Disposition: DispositionDeadLetter, ErrorMessage: reason}
}

// AddMetrics merges metrics into the response and returns it, for chaining.
func (r *Response) AddMetrics(metrics map[string]any) *Response {
	if r.Metrics == nil {
		r.Metrics = make(map[string]any, len(metrics))
	}
	for k, v := range metrics {
		r.Metrics[k] = v
	}
	return r
}

// AddPublish appends follow-up events and returns the response, for chaining.
func (r *Response) AddPublish(events ...PublishEventInfo) *Response {
	r.Publish = append(r.Publish, events...)
	return r
}

// Proto encodes the response; an error means a value that cannot be sent as JSON.
func (r *Response) Proto() (*eventsv1.HandlerResponse, error) {
	out := &eventsv1.HandlerResponse{
		Disposition:  dispositionProto[r.Disposition],
		RetryDelayMs: uint32(r.RetryDelay.Milliseconds()),
		ErrorMessage: r.ErrorMessage,
	}
	var err error
	if r.Result != nil {
		if out.Result, err = toValue(r.Result); err != nil {
			return nil, fmt.Errorf("result: %w", err)
		}
	}
	if len(r.Metrics) > 0 {
		out.Metrics = &eventsv1.HandlerMetrics{Values: map[string]*structpb.Value{}}
		for k, v := range r.Metrics {
			if v == nil {
				continue // a metric is a number, boolean or string; nil means "not measured"
			}
			if out.Metrics.Values[k], err = toValue(v); err != nil {
				return nil, fmt.Errorf("metric %q: %w", k, err)
			}
		}
	}
	for i, p := range r.Publish {
		msg, err := p.proto()
		if err != nil {
			return nil, fmt.Errorf("publish[%d]: %w", i, err)
		}
		out.Publish = append(out.Publish, msg)
	}
	return out, nil
}

func (p PublishEventInfo) proto() (*eventsv1.PublishEventInfo, error) {
	msg := &eventsv1.PublishEventInfo{
		EventType:     p.EventType,
		EntityId:      p.EntityID,
		ContentType:   p.ContentType,
		CorrelationId: p.CorrelationID,
		Headers:       p.Headers,
		DelayMs:       uint32(p.Delay.Milliseconds()),
	}
	if p.Actor != nil {
		msg.Actor = &eventsv1.Actor{Type: p.Actor.Type, Id: p.Actor.ID}
	}
	if p.Data != nil {
		msg.Data = p.Data
	} else if p.Payload != nil {
		payload, err := toValue(p.Payload)
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		msg.Payload = payload
	}
	return msg, nil
}

// merge is one response for an event that several subscriptions handled: the first result, all
// metrics and follow-ups, and the most cautious disposition.
func merge(responses []*Response) *Response {
	if len(responses) == 1 {
		return responses[0]
	}
	merged := &Response{}
	var reasons []string
	for _, r := range responses {
		if merged.Result == nil {
			merged.Result = r.Result
		}
		merged.AddMetrics(r.Metrics).AddPublish(r.Publish...)
		merged.Disposition = max(merged.Disposition, r.Disposition)
		merged.RetryDelay = max(merged.RetryDelay, r.RetryDelay)
		if r.ErrorMessage != "" {
			reasons = append(reasons, r.ErrorMessage)
		}
	}
	merged.ErrorMessage = strings.Join(reasons, "; ")
	return merged
}

// LegacyFunc is a handler in the seed's style, returning a plain value instead of a *Response.
type LegacyFunc func(ctx context.Context, ev *Event) (any, error)

// Legacy adapts a LegacyFunc: its return value goes through Normalize.
func Legacy(fn LegacyFunc) HandlerFunc {
	return func(ctx context.Context, ev *Event) (*Response, error) {
		v, err := fn(ctx, ev)
		if err != nil {
			return nil, err
		}
		r, err := Normalize(v)
		if err != nil {
			return nil, Permanent(err)
		}
		return r, nil
	}
}

var responseKeys = map[string]bool{
	"result": true, "metrics": true, "publish": true, "disposition": true, "retry_delay_ms": true, "error_message": true,
}

// Normalize turns the seed's legacy return values into a Response: nil is an empty response; a map
// whose keys are all HandlerResponse fields ({"metrics": ...}, {"result": ...}, {"publish": [...]}) sets
// those fields; any other value is the result.
func Normalize(v any) (*Response, error) {
	switch v := v.(type) {
	case nil:
		return &Response{}, nil
	case *Response:
		if v == nil {
			return &Response{}, nil
		}
		return v, nil
	case Response:
		return &v, nil
	case map[string]any:
		if len(v) == 0 {
			break
		}
		for k := range v {
			if !responseKeys[k] {
				return &Response{Result: v}, nil
			}
		}
		return legacyMap(v)
	}
	return &Response{Result: v}, nil
}

// legacyMap decodes {"result", "metrics", "publish", ...} through JSON, with the proto's field names.
func legacyMap(m map[string]any) (*Response, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var legacy struct {
		Result       any            `json:"result"`
		Metrics      map[string]any `json:"metrics"`
		Disposition  string         `json:"disposition"`
		RetryDelayMs uint32         `json:"retry_delay_ms"`
		ErrorMessage string         `json:"error_message"`
		Publish      []struct {
			EventType     string            `json:"event_type"`
			EntityID      string            `json:"entity_id"`
			Payload       any               `json:"payload"`
			Data          []byte            `json:"data"`
			ContentType   string            `json:"content_type"`
			CorrelationID string            `json:"correlation_id"`
			Headers       map[string]string `json:"headers"`
			DelayMs       uint32            `json:"delay_ms"`
		} `json:"publish"`
	}
	if err := json.Unmarshal(raw, &legacy); err != nil {
		return nil, fmt.Errorf("legacy response: %w", err)
	}
	r := &Response{
		Result:       legacy.Result,
		Metrics:      legacy.Metrics,
		RetryDelay:   time.Duration(legacy.RetryDelayMs) * time.Millisecond,
		ErrorMessage: legacy.ErrorMessage,
	}
	switch strings.ToLower(legacy.Disposition) {
	case "", "ack":
	case "retry":
		r.Disposition = DispositionRetry
	case "dead_letter":
		r.Disposition = DispositionDeadLetter
	default:
		return nil, fmt.Errorf("legacy response: unknown disposition %q", legacy.Disposition)
	}
	for _, p := range legacy.Publish {
		r.Publish = append(r.Publish, PublishEventInfo{
			EventType: p.EventType, EntityID: p.EntityID, Payload: p.Payload, Data: p.Data,
			ContentType: p.ContentType, CorrelationID: p.CorrelationID, Headers: p.Headers,
			Delay: time.Duration(p.DelayMs) * time.Millisecond,
		})
	}
	return r, nil
}

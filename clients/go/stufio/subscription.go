package stufio

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	eventsv1 "github.com/stufio/stufio-sidecar/clients/go/gen/stufio/events/v1"
)

// HandlerFunc handles one event. A nil *Response is an empty response.
type HandlerFunc func(ctx context.Context, ev *Event) (*Response, error)

// Subscription is a handler and the subscription it declares through Describe (the seed's
// @stufio_event_subscriber). Only EventType and Handler are required.
type Subscription struct {
	EventType   string // NATS wildcards allowed: order.*, order.>
	Handler     HandlerFunc
	Delivery    string // "jetstream" or "core"; empty: the sidecar's default
	Stream      string
	Durable     string
	QueueGroup  string
	MaxInFlight uint32
	MaxDeliver  uint32
}

// SubscribeOption sets an optional field of a Subscription.
type SubscribeOption func(*Subscription)

func DeliveryMode(mode string) SubscribeOption { return func(s *Subscription) { s.Delivery = mode } }
func Stream(name string) SubscribeOption       { return func(s *Subscription) { s.Stream = name } }
func Durable(name string) SubscribeOption      { return func(s *Subscription) { s.Durable = name } }
func QueueGroup(name string) SubscribeOption   { return func(s *Subscription) { s.QueueGroup = name } }
func MaxInFlight(n uint32) SubscribeOption     { return func(s *Subscription) { s.MaxInFlight = n } }
func MaxDeliver(n uint32) SubscribeOption      { return func(s *Subscription) { s.MaxDeliver = n } }

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// checkPattern applies the sidecar's rules (DESIGN.md §2): dot-separated tokens of [A-Za-z0-9_-],
// '*' for one token, '>' for the rest.
func checkPattern(pattern string) error {
	tokens := strings.Split(pattern, ".")
	for i, t := range tokens {
		if t == "*" || (t == ">" && i == len(tokens)-1) || tokenRE.MatchString(t) {
			continue
		}
		return fmt.Errorf("stufio: invalid event type pattern %q", pattern)
	}
	return nil
}

func (s *Subscription) matches(eventType string) bool {
	pattern, tokens := strings.Split(s.EventType, "."), strings.Split(eventType, ".")
	for i, p := range pattern {
		if p == ">" {
			return len(tokens) > i
		}
		if i >= len(tokens) || (p != "*" && p != tokens[i]) {
			return false
		}
	}
	return len(pattern) == len(tokens)
}

func (s *Subscription) proto() *eventsv1.SubscriptionDeclaration {
	return &eventsv1.SubscriptionDeclaration{
		EventType:   s.EventType,
		Delivery:    s.Delivery,
		Stream:      s.Stream,
		Durable:     s.Durable,
		QueueGroup:  s.QueueGroup,
		MaxInFlight: s.MaxInFlight,
		MaxDeliver:  s.MaxDeliver,
	}
}

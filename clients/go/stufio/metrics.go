package stufio

import (
	"context"
	"sync"
)

// MetricsProvider adds per-event metrics to every response as <Name()>_<key> (the seed's
// BaseMetricsProvider). Begin is called before the handlers run and returns the context they get,
// carrying fresh state for this event; Metrics reads that state after they return. Per-event state
// lives in the context, so concurrent events never share it.
type MetricsProvider interface {
	Name() string
	Begin(ctx context.Context) context.Context
	Metrics(ctx context.Context) map[string]any
}

// Counters is a MetricsProvider of named numbers, counted per event:
//
//	var api = stufio.NewCounters("api")     // stufio.WithMetricsProvider(api)
//	api.Add(ctx, "calls", 1)                // in a handler → metric api_calls
type Counters struct{ name string }

type counterState struct {
	mu     sync.Mutex
	values map[string]float64
}

func NewCounters(name string) *Counters { return &Counters{name: name} }

func (c *Counters) Name() string { return c.name }

func (c *Counters) Begin(ctx context.Context) context.Context {
	return context.WithValue(ctx, c, &counterState{values: map[string]float64{}})
}

// Add adds delta to a counter of the event that ctx belongs to; outside an event it does nothing.
func (c *Counters) Add(ctx context.Context, key string, delta float64) {
	if st, ok := ctx.Value(c).(*counterState); ok {
		st.mu.Lock()
		st.values[key] += delta
		st.mu.Unlock()
	}
}

func (c *Counters) Metrics(ctx context.Context) map[string]any {
	st, ok := ctx.Value(c).(*counterState)
	if !ok {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[string]any, len(st.values))
	for k, v := range st.values {
		out[k] = v
	}
	return out
}

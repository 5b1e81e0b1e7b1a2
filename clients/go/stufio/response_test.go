package stufio_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stufio/stufio-sidecar/clients/go/stufio"
)

func TestResponseHelpers(t *testing.T) {
	r := stufio.WithResult(map[string]any{"status": "completed"}).
		AddMetrics(map[string]any{"a": 1}).
		AddMetrics(map[string]any{"b": true})
	msg, err := r.Proto()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(msg.GetResult().AsInterface()); got != "map[status:completed]" {
		t.Errorf("result = %v", got)
	}
	if got := fmt.Sprint(metricsOf(msg)); got != "map[a:1 b:true]" {
		t.Errorf("metrics = %v", got)
	}

	sparse, _ := (&stufio.Response{Metrics: map[string]any{"a": nil, "b": 0}}).Proto()
	if got := fmt.Sprint(metricsOf(sparse)); got != "map[b:0]" {
		t.Errorf("nil metric kept: %v", got)
	}

	retry, _ := stufio.Retry("db busy", 1500*time.Millisecond).Proto()
	if retry.GetDisposition().String() != "DISPOSITION_RETRY" || retry.GetRetryDelayMs() != 1500 || retry.GetErrorMessage() != "db busy" {
		t.Errorf("retry = %v", retry)
	}
	dead, _ := stufio.DeadLetter("bad").Proto()
	if dead.GetDisposition().String() != "DISPOSITION_DEAD_LETTER" {
		t.Errorf("dead letter = %v", dead)
	}
}

func TestStructsAreSentAsJSON(t *testing.T) {
	type point struct {
		X    int      `json:"x"`
		Tags []string `json:"tags,omitempty"`
	}
	msg, err := (&stufio.Response{
		Result:  point{X: 1, Tags: []string{"a"}},
		Publish: []stufio.PublishEventInfo{{EventType: "p.moved", Payload: []point{{X: 2}}, Actor: &stufio.Actor{Type: "user", ID: "u"}}},
	}).Proto()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(msg.GetResult().AsInterface()); got != "map[tags:[a] x:1]" {
		t.Errorf("result = %v", got)
	}
	p := msg.GetPublish()[0]
	if got := fmt.Sprint(p.GetPayload().AsInterface()); got != "[map[x:2]]" || p.GetActor().GetId() != "u" {
		t.Errorf("publish = %v", p)
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{nil, "result=<nil> metrics=map[] publish=0 disposition=0"},
		{map[string]any{"metrics": map[string]any{"n": 42}}, "result=<nil> metrics=map[n:42] publish=0 disposition=0"},
		{map[string]any{"result": "ok", "disposition": "retry", "retry_delay_ms": 500}, "result=ok metrics=map[] publish=0 disposition=1"},
		{map[string]any{"publish": []map[string]any{{"event_type": "a.b", "delay_ms": 10}}}, "result=<nil> metrics=map[] publish=1 disposition=0"},
		{map[string]any{"result": 1, "other": 2}, "result=map[other:2 result:1] metrics=map[] publish=0 disposition=0"},
		{map[string]any{}, "result=map[] metrics=map[] publish=0 disposition=0"},
		{42, "result=42 metrics=map[] publish=0 disposition=0"},
	}
	for _, c := range cases {
		r, err := stufio.Normalize(c.in)
		if err != nil {
			t.Errorf("Normalize(%v): %v", c.in, err)
			continue
		}
		got := fmt.Sprintf("result=%v metrics=%v publish=%d disposition=%d", r.Result, r.Metrics, len(r.Publish), r.Disposition)
		if len(r.Metrics) == 0 {
			got = fmt.Sprintf("result=%v metrics=map[] publish=%d disposition=%d", r.Result, len(r.Publish), r.Disposition)
		}
		if got != c.want {
			t.Errorf("Normalize(%v) = %s, want %s", c.in, got, c.want)
		}
	}
	if _, err := stufio.Normalize(map[string]any{"disposition": "later"}); err == nil {
		t.Error("an unknown disposition was accepted")
	}
	r, _ := stufio.Normalize(map[string]any{"publish": []any{map[string]any{"event_type": "a.b", "delay_ms": 10}}})
	if r.Publish[0].EventType != "a.b" || r.Publish[0].Delay != 10*time.Millisecond {
		t.Errorf("publish = %+v", r.Publish[0])
	}
}

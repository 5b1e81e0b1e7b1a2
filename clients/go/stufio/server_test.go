package stufio_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/stufio/stufio-sidecar/clients/go/gen/stufio/events/v1"
	"github.com/stufio/stufio-sidecar/clients/go/stufio"
)

// serve starts s on a free port and returns a connection to it; the server is stopped and awaited when
// the test ends.
func serve(t *testing.T, s *stufio.Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s, lis, "passthrough:///"+lis.Addr().String())
}

func serveOn(t *testing.T, s *stufio.Server, lis net.Listener, target string) *grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, lis) }()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return conn
}

func event(eventType string, payload any) *eventsv1.EventMessage {
	msg := &eventsv1.EventMessage{EventId: "evt-12345678-abcd", EventType: eventType, CorrelationId: "corr-1"}
	if payload != nil {
		v, err := structpb.NewValue(payload)
		if err != nil {
			panic(err)
		}
		msg.Payload = v
	}
	return msg
}

func metricsOf(resp *eventsv1.HandlerResponse) map[string]any {
	out := map[string]any{}
	for k, v := range resp.GetMetrics().GetValues() {
		out[k] = v.AsInterface()
	}
	return out
}

func handle(t *testing.T, conn *grpc.ClientConn, msg *eventsv1.EventMessage) (*eventsv1.HandlerResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return eventsv1.NewEventHandlerClient(conn).Handle(ctx, msg)
}

func mustHandle(t *testing.T, conn *grpc.ClientConn, msg *eventsv1.EventMessage) *eventsv1.HandlerResponse {
	t.Helper()
	resp, err := handle(t, conn, msg)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return resp
}

func TestHandleRoundTrip(t *testing.T) {
	s := stufio.NewServer()
	s.Subscribe("order.created", func(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
		n := ev.Payload.(map[string]any)["n"]
		return stufio.WithResult(map[string]any{"seen": n}).
			AddMetrics(map[string]any{"success": true, "n": n}).
			AddPublish(stufio.PublishEventInfo{
				EventType:     "order.fulfillment",
				EntityID:      "ord-1",
				Payload:       map[string]any{"order_id": "ord-1"},
				CorrelationID: ev.CorrelationID,
				Headers:       map[string]string{"x-trace": "1"},
				Delay:         250 * time.Millisecond,
			}), nil
	})
	resp := mustHandle(t, serve(t, s), event("order.created", map[string]any{"n": 7}))

	if got := resp.GetResult().AsInterface(); fmt.Sprint(got) != "map[seen:7]" {
		t.Errorf("result = %v", got)
	}
	if got := metricsOf(resp); fmt.Sprint(got) != "map[n:7 success:true]" {
		t.Errorf("metrics = %v", got)
	}
	if len(resp.GetPublish()) != 1 {
		t.Fatalf("publish = %v", resp.GetPublish())
	}
	p := resp.GetPublish()[0]
	if p.GetEventType() != "order.fulfillment" || p.GetEntityId() != "ord-1" || p.GetCorrelationId() != "corr-1" ||
		p.GetHeaders()["x-trace"] != "1" || p.GetDelayMs() != 250 {
		t.Errorf("follow-up = %v", p)
	}
	if resp.GetDisposition() != eventsv1.Disposition_DISPOSITION_ACK {
		t.Errorf("disposition = %v", resp.GetDisposition())
	}
}

func TestEventFieldsReachTheHandler(t *testing.T) {
	var seen *stufio.Event
	s := stufio.NewServer()
	s.Subscribe(">", func(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
		seen = ev
		return nil, nil
	})
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	msg := event("order.created", map[string]any{"total": 10.5})
	msg.EntityId, msg.CausationId, msg.Source, msg.Data = "o-1", "e-0", "shop", []byte(`{"total":10.5}`)
	msg.Time = timestamppb.New(at)
	msg.Headers = map[string]string{"traceparent": "00-x"}
	msg.Actor = &eventsv1.Actor{Type: "user", Id: "u-1"}
	msg.Delivery = &eventsv1.Delivery{Attempt: 2, Stream: "EVENTS", StreamSequence: 9, Consumer: "orders", Mode: "jetstream"}
	mustHandle(t, serve(t, s), msg)

	if seen.EventID != "evt-12345678-abcd" || seen.EntityID != "o-1" || seen.CorrelationID != "corr-1" ||
		seen.CausationID != "e-0" || seen.Source != "shop" || !seen.Time.Equal(at) ||
		string(seen.Data) != `{"total":10.5}` || seen.Headers["traceparent"] != "00-x" ||
		seen.Actor != (stufio.Actor{Type: "user", ID: "u-1"}) || seen.Delivery.Attempt != 2 ||
		seen.Delivery.StreamSequence != 9 || seen.Delivery.Consumer != "orders" {
		t.Errorf("event = %+v", seen)
	}
	if total := seen.Payload.(map[string]any)["total"]; total != 10.5 {
		t.Errorf("payload total = %v", total)
	}
}

func TestLegacyReturns(t *testing.T) {
	cases := []struct {
		returned any
		result   string
		metrics  string
		publish  int
	}{
		{nil, "<nil>", "map[]", 0},
		{map[string]any{"metrics": map[string]any{"items_processed": 42}}, "<nil>", "map[items_processed:42]", 0},
		{map[string]any{"result": map[string]any{"status": "ok"}}, "map[status:ok]", "map[]", 0},
		{map[string]any{"publish": []any{map[string]any{"event_type": "user.notified", "payload": map[string]any{"x": 1}}}}, "<nil>", "map[]", 1},
		{"plain", "plain", "map[]", 0},
		{map[string]any{"status": "ok"}, "map[status:ok]", "map[]", 0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.returned), func(t *testing.T) {
			s := stufio.NewServer()
			s.Subscribe("order.created", stufio.Legacy(func(ctx context.Context, ev *stufio.Event) (any, error) {
				return c.returned, nil
			}))
			resp := mustHandle(t, serve(t, s), event("order.created", nil))
			var result any
			if resp.Result != nil {
				result = resp.GetResult().AsInterface()
			}
			if fmt.Sprint(result) != c.result || fmt.Sprint(metricsOf(resp)) != c.metrics || len(resp.GetPublish()) != c.publish {
				t.Errorf("got result %v metrics %v publish %v", result, metricsOf(resp), resp.GetPublish())
			}
		})
	}
}

func TestErrorsBecomeStatusCodes(t *testing.T) {
	type order struct {
		Total float64 `json:"total"`
	}
	cases := []struct {
		name    string
		handler stufio.HandlerFunc
		code    codes.Code
	}{
		{"retryable", failWith(stufio.Retryable(errors.New("db down"))), codes.Unavailable},
		{"plain error", failWith(errors.New("bug")), codes.Internal},
		{"permanent", failWith(stufio.Permanent(errors.New("bad order"))), codes.InvalidArgument},
		{"grpc status", failWith(status.Error(codes.FailedPrecondition, "not yet")), codes.FailedPrecondition},
		{"deadline", failWith(fmt.Errorf("calling stock: %w", context.DeadlineExceeded)), codes.DeadlineExceeded},
		{"panic", func(context.Context, *stufio.Event) (*stufio.Response, error) { panic("boom") }, codes.Internal},
		{"bad payload", stufio.Typed(func(ctx context.Context, ev *stufio.Event, o order) (*stufio.Response, error) {
			return nil, nil
		}), codes.InvalidArgument},
		{"unencodable result", func(context.Context, *stufio.Event) (*stufio.Response, error) {
			return stufio.WithResult(make(chan int)), nil
		}, codes.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := stufio.NewServer()
			s.Subscribe("order.created", c.handler)
			_, err := handle(t, serve(t, s), event("order.created", map[string]any{"total": "not a number"}))
			if got := status.Code(err); got != c.code {
				t.Errorf("code = %v, want %v (%v)", got, c.code, err)
			}
		})
	}
}

func failWith(err error) stufio.HandlerFunc {
	return func(context.Context, *stufio.Event) (*stufio.Response, error) { return nil, err }
}

func TestUnknownEventTypeIsUnimplemented(t *testing.T) {
	s := stufio.NewServer()
	s.Subscribe("order.created", failWith(nil))
	if _, err := handle(t, serve(t, s), event("user.created", nil)); status.Code(err) != codes.Unimplemented {
		t.Errorf("err = %v", err)
	}
}

func TestTypedPayload(t *testing.T) {
	type item struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	}
	type order struct {
		Total float64 `json:"total"`
		Items []item  `json:"items"`
	}
	s := stufio.NewServer()
	s.Subscribe("order.created", stufio.Typed(func(ctx context.Context, ev *stufio.Event, o order) (*stufio.Response, error) {
		return stufio.WithResult([]any{o.Total, o.Items[0].Qty}), nil
	}))
	resp := mustHandle(t, serve(t, s), event("order.created", map[string]any{
		"total": 10.5, "items": []any{map[string]any{"sku": "a", "qty": 2}},
	}))
	if got := fmt.Sprint(resp.GetResult().AsInterface()); got != "[10.5 2]" {
		t.Errorf("result = %v", got)
	}
}

func TestDescribe(t *testing.T) {
	s := stufio.NewServer(stufio.WithName("orders"), stufio.WithVersion("1.2.3"))
	s.Subscribe("order.created", failWith(nil), stufio.DeliveryMode("jetstream"), stufio.Stream("EVENTS"),
		stufio.Durable("orders"), stufio.MaxDeliver(5), stufio.MaxInFlight(8))
	s.Subscribe("order.*", failWith(nil), stufio.DeliveryMode("core"), stufio.QueueGroup("audit"))
	desc, err := eventsv1.NewEventHandlerClient(serve(t, s)).Describe(context.Background(), &eventsv1.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if desc.GetName() != "orders" || desc.GetVersion() != "1.2.3" || desc.GetSdk() != "go" {
		t.Errorf("description = %v", desc)
	}
	var got []string
	for _, d := range desc.GetSubscriptions() {
		got = append(got, fmt.Sprintf("%s/%s/%s/%s/%s/%d/%d", d.GetEventType(), d.GetDelivery(), d.GetStream(),
			d.GetDurable(), d.GetQueueGroup(), d.GetMaxInFlight(), d.GetMaxDeliver()))
	}
	want := "[order.created/jetstream/EVENTS/orders//8/5 order.*/core///audit/0/0]"
	if fmt.Sprint(got) != want {
		t.Errorf("subscriptions = %v, want %v", got, want)
	}
}

func TestInvalidPatternsPanic(t *testing.T) {
	for _, bad := range []string{"order..created", "order.>.x", "order created", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Subscribe(%q) did not panic", bad)
				}
			}()
			stufio.NewServer().Subscribe(bad, failWith(nil))
		}()
	}
}

func TestWildcardsAndTheDeliveringConsumer(t *testing.T) {
	s := stufio.NewServer()
	s.Subscribe("order.*", func(context.Context, *stufio.Event) (*stufio.Response, error) {
		return (&stufio.Response{}).AddMetrics(map[string]any{"audited": true}), nil
	}, stufio.Durable("audit"))
	s.Subscribe("order.created", func(context.Context, *stufio.Event) (*stufio.Response, error) {
		return stufio.WithResult("created").AddMetrics(map[string]any{"processed": true}), nil
	}, stufio.Durable("orders"))
	conn := serve(t, s)

	if got := metricsOf(mustHandle(t, conn, event("order.cancelled", nil))); fmt.Sprint(got) != "map[audited:true]" {
		t.Errorf("order.cancelled metrics = %v", got)
	}
	msg := event("order.created", nil)
	msg.Delivery = &eventsv1.Delivery{Consumer: "orders"}
	if got := metricsOf(mustHandle(t, conn, msg)); fmt.Sprint(got) != "map[processed:true]" {
		t.Errorf("via orders metrics = %v", got)
	}
	both := mustHandle(t, conn, event("order.created", nil))
	if got := metricsOf(both); fmt.Sprint(got) != "map[audited:true processed:true]" || both.GetResult().GetStringValue() != "created" {
		t.Errorf("both = %v", both)
	}
}

func TestHealthIsServing(t *testing.T) {
	s := stufio.NewServer()
	s.Subscribe(">", failWith(nil))
	health := healthpb.NewHealthClient(serve(t, s))
	for _, service := range []string{"", "stufio.events.v1.EventHandler"} {
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, %v", service, resp, err)
		}
	}
}

func TestUnixSocket(t *testing.T) {
	address := "unix://" + filepath.Join(t.TempDir(), "run", "handler.sock")
	lis, err := stufio.Listen(address)
	if err != nil {
		t.Fatal(err)
	}
	s := stufio.NewServer()
	s.Subscribe(">", func(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
		return stufio.WithResult(ev.EventID), nil
	})
	resp := mustHandle(t, serveOn(t, s, lis, address), event("order.created", nil))
	if resp.GetResult().GetStringValue() != "evt-12345678-abcd" {
		t.Errorf("result = %v", resp.GetResult())
	}
}

func TestHandleStreamAnswersWithTheEventID(t *testing.T) {
	s := stufio.NewServer()
	s.Subscribe("order.created", func(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
		i := int(ev.Payload.(map[string]any)["i"].(float64))
		time.Sleep(time.Duration(5-i) * 20 * time.Millisecond) // later events finish first
		switch i {
		case 3:
			return nil, stufio.Retryable(errors.New("flaky"))
		case 4:
			return nil, stufio.Permanent(errors.New("hopeless"))
		}
		return stufio.WithResult(i), nil
	})
	stream, err := eventsv1.NewEventHandlerClient(serve(t, s)).HandleStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		msg := event("order.created", map[string]any{"i": i})
		msg.EventId = fmt.Sprintf("e-%d", i)
		if err := stream.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	got := map[string]*eventsv1.HandlerResponse{}
	var order []string
	for {
		resp, err := stream.Recv()
		if err != nil {
			break
		}
		got[resp.GetEventId()] = resp
		order = append(order, resp.GetEventId())
	}
	if sort.StringsAreSorted(order) || len(got) != 5 {
		t.Errorf("responses arrived as %v; want all five, out of order", order)
	}
	for i := range 3 {
		if r := got[fmt.Sprintf("e-%d", i)]; r.GetResult().GetNumberValue() != float64(i) || r.GetErrorCode() != 0 {
			t.Errorf("e-%d = %v", i, r)
		}
	}
	// A failure carries the status code a unary call would have had.
	if r := got["e-3"]; codes.Code(r.GetErrorCode()) != codes.Unavailable || r.GetErrorMessage() != "flaky" {
		t.Errorf("e-3 = %v", r)
	}
	if r := got["e-4"]; codes.Code(r.GetErrorCode()) != codes.InvalidArgument || r.GetErrorMessage() != "hopeless" {
		t.Errorf("e-4 = %v", r)
	}
}

func TestMetricsProviderStateIsPerEvent(t *testing.T) {
	api := stufio.NewCounters("api")
	s := stufio.NewServer(stufio.WithMetricsProvider(api))
	s.Subscribe("order.created", func(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
		calls := int(ev.Payload.(map[string]any)["calls"].(float64))
		for range calls {
			api.Add(ctx, "calls", 1)
			api.Add(ctx, "time_ms", 10)
			time.Sleep(2 * time.Millisecond) // let the other events interleave
		}
		return (&stufio.Response{}).AddMetrics(map[string]any{"own": calls}), nil
	})
	conn := serve(t, s)
	var wg sync.WaitGroup
	for n := 1; n <= 16; n++ {
		wg.Go(func() {
			resp, err := handle(t, conn, event("order.created", map[string]any{"calls": n}))
			if err != nil {
				t.Error(err)
				return
			}
			want := fmt.Sprintf("map[api_calls:%d api_time_ms:%d own:%d]", n, 10*n, n)
			if got := fmt.Sprint(metricsOf(resp)); got != want {
				t.Errorf("metrics = %v, want %v", got, want)
			}
		})
	}
	wg.Wait()
}

func TestStopLetsCallsInFlightFinish(t *testing.T) {
	started := make(chan struct{})
	s := stufio.NewServer(stufio.WithGracePeriod(5 * time.Second))
	s.Subscribe(">", func(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		return stufio.WithResult("finished"), nil
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, lis) }()
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	result := make(chan *eventsv1.HandlerResponse, 1)
	go func() {
		resp, err := handle(t, conn, event("order.created", nil))
		if err != nil {
			t.Error(err)
		}
		result <- resp
	}()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if resp := <-result; resp.GetResult().GetStringValue() != "finished" {
		t.Errorf("in-flight call = %v", resp)
	}
}

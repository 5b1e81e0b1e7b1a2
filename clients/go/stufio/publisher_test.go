package stufio_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	eventsv1 "github.com/stufio/stufio-sidecar/clients/go/gen/stufio/events/v1"
	"github.com/stufio/stufio-sidecar/clients/go/stufio"
)

// fakePublisher is a stand-in for the sidecar's EventPublisher: it records what it was sent and answers
// with canned responses.
type fakePublisher struct {
	eventsv1.UnimplementedEventPublisherServer
	mu       sync.Mutex
	publish  []*eventsv1.PublishRequest
	requests []*eventsv1.RequestRequest
}

func (f *fakePublisher) Publish(ctx context.Context, req *eventsv1.PublishRequest) (*eventsv1.PublishResponse, error) {
	f.mu.Lock()
	f.publish = append(f.publish, req)
	f.mu.Unlock()
	if req.GetEvent().GetEventType() == "billing.charged" {
		return nil, status.Error(codes.PermissionDenied, `event.event_type: "billing.charged" is not in publish.allow`)
	}
	id := req.GetEventId()
	if id == "" {
		id = "generated-1"
	}
	return &eventsv1.PublishResponse{EventId: id, Subject: "events." + req.GetEvent().GetEventType(), Stream: "EVENTS", Sequence: 7, Duplicate: id == "seen-before"}, nil
}

func (f *fakePublisher) Request(ctx context.Context, req *eventsv1.RequestRequest) (*eventsv1.RequestResponse, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	if req.GetEvent().GetEventType() == "order.bad" {
		return &eventsv1.RequestResponse{EventId: "req-1", Error: "order.bad needs items", ErrorCode: "400"}, nil
	}
	result, _ := structpb.NewValue(map[string]any{"order_id": "ord-" + req.GetEvent().GetEntityId()})
	return &eventsv1.RequestResponse{EventId: "req-1", Result: result}, nil
}

func startFakePublisher(t *testing.T, network, address string) (*fakePublisher, string) {
	t.Helper()
	lis, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakePublisher{}
	gs := grpc.NewServer()
	eventsv1.RegisterEventPublisherServer(gs, fake)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return fake, stufio.DialAddress(lis)
}

func newPublisher(t *testing.T, address string) *stufio.Publisher {
	t.Helper()
	p, err := stufio.NewPublisher(address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPublisherPublish(t *testing.T) {
	fake, address := startFakePublisher(t, "tcp", "127.0.0.1:0")
	p := newPublisher(t, address)
	res, err := p.Publish(context.Background(), stufio.PublishEventInfo{
		EventType: "order.created", EntityID: "cust-1", Payload: map[string]any{"total": 10.5},
		CorrelationID: "corr-1", Headers: map[string]string{"x-trace": "1"}, Actor: &stufio.Actor{Type: "user", ID: "alice"},
	}, stufio.WithEventID("evt-1"), stufio.WithCausationID("cause-1"))
	if err != nil {
		t.Fatal(err)
	}
	want := stufio.PublishResult{EventID: "evt-1", Subject: "events.order.created", Stream: "EVENTS", Sequence: 7}
	if *res != want {
		t.Errorf("result = %+v, want %+v", *res, want)
	}
	payload, _ := structpb.NewValue(map[string]any{"total": 10.5})
	wantReq := &eventsv1.PublishRequest{
		Event: &eventsv1.PublishEventInfo{
			EventType: "order.created", EntityId: "cust-1", Payload: payload, CorrelationId: "corr-1",
			Headers: map[string]string{"x-trace": "1"}, Actor: &eventsv1.Actor{Type: "user", Id: "alice"},
		},
		EventId: "evt-1", CausationId: "cause-1",
	}
	if len(fake.publish) != 1 || !proto.Equal(fake.publish[0], wantReq) {
		t.Errorf("sent %v, want %v", fake.publish, wantReq)
	}

	again, err := p.Publish(context.Background(), stufio.PublishEventInfo{EventType: "order.created"}, stufio.WithEventID("seen-before"))
	if err != nil || !again.Duplicate {
		t.Errorf("duplicate publish = %+v, %v", again, err)
	}
}

func TestPublisherPublishRawData(t *testing.T) {
	fake, address := startFakePublisher(t, "tcp", "127.0.0.1:0")
	p := newPublisher(t, address)
	if _, err := p.Publish(context.Background(), stufio.PublishEventInfo{EventType: "file.uploaded", Data: []byte("raw"), ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	got := fake.publish[0].GetEvent()
	if string(got.GetData()) != "raw" || got.GetContentType() != "text/plain" || got.GetPayload() != nil {
		t.Errorf("sent %v", got)
	}
}

func TestPublisherErrorsAreStatuses(t *testing.T) {
	_, address := startFakePublisher(t, "tcp", "127.0.0.1:0")
	p := newPublisher(t, address)
	_, err := p.Publish(context.Background(), stufio.PublishEventInfo{EventType: "billing.charged"})
	if st := status.Convert(err); st.Code() != codes.PermissionDenied {
		t.Errorf("err = %v", err)
	}
	if _, err := p.Publish(context.Background(), stufio.PublishEventInfo{EventType: "x.y", Payload: func() {}}); err == nil {
		t.Error("a payload that cannot be JSON was sent")
	}
}

func TestPublisherRequest(t *testing.T) {
	fake, address := startFakePublisher(t, "tcp", "127.0.0.1:0")
	p := newPublisher(t, address)
	res, err := p.Request(context.Background(), stufio.PublishEventInfo{EventType: "order.created", EntityID: "cust-2"}, 1500*time.Millisecond, stufio.WithEventID("req-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := res.Result.(map[string]any); !ok || got["order_id"] != "ord-cust-2" || res.EventID != "req-1" || res.Error != "" {
		t.Errorf("result = %+v", res)
	}
	if r := fake.requests[0]; r.GetTimeoutMs() != 1500 || r.GetEventId() != "req-1" {
		t.Errorf("sent %v", r)
	}

	failed, err := p.Request(context.Background(), stufio.PublishEventInfo{EventType: "order.bad"}, 0)
	if err != nil || failed.Error != "order.bad needs items" || failed.ErrorCode != "400" || failed.Result != nil {
		t.Errorf("failed request = %+v, %v", failed, err)
	}
	if r := fake.requests[1]; r.GetTimeoutMs() != uint32(stufio.DefaultPublishTimeout.Milliseconds()) {
		t.Errorf("default timeout sent as %d ms", r.GetTimeoutMs())
	}
}

func TestPublisherOnAUnixSocketFromTheEnvironment(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "publisher.sock")
	_, address := startFakePublisher(t, "unix", socket)
	if address != "unix://"+socket {
		t.Fatalf("address = %s", address)
	}
	t.Setenv(stufio.PublisherAddressEnv, address)
	p := newPublisher(t, "")
	res, err := p.Publish(context.Background(), stufio.PublishEventInfo{EventType: "order.created"})
	if err != nil || res.EventID != "generated-1" {
		t.Errorf("publish = %+v, %v", res, err)
	}
}

func TestNewPublisherNeedsAnAddress(t *testing.T) {
	t.Setenv(stufio.PublisherAddressEnv, "")
	if _, err := stufio.NewPublisher(""); err == nil {
		t.Error("no error without an address")
	}
}

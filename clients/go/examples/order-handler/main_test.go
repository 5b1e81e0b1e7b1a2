package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	eventsv1 "github.com/stufio/stufio-sidecar/clients/go/gen/stufio/events/v1"
)

var order = map[string]any{
	"user_id": "u-1", "total": 10.5, "items": []any{map[string]any{"sku": "a", "qty": 1}}, "shipping_address": "1 Main St",
}

func client(t *testing.T) eventsv1.EventHandlerClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newServer().ServeListener(ctx, lis) }()
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return eventsv1.NewEventHandlerClient(conn)
}

func call(t *testing.T, c eventsv1.EventHandlerClient, msg *eventsv1.EventMessage, payload any) *eventsv1.HandlerResponse {
	t.Helper()
	var err error
	if msg.Payload, err = structpb.NewValue(payload); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Handle(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestOrderCreated(t *testing.T) {
	msg := &eventsv1.EventMessage{EventId: "evt-1", EventType: "order.created", EntityId: "o-42", CorrelationId: "corr-7"}
	resp := call(t, client(t), msg, order)

	if got := fmt.Sprint(resp.GetResult().AsInterface()); got != "map[order_id:ord-o-42]" {
		t.Errorf("result = %v", got)
	}
	metrics := map[string]any{}
	for k, v := range resp.GetMetrics().GetValues() {
		metrics[k] = v.AsInterface()
	}
	if got := fmt.Sprint(metrics); got != "map[items_count:1 order_total:10.5 success:true]" {
		t.Errorf("metrics = %v", got)
	}
	want := []string{
		"order.fulfillment ord-o-42 corr-7 map[order_id:ord-o-42 shipping_address:1 Main St]",
		"user.notification u-1 corr-7 map[message:Order #ord-o-42 received user_id:u-1]",
	}
	if len(resp.GetPublish()) != len(want) {
		t.Fatalf("publish = %v", resp.GetPublish())
	}
	for i, p := range resp.GetPublish() {
		got := fmt.Sprintf("%s %s %s %v", p.GetEventType(), p.GetEntityId(), p.GetCorrelationId(), p.GetPayload().AsInterface())
		if got != want[i] {
			t.Errorf("publish[%d] = %s, want %s", i, got, want[i])
		}
	}
}

func TestOrderIDWithoutEntityIDUsesTheEventID(t *testing.T) {
	msg := &eventsv1.EventMessage{EventId: "abcdef0123456789", EventType: "order.created"}
	resp := call(t, client(t), msg, order)
	if got := resp.GetResult().GetStructValue().GetFields()["order_id"].GetStringValue(); got != "ord-abcdef01" {
		t.Errorf("order_id = %q", got)
	}
}

func TestAMalformedOrderIsDeadLettered(t *testing.T) {
	c := client(t)
	for eventType, payload := range map[string]any{
		"order.created": map[string]any{"user_id": "u-1"},
		"order.quote":   map[string]any{"total": "ten"},
	} {
		msg := &eventsv1.EventMessage{EventId: "evt-1", EventType: eventType}
		msg.Payload, _ = structpb.NewValue(payload)
		_, err := c.Handle(context.Background(), msg)
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), eventType+" needs a JSON payload") {
			t.Errorf("%s: err = %v", eventType, err)
		}
	}
}

func TestOrderQuote(t *testing.T) {
	msg := &eventsv1.EventMessage{EventId: "evt-1", EventType: "order.quote", EntityId: "o-1", CorrelationId: "c-1"}
	resp := call(t, client(t), msg, map[string]any{"total": 10.5})
	if got := fmt.Sprint(resp.GetResult().AsInterface()); got != "map[total_with_tax:12.6]" {
		t.Errorf("result = %v", got)
	}
	p := resp.GetPublish()
	if len(p) != 1 || p[0].GetEventType() != "order.quoted" || p[0].GetEntityId() != "o-1" || p[0].GetCorrelationId() != "c-1" {
		t.Errorf("publish = %v", p)
	}
}

// TestProcess runs the command the way the demo does: the first stdout line names the address, and
// SIGTERM stops it cleanly.
func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "order-handler")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-address", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var listening struct {
		Listening string `json:"listening"`
		Port      int    `json:"port"`
	}
	if err := json.NewDecoder(stdout).Decode(&listening); err != nil || listening.Port == 0 {
		t.Fatalf("first line: %+v, %v", listening, err)
	}
	conn, err := grpc.NewClient("passthrough:///"+listening.Listening, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := &eventsv1.EventMessage{EventId: "evt-1", EventType: "order.created", EntityId: "o-9"}
	if resp := call(t, eventsv1.NewEventHandlerClient(conn), msg, order); resp.GetResult().GetStructValue().GetFields()["order_id"].GetStringValue() != "ord-o-9" {
		t.Errorf("response = %v", resp)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// Command order-handler is the seed's order example as a stufio sidecar handler.
//
//	go run ./examples/order-handler -address 127.0.0.1:50051   (or STUFIO_HANDLER_ADDRESS=...; port 0 = any)
//
// It prints {"listening": ADDRESS, "port": PORT} as its first line on stdout, like the TypeScript example,
// so the demo and tests can start any language's example the same way. The order id follows the rule every
// example uses, so their results compare equal: "ord-" + entity_id, else "ord-" + event_id[:8].
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/stufio/stufio-sidecar/clients/go/stufio"
)

func orderID(ev *stufio.Event) string {
	if ev.EntityID != "" {
		return "ord-" + ev.EntityID
	}
	return "ord-" + ev.EventID[:min(8, len(ev.EventID))]
}

func handleOrderCreated(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
	order, _ := ev.Payload.(map[string]any)
	items, ok := order["items"].([]any)
	if !ok {
		return nil, stufio.Permanent(errors.New("order.created needs a JSON payload with items"))
	}
	id := orderID(ev)
	userID, _ := order["user_id"].(string)
	shipping, _ := order["shipping_address"].(string)
	return &stufio.Response{
		Result:  map[string]any{"order_id": id},
		Metrics: map[string]any{"success": true, "order_total": order["total"], "items_count": len(items)},
		Publish: []stufio.PublishEventInfo{
			{
				EventType:     "order.fulfillment",
				EntityID:      id,
				Payload:       map[string]any{"order_id": id, "shipping_address": shipping},
				CorrelationID: ev.CorrelationID,
			},
			{
				EventType:     "user.notification",
				EntityID:      userID,
				Payload:       map[string]any{"user_id": order["user_id"], "message": fmt.Sprintf("Order #%s received", id)},
				CorrelationID: ev.CorrelationID,
			},
		},
	}, nil
}

// handleOrderQuote is request/reply on core NATS: price an order without storing anything.
func handleOrderQuote(ctx context.Context, ev *stufio.Event) (*stufio.Response, error) {
	order, _ := ev.Payload.(map[string]any)
	total, ok := order["total"].(float64)
	if !ok {
		return nil, stufio.Permanent(errors.New("order.quote needs a JSON payload with a numeric total"))
	}
	// JavaScript's Math.round (half up), so every example agrees.
	withTax := math.Floor(total*1.2*100+0.5) / 100
	return &stufio.Response{
		Result:  map[string]any{"total_with_tax": withTax},
		Metrics: map[string]any{"success": true, "order_total": total},
		Publish: []stufio.PublishEventInfo{{
			EventType:     "order.quoted",
			EntityID:      ev.EntityID,
			Payload:       map[string]any{"total_with_tax": withTax},
			CorrelationID: ev.CorrelationID,
		}},
	}, nil
}

func newServer() *stufio.Server {
	s := stufio.NewServer(stufio.WithName("order-handler"))
	s.Subscribe("order.created", handleOrderCreated, stufio.DeliveryMode("jetstream"), stufio.Durable("order-handler"))
	s.Subscribe("order.quote", handleOrderQuote, stufio.DeliveryMode("core"), stufio.QueueGroup("order-handler"))
	return s
}

func main() {
	address := flag.String("address", envOr("STUFIO_HANDLER_ADDRESS", "127.0.0.1:50051"),
		"unix:///path.sock, host:port or :port (default: $STUFIO_HANDLER_ADDRESS)")
	flag.Parse()
	if err := run(*address); err != nil {
		slog.Error("order-handler failed", "error", err)
		os.Exit(1)
	}
}

func run(address string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	lis, err := stufio.Listen(address)
	if err != nil {
		return err
	}
	port := 0
	if tcp, ok := lis.Addr().(*net.TCPAddr); ok {
		port = tcp.Port
	}
	line, _ := json.Marshal(map[string]any{"listening": stufio.DialAddress(lis), "port": port})
	fmt.Println(string(line))
	return newServer().ServeListener(ctx, lis)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

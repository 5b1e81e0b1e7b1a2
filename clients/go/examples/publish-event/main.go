// Command publish-event publishes one event through the sidecar's EventPublisher (or, with -request,
// publishes it and waits for the handler's result) and prints the sidecar's answer as one JSON line.
//
//	go run ./examples/publish-event -address 127.0.0.1:50052 -type order.created \
//	    -payload '{"user_id":"u-1","items":[{"sku":"a","qty":1}]}' -entity-id cust-1
//
// The address defaults to $STUFIO_PUBLISHER_ADDRESS (the sidecar's publisher.listen).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/stufio/stufio-sidecar/clients/go/stufio"
)

func main() {
	address := flag.String("address", "", "the sidecar's EventPublisher: unix:///path.sock or host:port (default: $STUFIO_PUBLISHER_ADDRESS)")
	eventType := flag.String("type", "", "event type, e.g. order.created (required)")
	payload := flag.String("payload", "null", "JSON payload")
	entityID := flag.String("entity-id", "", "entity id (ce-subject)")
	correlationID := flag.String("correlation-id", "", "correlation id")
	eventID := flag.String("event-id", "", "event id (makes a retried publish idempotent)")
	request := flag.Bool("request", false, "wait for the handler's result")
	timeout := flag.Duration("timeout", 10*time.Second, "how long -request waits")
	flag.Parse()
	if err := run(*address, *eventType, *payload, *entityID, *correlationID, *eventID, *request, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "publish-event:", err)
		os.Exit(1)
	}
}

func run(address, eventType, payload, entityID, correlationID, eventID string, request bool, timeout time.Duration) error {
	if eventType == "" {
		return fmt.Errorf("-type is required")
	}
	var body any
	if err := json.Unmarshal([]byte(payload), &body); err != nil {
		return fmt.Errorf("-payload: %w", err)
	}
	p, err := stufio.NewPublisher(address)
	if err != nil {
		return err
	}
	defer p.Close()
	ev := stufio.PublishEventInfo{EventType: eventType, EntityID: entityID, Payload: body, CorrelationID: correlationID}
	var out any
	if request {
		out, err = p.Request(context.Background(), ev, timeout, stufio.WithEventID(eventID))
	} else {
		out, err = p.Publish(context.Background(), ev, stufio.WithEventID(eventID))
	}
	if err != nil {
		return err
	}
	line, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

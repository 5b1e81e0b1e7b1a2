"""The seed's order example as a sidecar handler.

    python order_handler.py --address 127.0.0.1:50051     (or STUFIO_HANDLER_ADDRESS=...; port 0 = any)

It prints {"listening": ADDRESS, "port": PORT} as its first line on stdout, like the TypeScript example, so
the demo and tests can start any language's example the same way. The order id follows the rule every
example uses, so their results compare equal: "ord-" + entity_id, else "ord-" + event_id[:8].
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os

from stufio_client import (
    Event,
    HandlerResponse,
    HandlerServer,
    NonRetryableError,
    PublishEventInfo,
    event_subscriber,
    serve,
)


def order_id_of(event: Event) -> str:
    return f"ord-{event.entity_id or event.event_id[:8]}"


@event_subscriber("order.created", delivery="jetstream", durable="order-handler")
async def handle_order_created(event: Event) -> HandlerResponse:
    """Process a new order."""
    order = event.payload
    if not isinstance(order, dict) or not isinstance(order.get("items"), list):
        raise NonRetryableError("order.created needs a JSON payload with items")
    order_id = order_id_of(event)
    try:
        return HandlerResponse(
            result={"order_id": order_id},
            metrics={
                "success": True,
                "order_total": order.get("total"),
                "items_count": len(order["items"]),
            },
            publish=[
                PublishEventInfo(
                    event_type="order.fulfillment",
                    entity_id=order_id,
                    payload={"order_id": order_id, "shipping_address": order.get("shipping_address", "")},
                    correlation_id=event.correlation_id,
                ),
                PublishEventInfo(
                    event_type="user.notification",
                    entity_id=order.get("user_id", ""),
                    payload={"user_id": order.get("user_id"), "message": f"Order #{order_id} received"},
                    correlation_id=event.correlation_id,
                ),
            ],
        )
    except Exception as e:  # the seed's pattern: report the failure in the metrics; the event is acked
        return HandlerResponse().add_metrics({"success": False, "error": str(e)})


@event_subscriber("order.quote", delivery="core", queue_group="order-handler")
async def handle_order_quote(event: Event) -> HandlerResponse:
    """Request/reply on core NATS: price an order without storing anything."""
    total = event.payload.get("total") if isinstance(event.payload, dict) else None
    if isinstance(total, bool) or not isinstance(total, (int, float)):
        raise NonRetryableError("order.quote needs a JSON payload with a numeric total")
    # JavaScript's Math.round (half up), not Python's round (half even), so every example agrees.
    total_with_tax = math.floor(total * 1.2 * 100 + 0.5) / 100
    return HandlerResponse(
        result={"total_with_tax": total_with_tax},
        metrics={"success": True, "order_total": total},
        publish=[
            PublishEventInfo(
                event_type="order.quoted",
                entity_id=event.entity_id,
                payload={"total_with_tax": total_with_tax},
                correlation_id=event.correlation_id,
            )
        ],
    )


def announce(server: HandlerServer) -> None:
    print(json.dumps({"listening": server.address, "port": server.port}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("STUFIO_HANDLER_ADDRESS", "127.0.0.1:50051"),
                        help="unix:///path.sock, host:port or :port (default: $STUFIO_HANDLER_ADDRESS)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve(args.address, name="order-handler", on_started=announce)


if __name__ == "__main__":
    main()

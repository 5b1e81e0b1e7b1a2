"""Publish one event through the sidecar's EventPublisher, or with --request wait for the handler's result,
and print the sidecar's answer as one JSON line.

    python publish_event.py --address 127.0.0.1:50052 --type order.created \\
        --payload '{"user_id": "u-1", "items": [{"sku": "a", "qty": 1}]}' --entity-id cust-1

The address defaults to $STUFIO_PUBLISHER_ADDRESS (the sidecar's publisher.listen).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from stufio_client import EventPublisher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="unix:///path.sock or host:port (default: $STUFIO_PUBLISHER_ADDRESS)")
    parser.add_argument("--type", required=True, dest="event_type", help="event type, e.g. order.created")
    parser.add_argument("--payload", default="null", help="JSON payload")
    parser.add_argument("--entity-id", default="")
    parser.add_argument("--correlation-id", default="")
    parser.add_argument("--event-id", default="", help="makes a retried publish idempotent")
    parser.add_argument("--request", action="store_true", help="wait for the handler's result")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds --request waits")
    args = parser.parse_args()
    fields = {"payload": json.loads(args.payload), "entity_id": args.entity_id, "correlation_id": args.correlation_id}
    with EventPublisher(args.address) as publisher:
        if args.request:
            answer = publisher.request(args.event_type, args.timeout, event_id=args.event_id, **fields)
        else:
            answer = publisher.publish(args.event_type, event_id=args.event_id, **fields)
    print(json.dumps(dataclasses.asdict(answer)), flush=True)


if __name__ == "__main__":
    main()

"""Helpers shared by the tests (pytest puts this directory on sys.path)."""

from __future__ import annotations

from typing import Any

from stufio_client import handler_pb2 as pb
from stufio_client._values import to_python, to_value


def event(event_type: str = "order.created", payload: Any = None, **fields: Any) -> pb.EventMessage:
    msg = pb.EventMessage(event_type=event_type, **{"event_id": "evt-12345678-abcd", **fields})
    if payload is not None:
        msg.payload.CopyFrom(to_value(payload))
    return msg


def metrics_of(response: pb.HandlerResponse) -> dict:
    return {k: to_python(v) for k, v in response.metrics.values.items()}


def result_of(response: pb.HandlerResponse) -> Any:
    return to_python(response.result) if response.HasField("result") else None

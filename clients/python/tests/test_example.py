"""examples/order_handler.py as a process, started the way the demo starts every language's example."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stufio_client import handler_pb2 as pb
from stufio_client import handler_pb2_grpc
from stufio_client._values import to_python
from support import event, metrics_of, result_of

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "order_handler.py"
ORDER = {"user_id": "u-1", "total": 10.5, "items": [{"sku": "a", "qty": 1}], "shipping_address": "1 Main St"}


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[handler_pb2_grpc.EventHandlerStub]:
    log = tmp_path_factory.mktemp("example") / "stderr.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--address", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        assert proc.stdout is not None
        listening = json.loads(proc.stdout.readline() or "null")
        assert listening and listening["port"] > 0, log.read_text()
        with grpc.insecure_channel(listening["listening"]) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            yield handler_pb2_grpc.EventHandlerStub(channel)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, log.read_text()  # SIGTERM is a graceful stop, not a crash
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_order_created(stub: handler_pb2_grpc.EventHandlerStub) -> None:
    response = stub.Handle(event(payload=ORDER, entity_id="o-42", correlation_id="corr-7"))
    assert result_of(response) == {"order_id": "ord-o-42"}
    assert metrics_of(response) == {"success": True, "order_total": 10.5, "items_count": 1}
    fulfillment, notification = response.publish
    assert (fulfillment.event_type, fulfillment.entity_id, fulfillment.correlation_id) == (
        "order.fulfillment", "ord-o-42", "corr-7")
    assert to_python(fulfillment.payload) == {"order_id": "ord-o-42", "shipping_address": "1 Main St"}
    assert (notification.event_type, notification.entity_id, notification.correlation_id) == (
        "user.notification", "u-1", "corr-7")
    assert to_python(notification.payload) == {"user_id": "u-1", "message": "Order #ord-o-42 received"}


def test_order_id_without_entity_id_uses_the_event_id(stub: handler_pb2_grpc.EventHandlerStub) -> None:
    response = stub.Handle(event(payload=ORDER, event_id="abcdef0123456789"))
    assert result_of(response) == {"order_id": "ord-abcdef01"}


@pytest.mark.parametrize("event_type, payload", [("order.created", {"user_id": "u-1"}), ("order.quote", {"total": "ten"})])
def test_a_malformed_order_is_dead_lettered(stub: handler_pb2_grpc.EventHandlerStub, event_type: str, payload: dict) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Handle(event(event_type, payload))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"{event_type} needs a JSON payload")


def test_order_quote(stub: handler_pb2_grpc.EventHandlerStub) -> None:
    response = stub.Handle(event("order.quote", {"total": 10.5}, entity_id="o-1", correlation_id="c-1"))
    assert result_of(response) == {"total_with_tax": 12.6}
    assert metrics_of(response) == {"success": True, "order_total": 10.5}
    (quoted,) = response.publish
    assert (quoted.event_type, quoted.entity_id, quoted.correlation_id) == ("order.quoted", "o-1", "c-1")
    assert to_python(quoted.payload) == {"total_with_tax": 12.6}


def test_describe(stub: handler_pb2_grpc.EventHandlerStub) -> None:
    description = stub.Describe(pb.DescribeRequest())
    assert description.name == "order-handler"
    assert [(s.event_type, s.delivery, s.durable, s.queue_group) for s in description.subscriptions] == [
        ("order.created", "jetstream", "order-handler", ""),
        ("order.quote", "core", "", "order-handler"),
    ]

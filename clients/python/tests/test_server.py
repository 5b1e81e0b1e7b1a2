"""A real server on a free port (and on a unix socket), called through the generated stub."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from stufio_client import (
    Event,
    HandlerResponse,
    NonRetryableError,
    PublishEventInfo,
    RetryableError,
    event_subscriber,
)
from stufio_client import (
    handler_pb2 as pb,
)
from support import event, metrics_of, result_of


def test_handle_round_trip(serving) -> None:
    async def handle(ev: Event) -> HandlerResponse:
        return HandlerResponse(
            result={"seen": ev.payload["n"]},
            metrics={"success": True, "n": ev.payload["n"]},
            publish=[
                PublishEventInfo(
                    event_type="order.fulfillment",
                    entity_id="ord-1",
                    payload={"order_id": "ord-1"},
                    correlation_id=ev.correlation_id,
                    headers={"x-trace": "1"},
                    delay_ms=250,
                )
            ],
        )

    stub, _ = serving({"order.created": handle})
    response = stub.Handle(event(payload={"n": 7}, correlation_id="corr-1"))
    assert result_of(response) == {"seen": 7}
    assert metrics_of(response) == {"success": True, "n": 7}
    (follow_up,) = response.publish
    assert follow_up.event_type == "order.fulfillment"
    assert follow_up.entity_id == "ord-1"
    assert follow_up.correlation_id == "corr-1"
    assert dict(follow_up.headers) == {"x-trace": "1"}
    assert follow_up.delay_ms == 250
    assert response.disposition == pb.DISPOSITION_ACK


def test_event_fields_reach_the_handler(serving) -> None:
    seen: list[Event] = []
    stub, _ = serving(lambda ev: seen.append(ev))
    msg = event(
        payload={"total": 10.5, "items": [{"sku": "a", "qty": 1}]},
        entity_id="o-1",
        correlation_id="c-1",
        causation_id="e-0",
        source="shop",
        content_type="application/json",
        data=b'{"total":10.5}',
        headers={"traceparent": "00-x"},
        actor=pb.Actor(type="user", id="u-1"),
        delivery=pb.Delivery(subject="events.order.created", attempt=2, stream="EVENTS", stream_sequence=9,
                             reply_expected=True, consumer="order-handler", mode="jetstream"),
        hops=1,
    )
    msg.time.FromDatetime(datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC))
    stub.Handle(msg)
    (ev,) = seen
    assert ev.payload == {"total": 10.5, "items": [{"sku": "a", "qty": 1}]}
    assert isinstance(ev.payload["items"][0]["qty"], int)
    assert (ev.event_id, ev.entity_id, ev.correlation_id, ev.causation_id) == ("evt-12345678-abcd", "o-1", "c-1", "e-0")
    assert ev.time == datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
    assert ev.data == b'{"total":10.5}'
    assert ev.headers == {"traceparent": "00-x"}
    assert (ev.actor.type, ev.actor.id) == ("user", "u-1")
    assert (ev.delivery.attempt, ev.delivery.stream_sequence, ev.delivery.consumer) == (2, 9, "order-handler")
    assert ev.hops == 1


@pytest.mark.parametrize(
    "returned, result, metrics, publish",
    [
        (None, None, {}, []),
        ({"metrics": {"items_processed": 42}}, None, {"items_processed": 42}, []),
        ({"result": {"status": "ok"}}, {"status": "ok"}, {}, []),
        ({"publish": [{"event_type": "user.notified", "payload": {"x": 1}}]}, None, {}, ["user.notified"]),
        ("plain", "plain", {}, []),
        ([1, 2], [1, 2], {}, []),
    ],
)
def test_legacy_returns(serving, returned: Any, result: Any, metrics: dict, publish: list) -> None:
    stub, _ = serving({"order.created": lambda ev: returned})
    response = stub.Handle(event())
    assert result_of(response) == result
    assert metrics_of(response) == metrics
    assert [p.event_type for p in response.publish] == publish


def test_sync_handlers_run_in_a_worker_thread_and_async_ones_on_the_loop(serving) -> None:
    def sync_handler(ev: Event) -> dict:
        return {"result": threading.current_thread().name}

    async def async_handler(ev: Event) -> dict:
        await asyncio.sleep(0)
        return {"result": threading.current_thread().name}

    stub, _ = serving({"a.sync": sync_handler, "a.async": async_handler})
    assert result_of(stub.Handle(event("a.sync"))).startswith("stufio-handler_")
    assert result_of(stub.Handle(event("a.async"))) == "stufio-handler-loop"


@pytest.mark.parametrize(
    "exc, code",
    [
        (RetryableError("db down"), grpc.StatusCode.UNAVAILABLE),
        (RuntimeError("bug"), grpc.StatusCode.INTERNAL),
        (NonRetryableError("bad order"), grpc.StatusCode.INVALID_ARGUMENT),
        (ValueError("negative total"), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
@pytest.mark.parametrize("is_async", [False, True])
def test_exceptions_become_status_codes(serving, exc: Exception, code: grpc.StatusCode, is_async: bool) -> None:
    def fail(ev: Event) -> None:
        raise exc

    async def fail_async(ev: Event) -> None:
        raise exc

    stub, _ = serving({"order.created": fail_async if is_async else fail})
    with pytest.raises(grpc.RpcError) as info:
        stub.Handle(event())
    assert info.value.code() == code
    assert str(exc) in info.value.details()


def test_a_response_that_cannot_be_encoded_is_dead_lettered(serving) -> None:
    stub, _ = serving({"order.created": lambda ev: {"result": object()}})
    with pytest.raises(grpc.RpcError) as info:
        stub.Handle(event())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid handler response" in info.value.details()


def test_unknown_event_type_is_unimplemented(serving) -> None:
    stub, _ = serving({"order.created": lambda ev: None})
    with pytest.raises(grpc.RpcError) as info:
        stub.Handle(event("user.created"))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_describe_reports_decorated_subscriptions(serving) -> None:
    @event_subscriber("order.created", delivery="jetstream", stream="EVENTS", durable="orders", max_deliver=5)
    @event_subscriber("order.*", delivery="core", queue_group="audit")
    def handler(ev: Event) -> None:
        return None

    stub, _ = serving(name="orders", version="1.2.3")  # handlers=None: what @event_subscriber registered
    description = stub.Describe(pb.DescribeRequest())
    assert (description.name, description.version, description.sdk) == ("orders", "1.2.3", "python")
    assert [(s.event_type, s.delivery, s.stream, s.durable, s.queue_group, s.max_deliver)
            for s in description.subscriptions] == [
        ("order.*", "core", "", "", "audit", 0),
        ("order.created", "jetstream", "EVENTS", "orders", "", 5),
    ]


def test_a_catch_all_function_declares_nothing(serving) -> None:
    stub, _ = serving(lambda ev: ev.event_type)
    assert list(stub.Describe(pb.DescribeRequest()).subscriptions) == []
    assert result_of(stub.Handle(event("any.thing.at.all"))) == "any.thing.at.all"


def test_wildcards_and_the_delivering_consumer_pick_the_handler(serving) -> None:
    @event_subscriber("order.*", durable="audit")
    def audit(ev: Event) -> dict:
        return {"metrics": {"audited": True}}

    @event_subscriber("order.created", durable="orders")
    def orders(ev: Event) -> dict:
        return {"result": "created", "metrics": {"processed": True}}

    stub, _ = serving([audit, orders])
    assert metrics_of(stub.Handle(event("order.cancelled"))) == {"audited": True}
    only_orders = stub.Handle(event(delivery=pb.Delivery(consumer="orders")))
    assert (result_of(only_orders), metrics_of(only_orders)) == ("created", {"processed": True})
    both = stub.Handle(event())  # consumer unknown: every matching subscriber runs, as in the seed
    assert (result_of(both), metrics_of(both)) == ("created", {"audited": True, "processed": True})


def test_invalid_patterns_are_refused() -> None:
    for bad in ("order..created", "order.>.x", "order created", ""):
        with pytest.raises(ValueError):
            event_subscriber(bad)(lambda ev: None)


def test_health_is_serving(serving) -> None:
    _, server = serving(lambda ev: None)
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "stufio.events.v1.EventHandler"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            assert status == health_pb2.HealthCheckResponse.SERVING


def test_unix_socket(serving, tmp_path) -> None:
    address = f"unix://{tmp_path}/run/handler.sock"
    stub, server = serving({"order.created": lambda ev: {"result": ev.event_id}}, address=address)
    assert server.address == address
    assert result_of(stub.Handle(event())) == "evt-12345678-abcd"


def test_colon_port_binds_every_interface(serving) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stub, server = serving(lambda ev: "ok", address=f":{port}")
    assert server.address == f"127.0.0.1:{port}"
    assert result_of(stub.Handle(event())) == "ok"


def test_handle_stream_answers_with_the_event_id(serving) -> None:
    async def handle(ev: Event) -> Any:
        # Later events finish first, so responses come back out of order.
        await asyncio.sleep(0.05 * (5 - ev.payload["i"]))
        if ev.payload["i"] == 3:
            raise RetryableError("flaky")
        if ev.payload["i"] == 4:
            raise NonRetryableError("hopeless")
        return {"result": ev.payload["i"]}

    stub, _ = serving({"order.created": handle})
    requests = [event(event_id=f"e-{i}", payload={"i": i}) for i in range(5)]
    responses = {r.event_id: r for r in stub.HandleStream(iter(requests))}
    assert sorted(responses) == [f"e-{i}" for i in range(5)]
    for i in range(3):
        assert result_of(responses[f"e-{i}"]) == i
        assert responses[f"e-{i}"].disposition == pb.DISPOSITION_ACK
    # A failure carries the status code a unary call would have had.
    assert (responses["e-3"].error_code, responses["e-3"].error_message) == (grpc.StatusCode.UNAVAILABLE.value[0], "flaky")
    assert (responses["e-4"].error_code, responses["e-4"].error_message) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0], "hopeless")
    for i in range(3):
        assert responses[f"e-{i}"].error_code == 0


@dataclasses.dataclass
class Item:
    sku: str
    qty: int


@dataclasses.dataclass
class Order:
    total: float
    items: list[Item]
    note: str | None = None


class PydanticLike:
    """Stands in for a pydantic v2 model: only model_validate is used."""

    def __init__(self, total: float) -> None:
        self.total = total

    @classmethod
    def model_validate(cls, data: Any) -> PydanticLike:
        if not isinstance(data, dict) or "total" not in data:
            raise ValueError("total: field required")
        return cls(data["total"])


def test_typed_payloads(serving) -> None:
    def with_event(ev: Event[Order]) -> Any:
        return {"result": [ev.correlation_id, type(ev.payload).__name__, type(ev.payload.items[0]).__name__]}

    def payload_only(order: Order) -> Any:
        return {"result": [order.total, order.items[0].qty, order.note]}

    def pydantic_like(order: PydanticLike) -> Any:
        return {"result": order.total}

    stub, _ = serving({"a.event": with_event, "a.payload": payload_only, "a.pydantic": pydantic_like})
    payload = {"total": 10.5, "items": [{"sku": "a", "qty": 2}], "extra": "ignored"}
    assert result_of(stub.Handle(event("a.event", payload, correlation_id="c"))) == ["c", "Order", "Item"]
    assert result_of(stub.Handle(event("a.payload", payload))) == [10.5, 2, None]
    assert result_of(stub.Handle(event("a.pydantic", payload))) == 10.5

    for event_type in ("a.payload", "a.pydantic"):
        with pytest.raises(grpc.RpcError) as info:
            stub.Handle(event(event_type, {"items": []}))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_stop_lets_calls_in_flight_finish(serving) -> None:
    started = threading.Event()

    async def slow(ev: Event) -> str:
        started.set()
        await asyncio.sleep(0.3)
        return "finished"

    stub, server = serving(slow)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(stub.Handle, event())
        assert started.wait(5)
        began = time.monotonic()
        server.stop(grace=5)
        assert result_of(call.result(5)) == "finished"
        assert time.monotonic() - began < 5
    server.stop()  # a second stop is a no-op

"""EventPublisher and AsyncEventPublisher against a fake sidecar EventPublisher service."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from stufio_client import (
    Actor,
    AsyncEventPublisher,
    EventPublisher,
    PublishEventInfo,
    PublishResult,
    RequestResult,
    handler_pb2_grpc,
)
from stufio_client import handler_pb2 as pb
from stufio_client._values import to_python, to_value


class FakePublisher(handler_pb2_grpc.EventPublisherServicer):
    """Records what it is sent and answers with canned responses."""

    def __init__(self) -> None:
        self.published: list[pb.PublishRequest] = []
        self.requested: list[pb.RequestRequest] = []
        self.lock = threading.Lock()

    def Publish(self, request: pb.PublishRequest, context: grpc.ServicerContext) -> pb.PublishResponse:
        with self.lock:
            self.published.append(request)
        if request.event.event_type == "billing.charged":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, 'event.event_type: "billing.charged" is not in publish.allow')
        event_id = request.event_id or "generated-1"
        return pb.PublishResponse(event_id=event_id, subject=f"events.{request.event.event_type}", stream="EVENTS",
                                  sequence=7, duplicate=event_id == "seen-before")

    def Request(self, request: pb.RequestRequest, context: grpc.ServicerContext) -> pb.RequestResponse:
        with self.lock:
            self.requested.append(request)
        if request.event.event_type == "order.bad":
            return pb.RequestResponse(event_id="req-1", error="order.bad needs items", error_code="400")
        return pb.RequestResponse(event_id="req-1", result=to_value({"order_id": f"ord-{request.event.entity_id}"}))


@pytest.fixture
def fake() -> Iterator[tuple[FakePublisher, str]]:
    servicer = FakePublisher()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler_pb2_grpc.add_EventPublisherServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


def test_publish_sends_every_field_and_returns_the_receipt(fake: tuple[FakePublisher, str]) -> None:
    servicer, address = fake
    with EventPublisher(address) as publisher:
        receipt = publisher.publish(
            PublishEventInfo(event_type="order.created", entity_id="cust-1", payload={"total": 10.5},
                             correlation_id="corr-1", headers={"x-trace": "1"}, actor=Actor(type="user", id="alice")),
            event_id="evt-1",
            causation_id="cause-1",
        )
    assert receipt == PublishResult(event_id="evt-1", subject="events.order.created", stream="EVENTS", sequence=7)
    (sent,) = servicer.published
    assert (sent.event_id, sent.causation_id) == ("evt-1", "cause-1")
    assert (sent.event.event_type, sent.event.entity_id, sent.event.correlation_id) == ("order.created", "cust-1", "corr-1")
    assert to_python(sent.event.payload) == {"total": 10.5}
    assert dict(sent.event.headers) == {"x-trace": "1"}
    assert (sent.event.actor.type, sent.event.actor.id) == ("user", "alice")


def test_publish_takes_a_dict_or_an_event_type_with_keywords(fake: tuple[FakePublisher, str]) -> None:
    servicer, address = fake
    with EventPublisher(address) as publisher:
        publisher.publish({"event_type": "order.created", "payload": [1, 2]})
        again = publisher.publish("file.uploaded", data=b"raw", content_type="text/plain", event_id="seen-before")
    assert again.duplicate
    first, second = servicer.published
    assert to_python(first.event.payload) == [1, 2]
    assert (second.event.event_type, second.event.data, second.event.content_type) == ("file.uploaded", b"raw", "text/plain")
    assert not second.event.HasField("payload")
    with EventPublisher(address) as publisher, pytest.raises(TypeError):
        publisher.publish(PublishEventInfo(event_type="a.b"), payload=1)


def test_sidecar_refusals_are_rpc_errors(fake: tuple[FakePublisher, str]) -> None:
    _, address = fake
    with EventPublisher(address) as publisher, pytest.raises(grpc.RpcError) as info:
        publisher.publish("billing.charged")
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_request_returns_the_result_or_the_handlers_error(fake: tuple[FakePublisher, str]) -> None:
    servicer, address = fake
    with EventPublisher(address) as publisher:
        ok = publisher.request("order.created", 1.5, entity_id="cust-2", event_id="req-1")
        failed = publisher.request({"event_type": "order.bad"})
    assert ok == RequestResult(event_id="req-1", result={"order_id": "ord-cust-2"})
    assert ok.ok
    assert failed == RequestResult(event_id="req-1", error="order.bad needs items", error_code="400")
    assert not failed.ok
    assert [(r.timeout_ms, r.event_id) for r in servicer.requested] == [(1500, "req-1"), (10000, "")]


def test_the_address_comes_from_the_environment(fake: tuple[FakePublisher, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, address = fake
    monkeypatch.setenv("STUFIO_PUBLISHER_ADDRESS", address)
    with EventPublisher() as publisher:
        assert publisher.publish("order.created").event_id == "generated-1"
    monkeypatch.delenv("STUFIO_PUBLISHER_ADDRESS")
    with pytest.raises(ValueError, match="STUFIO_PUBLISHER_ADDRESS"):
        EventPublisher()


def test_a_unix_socket(tmp_path: Path) -> None:
    socket = f"unix://{tmp_path}/publisher.sock"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler_pb2_grpc.add_EventPublisherServicer_to_server(FakePublisher(), server)
    server.add_insecure_port(socket)
    server.start()
    try:
        with EventPublisher(socket) as publisher:
            assert publisher.publish("order.created").subject == "events.order.created"
    finally:
        server.stop(0)


def test_async_publisher(fake: tuple[FakePublisher, str]) -> None:
    servicer, address = fake

    async def main() -> tuple[PublishResult, RequestResult]:
        async with AsyncEventPublisher(address) as publisher:
            return (await publisher.publish("order.created", payload={"n": 1}, event_id="evt-9"),
                    await publisher.request("order.created", 2, entity_id="cust-3"))

    receipt, reply = asyncio.run(main())
    assert receipt.event_id == "evt-9"
    assert reply.result == {"order_id": "ord-cust-3"}
    assert servicer.requested[0].timeout_ms == 2000

"""Publishing events outside a handler, through the sidecar's ``EventPublisher`` gRPC service.

The sidecar gives such events what it gives a handler's follow-ups: CloudEvents headers, correlation,
the ``publish.allow`` list and size limit, and storage in a JetStream stream with a publish ack::

    from stufio_client.publisher import EventPublisher

    with EventPublisher() as publisher:          # $STUFIO_PUBLISHER_ADDRESS, the sidecar's publisher.listen
        receipt = publisher.publish("order.created", payload={"items": [1]}, entity_id="cust-1")
        reply = publisher.request("order.quote", payload={"total": 10}, timeout=5)
        print(receipt.stream, receipt.sequence, reply.result)

Errors from the sidecar are ``grpc.RpcError``: INVALID_ARGUMENT for a bad event type or body,
PERMISSION_DENIED outside ``publish.allow``, RESOURCE_EXHAUSTED over ``max_payload_bytes``, UNAVAILABLE
when NATS did not take the event, DEADLINE_EXCEEDED when a request got no result in time. A handler's
failure is not an exception: it comes back in :attr:`RequestResult.error`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from . import _values
from ._gen.stufio.events.v1 import handler_pb2 as pb
from ._gen.stufio.events.v1 import handler_pb2_grpc
from .response import PublishEventInfo

#: The environment variable read when no address is given.
ADDRESS_ENV = "STUFIO_PUBLISHER_ADDRESS"
#: Seconds a publish may take, and a request's default wait.
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class PublishResult:
    """The sidecar's answer to a publish."""

    event_id: str
    subject: str
    #: Set when a JetStream stream stored the event, with its sequence there.
    stream: str = ""
    sequence: int = 0
    #: True when the stream already had an event with this id (a retried publish).
    duplicate: bool = False


@dataclass(frozen=True)
class RequestResult:
    """The sidecar's answer to a request: the handler's result, or the error the handling side reported."""

    event_id: str
    result: Any = None
    error: str = ""
    error_code: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _address(address: str | None) -> str:
    address = address or os.environ.get(ADDRESS_ENV, "")
    if not address:
        raise ValueError(f"no EventPublisher address: pass one or set {ADDRESS_ENV} (the sidecar's publisher.listen)")
    return address


def _event(event: PublishEventInfo | Mapping[str, Any] | str, fields: Mapping[str, Any]) -> pb.PublishEventInfo:
    if isinstance(event, str):
        info = PublishEventInfo(event_type=event, **fields)
    elif fields:
        raise TypeError("give either a PublishEventInfo/dict or an event type with keyword fields, not both")
    elif isinstance(event, PublishEventInfo):
        info = event
    elif isinstance(event, Mapping):
        info = PublishEventInfo(**event)
    else:
        raise TypeError(f"cannot publish {type(event).__name__}: give a PublishEventInfo, a dict or an event type")
    return info.to_proto()


def _publish_request(event: Any, fields: Mapping[str, Any], event_id: str, causation_id: str) -> pb.PublishRequest:
    return pb.PublishRequest(event=_event(event, fields), event_id=event_id, causation_id=causation_id)


def _request_request(event: Any, fields: Mapping[str, Any], timeout: float, event_id: str) -> pb.RequestRequest:
    return pb.RequestRequest(event=_event(event, fields), timeout_ms=max(1, int(timeout * 1000)), event_id=event_id)


def _publish_result(r: pb.PublishResponse) -> PublishResult:
    return PublishResult(event_id=r.event_id, subject=r.subject, stream=r.stream, sequence=r.sequence,
                         duplicate=r.duplicate)


def _request_result(r: pb.RequestResponse) -> RequestResult:
    result = _values.to_python(r.result) if r.HasField("result") else None
    return RequestResult(event_id=r.event_id, result=result, error=r.error, error_code=r.error_code)


class EventPublisher:
    """A blocking client of the sidecar's EventPublisher. ``address``: ``unix:///path.sock`` or
    ``host:port``; default ``$STUFIO_PUBLISHER_ADDRESS``. Thread-safe; close it (or use ``with``)."""

    def __init__(self, address: str | None = None) -> None:
        self.address = _address(address)
        self._channel = grpc.insecure_channel(self.address)
        self._stub = handler_pb2_grpc.EventPublisherStub(self._channel)

    def publish(
        self,
        event: PublishEventInfo | Mapping[str, Any] | str,
        *,
        event_id: str = "",
        causation_id: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        **fields: Any,
    ) -> PublishResult:
        """Publishes one event: a :class:`PublishEventInfo`, a dict of its fields, or an event type with
        the fields as keywords (``payload=``, ``entity_id=``, ``correlation_id=``, ``headers=``, ...).
        ``event_id`` makes a retried publish idempotent (:attr:`PublishResult.duplicate`)."""
        request = _publish_request(event, fields, event_id, causation_id)
        return _publish_result(self._stub.Publish(request, timeout=timeout))

    def request(
        self,
        event: PublishEventInfo | Mapping[str, Any] | str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        event_id: str = "",
        **fields: Any,
    ) -> RequestResult:
        """Publishes one event and waits up to ``timeout`` seconds for the handler's result."""
        request = _request_request(event, fields, timeout, event_id)
        # The sidecar gives up after `timeout`; the call allows it a little longer to say so.
        return _request_result(self._stub.Request(request, timeout=timeout + 2))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncEventPublisher:
    """:class:`EventPublisher` for asyncio code (a ``grpc.aio`` channel): the same methods, awaited."""

    def __init__(self, address: str | None = None) -> None:
        self.address = _address(address)
        self._channel = grpc.aio.insecure_channel(self.address)
        self._stub = handler_pb2_grpc.EventPublisherStub(self._channel)

    async def publish(
        self,
        event: PublishEventInfo | Mapping[str, Any] | str,
        *,
        event_id: str = "",
        causation_id: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        **fields: Any,
    ) -> PublishResult:
        request = _publish_request(event, fields, event_id, causation_id)
        return _publish_result(await self._stub.Publish(request, timeout=timeout))

    async def request(
        self,
        event: PublishEventInfo | Mapping[str, Any] | str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        event_id: str = "",
        **fields: Any,
    ) -> RequestResult:
        request = _request_request(event, fields, timeout, event_id)
        return _request_result(await self._stub.Request(request, timeout=timeout + 2))

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncEventPublisher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

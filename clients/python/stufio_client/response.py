"""HandlerResponse and PublishEventInfo with the seed's spelling, and the legacy return values they replace."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _values
from ._gen.stufio.events.v1 import handler_pb2 as pb
from .event import Actor


class Disposition(str, enum.Enum):
    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


_DISPOSITION_PB = {
    Disposition.ACK: pb.DISPOSITION_ACK,
    Disposition.RETRY: pb.DISPOSITION_RETRY,
    Disposition.DEAD_LETTER: pb.DISPOSITION_DEAD_LETTER,
}


def event_type_name(event_type: Any) -> str:
    """The event type string of a str, or of an event class as Stufio writes them: an ``event_type`` or
    ``name`` attribute, or ``entity_type`` + ``action`` (``order`` + ``created`` → ``order.created``)."""
    if isinstance(event_type, str):
        return event_type
    for attr in ("event_type", "name"):
        value = getattr(event_type, attr, None)
        if isinstance(value, str) and value:
            return value
    entity_type, action = getattr(event_type, "entity_type", None), getattr(event_type, "action", None)
    if isinstance(entity_type, str) and isinstance(action, str):
        return f"{entity_type}.{action}"
    raise TypeError(f"cannot tell the event type of {event_type!r}: give a string or a class with event_type")


@dataclass
class PublishEventInfo:
    """A follow-up event the sidecar publishes after the handler returns."""

    event_type: Any
    entity_id: str | None = ""
    payload: Any = None
    #: Empty: inherit the inbound event's correlation id.
    correlation_id: str | None = ""
    headers: dict[str, str] = field(default_factory=dict)
    #: Raw body, sent instead of ``payload`` (with ``content_type``).
    data: bytes | None = None
    content_type: str = ""
    delay_ms: int = 0
    actor: Actor | Mapping | None = None

    def to_proto(self) -> pb.PublishEventInfo:
        msg = pb.PublishEventInfo(
            event_type=event_type_name(self.event_type),
            entity_id=str(self.entity_id or ""),
            correlation_id=self.correlation_id or "",
            headers={str(k): str(v) for k, v in (self.headers or {}).items()},
            content_type=self.content_type,
            delay_ms=self.delay_ms,
        )
        if self.data is not None:
            msg.data = bytes(self.data)
        elif self.payload is not None:
            _values.fill(msg.payload, self.payload)
        if self.actor is not None:
            actor = self.actor if isinstance(self.actor, Mapping) else dataclasses.asdict(self.actor)
            msg.actor.type, msg.actor.id = actor.get("type", ""), actor.get("id", "")
        return msg


@dataclass
class HandlerResponse:
    """What a handler returns: a result for the requester, metrics, and follow-up events to publish."""

    result: Any = None
    metrics: dict[str, Any] | None = None
    publish: list[PublishEventInfo] | None = None
    disposition: Disposition = Disposition.ACK
    retry_delay_ms: int = 0
    error_message: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.disposition, str) and not isinstance(self.disposition, Disposition):
            self.disposition = Disposition(self.disposition.lower())
        if self.publish is not None:
            self.publish = [_publish_info(p) for p in self.publish]

    @classmethod
    def with_result(cls, result: Any, **kwargs: Any) -> HandlerResponse:
        return cls(result=result, **kwargs)

    @classmethod
    def retry(cls, reason: str = "", *, delay_ms: int = 0) -> HandlerResponse:
        """Ask for redelivery after ``delay_ms`` (0: the subscription's backoff)."""
        return cls(disposition=Disposition.RETRY, retry_delay_ms=delay_ms, error_message=reason)

    @classmethod
    def dead_letter(cls, reason: str) -> HandlerResponse:
        return cls(disposition=Disposition.DEAD_LETTER, error_message=reason)

    def add_metrics(self, metrics: Mapping[str, Any]) -> HandlerResponse:
        self.metrics = {**(self.metrics or {}), **metrics}
        return self

    def add_publish(self, *events: PublishEventInfo | Mapping) -> HandlerResponse:
        self.publish = [*(self.publish or []), *(_publish_info(e) for e in events)]
        return self

    def to_proto(self) -> pb.HandlerResponse:
        msg = pb.HandlerResponse(
            disposition=_DISPOSITION_PB[self.disposition],
            retry_delay_ms=self.retry_delay_ms,
            error_message=self.error_message,
        )
        if self.result is not None:
            _values.fill(msg.result, self.result)
        for key, value in (self.metrics or {}).items():
            if value is not None:  # a metric is a number, boolean or string; None means "not measured"
                _values.fill(msg.metrics.values[key], value)
        msg.publish.extend(p.to_proto() for p in self.publish or [])
        return msg


_FIELDS = frozenset(f.name for f in dataclasses.fields(HandlerResponse))


def normalize(value: Any) -> HandlerResponse:
    """The seed's legacy returns as a HandlerResponse: None → empty; a dict whose keys are all
    HandlerResponse fields (``{"metrics": ...}``, ``{"result": ...}``, ``{"publish": [...]}``) → those
    fields; any other value → the result."""
    if isinstance(value, HandlerResponse):
        return value
    if value is None:
        return HandlerResponse()
    if isinstance(value, Mapping) and value and all(isinstance(k, str) and k in _FIELDS for k in value):
        return HandlerResponse(**value)
    return HandlerResponse(result=value)


def merge(responses: Sequence[HandlerResponse]) -> HandlerResponse:
    """One response for an event that several subscribers handled: the first result, all metrics and
    follow-ups, and the most cautious disposition."""
    if len(responses) == 1:
        return responses[0]
    order = list(Disposition)
    worst = max(responses, key=lambda r: order.index(r.disposition))
    merged = HandlerResponse(
        result=next((r.result for r in responses if r.result is not None), None),
        disposition=worst.disposition,
        retry_delay_ms=max(r.retry_delay_ms for r in responses),
        error_message="; ".join(r.error_message for r in responses if r.error_message),
    )
    for r in responses:
        if r.metrics:
            merged.add_metrics(r.metrics)
        if r.publish:
            merged.add_publish(*r.publish)
    return merged


def _publish_info(value: PublishEventInfo | Mapping) -> PublishEventInfo:
    return value if isinstance(value, PublishEventInfo) else PublishEventInfo(**value)

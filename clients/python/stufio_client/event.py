"""The event a handler receives, and the optional typed view of its payload."""

from __future__ import annotations

import json

import dataclasses
import datetime
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from . import _values
from ._gen.stufio.events.v1 import handler_pb2 as pb
from .errors import NonRetryableError

P = TypeVar("P")


@dataclass(frozen=True)
class Actor:
    type: str = ""
    id: str = ""


@dataclass(frozen=True)
class Delivery:
    subject: str = ""
    attempt: int = 0
    stream: str = ""
    stream_sequence: int = 0
    reply_expected: bool = False
    consumer: str = ""
    mode: str = ""


@dataclass(frozen=True)
class Event(Generic[P]):
    """An EventMessage with plain Python values. Annotate ``Event[Model]`` to get ``payload`` as a Model."""

    event_id: str
    event_type: str
    entity_id: str = ""
    correlation_id: str = ""
    causation_id: str = ""
    source: str = ""
    time: datetime.datetime | None = None
    content_type: str = ""
    data: bytes = b""
    payload: P = None  # type: ignore[assignment]
    headers: dict[str, str] = field(default_factory=dict)
    actor: Actor = field(default_factory=Actor)
    delivery: Delivery = field(default_factory=Delivery)
    hops: int = 0
    traceparent: str = ""

    @classmethod
    def from_proto(cls, msg: pb.EventMessage, payload_model: Any = None) -> Event[Any]:
        payload = _values.to_python(msg.payload) if msg.HasField("payload") else None
        if payload is None and msg.data and (msg.content_type == "" or _is_json(msg.content_type)):
            # A sidecar with handler.decode_payload: false sends the raw body only; parse it here.
            try:
                payload = json.loads(msg.data)
            except ValueError:
                payload = None
        if payload_model is not None:
            payload = validate(payload_model, payload)
        return cls(
            event_id=msg.event_id,
            event_type=msg.event_type,
            entity_id=msg.entity_id,
            correlation_id=msg.correlation_id,
            causation_id=msg.causation_id,
            source=msg.source,
            time=msg.time.ToDatetime(tzinfo=datetime.UTC) if msg.HasField("time") else None,
            content_type=msg.content_type,
            data=msg.data,
            payload=payload,
            headers=dict(msg.headers),
            actor=Actor(type=msg.actor.type, id=msg.actor.id),
            delivery=Delivery(
                subject=msg.delivery.subject,
                attempt=msg.delivery.attempt,
                stream=msg.delivery.stream,
                stream_sequence=msg.delivery.stream_sequence,
                reply_expected=msg.delivery.reply_expected,
                consumer=msg.delivery.consumer,
                mode=msg.delivery.mode,
            ),
            hops=msg.hops,
            traceparent=msg.traceparent,
        )


def _is_json(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json")


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and (hasattr(tp, "model_validate") or dataclasses.is_dataclass(tp))


def validate(model: Any, data: Any) -> Any:
    """``data`` as an instance of ``model`` (pydantic v2 or a dataclass); NonRetryableError when it does not fit."""
    try:
        if hasattr(model, "model_validate"):
            return model.model_validate(data)
        return _build_dataclass(model, data)
    except Exception as exc:
        raise NonRetryableError(f"payload does not fit {model.__name__}: {exc}") from exc


def argument_builder(fn: Callable[..., Any]) -> Callable[[pb.EventMessage], Any]:
    """How to turn an EventMessage into what ``fn`` asks for with the annotation of its first parameter:
    nothing or ``Event`` → Event; ``Event[Model]`` → Event with a Model payload; ``Model`` → the payload alone.
    """
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        raise TypeError(f"handler {fn!r} must take the event as its first parameter")
    try:
        hint = typing.get_type_hints(fn).get(params[0].name)
    except Exception:  # an annotation that does not resolve is treated as none
        hint = None
    if typing.get_origin(hint) is Event:
        (arg,) = typing.get_args(hint)
        if is_model(arg):
            return lambda msg: Event.from_proto(msg, payload_model=arg)
    elif is_model(hint) and hint is not Event:
        return lambda msg: validate(hint, _values.to_python(msg.payload) if msg.HasField("payload") else None)
    return Event.from_proto


def _build_dataclass(cls: type, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    # Unknown keys are ignored, as pydantic does by default, so a producer can add fields first.
    kwargs = {
        f.name: _coerce(hints.get(f.name), data[f.name])
        for f in dataclasses.fields(cls)
        if f.init and f.name in data
    }
    return cls(**kwargs)


_UNIONS = (typing.Union, types.UnionType)


def _coerce(tp: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return _build_dataclass(tp, value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and args and isinstance(value, list):
        return [_coerce(args[0], v) for v in value]
    if origin in _UNIONS:  # Optional[X], X | None
        candidates = [a for a in args if a is not type(None)]
        if len(candidates) == 1 and value is not None:
            return _coerce(candidates[0], value)
    return value

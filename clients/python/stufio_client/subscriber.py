"""Handler registration: ``@event_subscriber("order.created")`` and the subscriptions reported by Describe."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._gen.stufio.events.v1 import handler_pb2 as pb
from .event import argument_builder
from .response import event_type_name

F = TypeVar("F", bound=Callable[..., Any])

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_ATTR = "__stufio_subscriptions__"
_registered: list[Subscription] = []


@dataclass(frozen=True)
class Subscription:
    event_type: str
    handler: Callable[..., Any]
    delivery: str = ""
    stream: str = ""
    durable: str = ""
    queue_group: str = ""
    max_in_flight: int = 0
    max_deliver: int = 0
    #: False for a catch-all handler given without a pattern: it takes whatever the sidecar's own
    #: configuration routes to it and declares nothing.
    declared: bool = True
    build_argument: Callable[[pb.EventMessage], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_pattern(self.event_type)
        object.__setattr__(self, "build_argument", argument_builder(self.handler))

    def matches(self, event_type: str) -> bool:
        pattern, tokens = self.event_type.split("."), event_type.split(".")
        for i, p in enumerate(pattern):
            if p == ">":
                return len(tokens) > i
            if i >= len(tokens) or (p != "*" and p != tokens[i]):
                return False
        return len(pattern) == len(tokens)

    def to_proto(self) -> pb.SubscriptionDeclaration:
        return pb.SubscriptionDeclaration(
            event_type=self.event_type,
            delivery=self.delivery,
            stream=self.stream,
            durable=self.durable,
            queue_group=self.queue_group,
            max_in_flight=self.max_in_flight,
            max_deliver=self.max_deliver,
        )


def check_pattern(pattern: str) -> None:
    """Same rules as the sidecar (DESIGN.md §2): dot-separated tokens of [A-Za-z0-9_-], NATS wildcards."""
    tokens = pattern.split(".")
    for i, token in enumerate(tokens):
        if (token == ">" and i == len(tokens) - 1) or token == "*" or _TOKEN.match(token):
            continue
        raise ValueError(f"invalid event type pattern {pattern!r}")


def event_subscriber(
    event: Any,
    *,
    delivery: str = "",
    stream: str = "",
    durable: str = "",
    queue_group: str = "",
    max_in_flight: int = 0,
    max_deliver: int = 0,
) -> Callable[[F], F]:
    """Registers the decorated function for an event type (a string, NATS wildcards allowed, or an event
    class). The function may be ``async``; it may be decorated more than once."""

    def decorate(fn: F) -> F:
        sub = Subscription(
            event_type_name(event),
            fn,
            delivery=delivery,
            stream=stream,
            durable=durable,
            queue_group=queue_group,
            max_in_flight=max_in_flight,
            max_deliver=max_deliver,
        )
        setattr(fn, _ATTR, [*getattr(fn, _ATTR, []), sub])
        _registered.append(sub)
        return fn

    return decorate


def registered_subscriptions() -> list[Subscription]:
    return list(_registered)


def resolve(handlers: Any) -> list[Subscription]:
    """Subscriptions from what ``serve`` was given: None (everything registered with @event_subscriber),
    a decorated function, a plain function (catch-all), a ``{pattern: function}`` mapping, or a list of these."""
    if handlers is None:
        subs = registered_subscriptions()
    elif isinstance(handlers, Subscription):
        subs = [handlers]
    elif isinstance(handlers, Mapping):
        subs = [Subscription(event_type_name(k), fn) for k, fn in handlers.items()]
    elif callable(handlers):
        subs = list(getattr(handlers, _ATTR, None) or [Subscription(">", handlers, declared=False)])
    elif isinstance(handlers, Iterable):
        subs = [s for h in handlers for s in resolve(h)]
    else:
        raise TypeError(f"cannot serve {handlers!r}: give functions, a mapping or Subscription objects")
    if not subs:
        raise ValueError("no handlers: decorate functions with @event_subscriber or pass handlers=")
    return subs

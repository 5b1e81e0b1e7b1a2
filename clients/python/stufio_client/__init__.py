"""Write stufio event handlers in Python.

The stufio sidecar owns the NATS subscriptions and calls ``EventHandler.Handle`` over gRPC for each event;
this package hosts your functions behind that service (plus ``grpc.health.v1`` and ``Describe``)::

    from stufio_client import Event, HandlerResponse, event_subscriber, serve

    @event_subscriber("order.created")
    async def handle(event: Event) -> HandlerResponse:
        return HandlerResponse.with_result({"ok": True}).add_metrics({"success": True})

    serve("unix:///var/run/stufio/handler.sock")

A handler takes one argument: an :class:`Event`, an ``Event[Model]`` whose payload is validated into
``Model``, or a ``Model`` alone (the payload); ``Model`` is a dataclass or a pydantic v2 model. It may be
``async``; plain functions run in a worker thread. It returns a :class:`HandlerResponse` or one of the
seed's legacy values: ``None`` (empty response), a dict of HandlerResponse fields (``{"metrics": ...}``,
``{"result": ...}``, ``{"publish": [...]}``), or any other value (the result).

Errors. What a handler raises becomes the gRPC status of ``Handle``, and the sidecar acts on it
(DESIGN.md §3):

=============================================  ===================  =============================
raised                                         status               sidecar
=============================================  ===================  =============================
:class:`RetryableError`                        UNAVAILABLE          redeliver with backoff
any other exception                            INTERNAL             redeliver with backoff
:class:`NonRetryableError`, ``ValueError``     INVALID_ARGUMENT     dead-letter at once
(incl. a payload that does not fit the model)
no subscriber matches the event type           UNIMPLEMENTED        dead-letter at once
a :class:`HandlerError` subclass               its ``code``         per DESIGN.md §3
=============================================  ===================  =============================

In ``HandleStream`` a message has no status of its own, so the same code travels in the response's
``error_code`` (with ``error_message``), which the sidecar treats exactly like a failed unary call. A handler
can also ask for a retry or a dead letter without raising: ``HandlerResponse.retry(reason, delay_ms=...)``,
``HandlerResponse.dead_letter(reason)``.

Outside a handler, :class:`EventPublisher` (and :class:`AsyncEventPublisher`) publish events, or request a
handler's result, through the sidecar's ``EventPublisher`` service: see :mod:`stufio_client.publisher`.
"""

from ._gen.stufio.events.v1 import handler_pb2, handler_pb2_grpc
from .errors import HandlerError, NoHandlerError, NonRetryableError, RetryableError
from .event import Actor, Delivery, Event
from .metrics import (
    BaseMetricsProvider,
    get_metrics_provider,
    metrics_providers,
    register_metrics_provider,
    unregister_metrics_provider,
)
from .publisher import AsyncEventPublisher, EventPublisher, PublishResult, RequestResult
from .response import Disposition, HandlerResponse, PublishEventInfo, normalize
from .server import (
    DEFAULT_ADDRESS,
    BackgroundServer,
    HandlerServer,
    serve,
    serve_async,
    start,
)
from .subscriber import Subscription, event_subscriber, registered_subscriptions

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ADDRESS",
    "Actor",
    "AsyncEventPublisher",
    "BackgroundServer",
    "BaseMetricsProvider",
    "Delivery",
    "Disposition",
    "Event",
    "EventPublisher",
    "HandlerError",
    "HandlerResponse",
    "HandlerServer",
    "NoHandlerError",
    "NonRetryableError",
    "PublishEventInfo",
    "PublishResult",
    "RequestResult",
    "RetryableError",
    "Subscription",
    "event_subscriber",
    "get_metrics_provider",
    "handler_pb2",
    "handler_pb2_grpc",
    "metrics_providers",
    "normalize",
    "register_metrics_provider",
    "registered_subscriptions",
    "serve",
    "serve_async",
    "start",
    "unregister_metrics_provider",
]

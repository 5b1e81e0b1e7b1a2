"""Hosting handlers: the EventHandler service next to grpc.health.v1, and the process lifecycle."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from . import _values
from ._gen.stufio.events.v1 import handler_pb2 as pb
from ._gen.stufio.events.v1 import handler_pb2_grpc
from .errors import NoHandlerError, NonRetryableError, status_for
from .metrics import BaseMetricsProvider
from .metrics import metrics_providers as registered_providers
from .response import merge, normalize
from .subscriber import Subscription, resolve

#: DESIGN.md §4's default handler.address: a socket shared with the sidecar in the pod.
DEFAULT_ADDRESS = "unix:///var/run/stufio/handler.sock"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EventHandler"].full_name

log = logging.getLogger("stufio_client")


class _Dispatcher:
    def __init__(
        self,
        subscriptions: list[Subscription],
        providers: list[BaseMetricsProvider],
        executor: ThreadPoolExecutor,
    ) -> None:
        self._subscriptions = subscriptions
        self._providers = providers
        self._executor = executor

    def route(self, msg: pb.EventMessage) -> list[Subscription]:
        subs = [s for s in self._subscriptions if s.matches(msg.event_type)]
        consumer = msg.delivery.consumer
        if consumer and len(subs) > 1:
            # Each sidecar subscription delivers the event on its own; run only the subscribers it names,
            # so that two subscriptions matching one event do not run each handler twice.
            subs = [s for s in subs if consumer in (s.durable, s.queue_group)] or subs
        return subs

    async def handle(self, msg: pb.EventMessage) -> pb.HandlerResponse:
        subs = self.route(msg)
        if not subs:
            raise NoHandlerError(f"no handler for event type {msg.event_type!r}")
        for provider in self._providers:
            await _resolve(provider.reset_metrics())
        responses = [normalize(await self._call(s, msg)) for s in subs]
        try:
            out = merge(responses).to_proto()
        except (TypeError, ValueError) as exc:
            # DESIGN.md §3: an invalid response is dead-lettered, retrying would only repeat it.
            raise NonRetryableError(f"invalid handler response: {exc}") from exc
        for provider in self._providers:
            for key, value in (await _resolve(provider.get_metrics())).items():
                name = f"{provider.provider_name}_{key}"
                if value is not None and name not in out.metrics.values:
                    _values.fill(out.metrics.values[name], value)
        return out

    async def _call(self, sub: Subscription, msg: pb.EventMessage) -> Any:
        arg = sub.build_argument(msg)
        fn = sub.handler
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
            result = await fn(arg)
        else:
            # A plain function may block; it runs in a worker thread with a copy of the event's context,
            # so metrics providers still see this event's state.
            ctx = contextvars.copy_context()
            result = await asyncio.get_running_loop().run_in_executor(self._executor, ctx.run, fn, arg)
        if inspect.isawaitable(result):
            result = await result
        return result


class _EventHandlerServicer(handler_pb2_grpc.EventHandlerServicer):
    def __init__(self, dispatcher: _Dispatcher, description: pb.HandlerDescription) -> None:
        self._dispatcher = dispatcher
        self._description = description

    async def Handle(self, request: pb.EventMessage, context: grpc.aio.ServicerContext) -> pb.HandlerResponse:
        try:
            # A task of its own gives the event a fresh contextvars context, whatever grpc does.
            return await asyncio.create_task(self._dispatcher.handle(request))
        except Exception as exc:
            code, message = status_for(exc)
            _log_failure(request, exc, code)
            await context.abort(code, message)
            raise  # unreachable: abort raises

    async def HandleStream(
        self, request_iterator: AsyncIterator[pb.EventMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.HandlerResponse]:
        responses: asyncio.Queue[pb.HandlerResponse | None] = asyncio.Queue()
        in_flight: set[asyncio.Task[None]] = set()

        async def handle_one(msg: pb.EventMessage) -> None:
            try:
                response = await self._dispatcher.handle(msg)
            except Exception as exc:
                # A stream message has no status of its own: the code travels in error_code, and the
                # sidecar treats it exactly like a unary call that failed with it.
                code, message = status_for(exc)
                _log_failure(msg, exc, code)
                response = pb.HandlerResponse(error_code=code.value[0], error_message=message)
            response.event_id = msg.event_id
            await responses.put(response)

        async def read() -> None:
            try:
                async for msg in request_iterator:
                    task = asyncio.create_task(handle_one(msg))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.gather(*in_flight)
            finally:
                await responses.put(None)

        reader = asyncio.create_task(read())
        try:
            while (response := await responses.get()) is not None:
                yield response
            await reader  # surfaces a broken request stream
        finally:
            for task in (reader, *in_flight):
                task.cancel()

    async def Describe(self, request: pb.DescribeRequest, context: grpc.aio.ServicerContext) -> pb.HandlerDescription:
        return self._description


class HandlerServer:
    """EventHandler and grpc.health.v1 on one grpc.aio server. ``start`` and ``stop`` run on the event loop
    that serves; :func:`serve` and :func:`start` wrap it for scripts and tests."""

    def __init__(
        self,
        handlers: Any = None,
        *,
        name: str | None = None,
        version: str = "",
        metrics_providers: Iterable[BaseMetricsProvider] | None = None,
        max_workers: int | None = None,
    ) -> None:
        """``handlers``: see :func:`stufio_client.subscriber.resolve` (None: everything registered with
        ``@event_subscriber``). ``metrics_providers``: None for the registered ones. ``max_workers``: threads
        for plain (non-async) handlers, Python's default when None."""
        self.subscriptions = resolve(handlers)
        providers = registered_providers() if metrics_providers is None else list(metrics_providers)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="stufio-handler")
        self._dispatcher = _Dispatcher(self.subscriptions, providers, self._executor)
        self._description = pb.HandlerDescription(
            name=name or _script_name(),
            version=version,
            sdk="python",
            subscriptions=[s.to_proto() for s in self.subscriptions if s.declared],
        )
        self._server: grpc.aio.Server | None = None
        self._health: health_aio.HealthServicer | None = None
        self._stopping: asyncio.Future[None] | None = None
        #: What a client dials: ``host:port`` with the bound port, or the unix address as given.
        self.address = ""
        self.port = 0

    async def start(self, address: str) -> None:
        bind, dial_host = _bind_address(address)
        server = grpc.aio.server()
        health = health_aio.HealthServicer()
        handler_pb2_grpc.add_EventHandlerServicer_to_server(
            _EventHandlerServicer(self._dispatcher, self._description), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        port = server.add_insecure_port(bind)
        await server.start()
        for service in ("", SERVICE_NAME):
            await health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._health = server, health
        self.port = 0 if dial_host is None else port
        self.address = address if dial_host is None else f"{dial_host}:{port}"
        log.info("serving handler=%s address=%s subscriptions=%d", self._description.name, self.address,
                 len(self.subscriptions))

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, so the sidecar stops sending, then up to ``grace`` seconds for calls in
        flight. Safe to call more than once."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float | None) -> None:
        if self._server is not None and self._health is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(grace)
        self._executor.shutdown(wait=False)
        log.info("stopped handler=%s", self._description.name)

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            # Shielded: cancelling grpc's own wait cancels the future its stop() later awaits.
            await asyncio.shield(self._server.wait_for_termination())


async def serve_async(
    address: str | None = None,
    handlers: Any = None,
    *,
    grace: float = 10.0,
    on_started: Callable[[HandlerServer], Any] | None = None,
    **options: Any,
) -> None:
    """:func:`serve` for code that already runs an event loop."""
    server = HandlerServer(handlers, **options)
    await server.start(address or os.environ.get("STUFIO_HANDLER_ADDRESS") or DEFAULT_ADDRESS)
    if on_started is not None:
        on_started(server)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            pass
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await server.stop(grace)


def serve(
    address: str | None = None,
    handlers: Any = None,
    *,
    grace: float = 10.0,
    on_started: Callable[[HandlerServer], Any] | None = None,
    **options: Any,
) -> None:
    """Serves until SIGTERM or SIGINT, then stops gracefully (see :meth:`HandlerServer.stop`).

    ``address``: ``unix:///path.sock``, ``host:port`` or ``:port`` (port 0 picks a free one); default
    ``$STUFIO_HANDLER_ADDRESS``, else :data:`DEFAULT_ADDRESS`. ``on_started`` is called with the bound
    server (its ``address`` and ``port``). ``options``: ``name``, ``version``, ``metrics_providers``,
    ``max_workers``.
    """
    asyncio.run(serve_async(address, handlers, grace=grace, on_started=on_started, **options))


class BackgroundServer:
    """A :class:`HandlerServer` on an event loop in its own thread; what :func:`start` returns."""

    def __init__(self, server: HandlerServer, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.server = server
        self._loop = loop
        self._thread = thread

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self, grace: float | None = None) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(grace), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start(address: str = "127.0.0.1:0", handlers: Any = None, **options: Any) -> BackgroundServer:
    """Starts serving in a background thread and returns once the port is bound; port 0 picks a free one."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="stufio-handler-loop", daemon=True)
    thread.start()
    try:
        server = HandlerServer(handlers, **options)
        asyncio.run_coroutine_threadsafe(server.start(address), loop).result()
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        raise
    return BackgroundServer(server, loop, thread)


def _bind_address(address: str) -> tuple[str, str | None]:
    """(what to bind, the host a client dials, None for a unix socket)."""
    if address.startswith("unix:"):
        path = address[len("unix://"):] if address.startswith("unix://") else address[len("unix:"):]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return address, None
    if address.startswith("unix-abstract:"):
        return address, None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"invalid address {address!r}: use unix:///path.sock, host:port or :port")
    wildcard = host in ("", "[::]", "0.0.0.0", "::")
    return f"{host or '[::]'}:{port}", "127.0.0.1" if wildcard else host


def _script_name() -> str:
    stem = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return stem if stem and not stem.startswith("-") else "python-handler"


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _log_failure(msg: pb.EventMessage, exc: BaseException, code: grpc.StatusCode) -> None:
    # Unexpected exceptions get a traceback; the handler's own RetryableError/NonRetryableError do not.
    log.log(
        logging.ERROR if code == grpc.StatusCode.INTERNAL else logging.WARNING,
        "handler failed event_id=%s event_type=%s status=%s error=%s",
        msg.event_id, msg.event_type, code.name, exc,
        exc_info=exc if code == grpc.StatusCode.INTERNAL else None,
    )

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from stufio_client import handler_pb2_grpc, start
from stufio_client import metrics as metrics_registry
from stufio_client import subscriber as subscriber_registry


@pytest.fixture(autouse=True)
def clean_registries() -> Iterator[None]:
    """Tests that use @event_subscriber or @register_metrics_provider leave the globals as they found them."""
    subs, providers = list(subscriber_registry._registered), dict(metrics_registry._providers)
    yield
    subscriber_registry._registered[:] = subs
    metrics_registry._providers.clear()
    metrics_registry._providers.update(providers)


@pytest.fixture
def serving() -> Iterator[Callable[..., Any]]:
    """serving(handlers, address=..., **options) starts a real server and returns (stub, server);
    every server and channel is closed after the test."""
    with contextlib.ExitStack() as stack:

        def run(handlers: Any = None, address: str = "127.0.0.1:0", **options: Any):
            server = start(address, handlers, metrics_providers=options.pop("metrics_providers", []), **options)
            stack.callback(server.stop, 0)
            channel = grpc.insecure_channel(server.address)
            stack.callback(channel.close)
            return handler_pb2_grpc.EventHandlerStub(channel), server

        yield run


"""Metrics providers: registration, naming, and per-event state under concurrent calls."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from stufio_client import (
    BaseMetricsProvider,
    Event,
    get_metrics_provider,
    metrics_providers,
    register_metrics_provider,
)
from support import event, metrics_of


def define_provider() -> type:
    @register_metrics_provider
    class ApiMetricsProvider(BaseMetricsProvider):
        provider_name = "api"

        def initial_state(self) -> dict[str, Any]:
            return {"calls": 0, "time_ms": 0}

        def track_call(self, duration_ms: int) -> None:
            self.state["calls"] += 1
            self.state["time_ms"] += duration_ms

        async def get_metrics(self) -> dict[str, Any]:  # async, as in the seed
            state = self.state
            return {**state, "avg_time_ms": state["time_ms"] / state["calls"] if state["calls"] else 0}

    return ApiMetricsProvider


def test_registration() -> None:
    cls = define_provider()
    assert get_metrics_provider("api") is get_metrics_provider(cls)
    assert get_metrics_provider("api") in metrics_providers()
    register_metrics_provider(cls)  # registering the same class again is harmless

    class Other(BaseMetricsProvider):
        provider_name = "api"

    with pytest.raises(ValueError):
        register_metrics_provider(Other)

    class Nameless(BaseMetricsProvider):
        pass

    with pytest.raises(TypeError):
        register_metrics_provider(Nameless)


@pytest.mark.parametrize("is_async", [False, True])
def test_provider_state_is_per_event_under_concurrency(serving, is_async: bool) -> None:
    cls = define_provider()
    provider = get_metrics_provider(cls)

    async def handle_async(ev: Event) -> Any:
        for _ in range(ev.payload["calls"]):
            provider.track_call(10)
            await asyncio.sleep(0.005)  # let the other events interleave
        return {"metrics": {"own": ev.payload["calls"]}}

    def handle_sync(ev: Event) -> Any:
        for _ in range(ev.payload["calls"]):
            provider.track_call(10)
            time.sleep(0.005)
        return {"metrics": {"own": ev.payload["calls"]}}

    stub, _ = serving({"order.created": handle_async if is_async else handle_sync}, metrics_providers=None)
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda n: stub.Handle(event(payload={"calls": n})), range(1, 17)))
    for n, response in enumerate(responses, start=1):
        assert metrics_of(response) == {"own": n, "api_calls": n, "api_time_ms": 10 * n, "api_avg_time_ms": 10}


def test_handler_metrics_win_over_a_provider_of_the_same_name(serving) -> None:
    define_provider()
    stub, _ = serving(lambda ev: {"metrics": {"api_calls": "mine"}}, metrics_providers=None)
    assert metrics_of(stub.Handle(event()))["api_calls"] == "mine"

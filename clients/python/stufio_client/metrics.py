"""Metrics providers (the seed's ``BaseMetricsProvider``) with per-event state in a ContextVar.

Before each event the server calls every provider's ``reset_metrics()`` in that event's own context, and
after the handler returns it merges ``get_metrics()`` into the response as ``<provider_name>_<key>``.
Either method may be ``async``. Concurrent events never see each other's state, including sync handlers
that run in a worker thread (they get a copy of the event's context, sharing the same state dict).
"""

from __future__ import annotations

import contextvars
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="BaseMetricsProvider")

_providers: dict[str, BaseMetricsProvider] = {}


class BaseMetricsProvider:
    provider_name: ClassVar[str] = ""

    def __init__(self, **config: Any) -> None:
        if not self.provider_name:
            raise TypeError(f"{type(self).__name__} must set provider_name")
        self.config = config
        self._state: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
            f"stufio_metrics_{self.provider_name}"
        )

    def initial_state(self) -> dict[str, Any]:
        """The state of a new event; override to start counters at zero."""
        return {}

    @property
    def state(self) -> dict[str, Any]:
        """The current event's state, to update in place from the handler."""
        try:
            return self._state.get()
        except LookupError:
            state = self.initial_state()
            self._state.set(state)
            return state

    def get_metrics(self) -> dict[str, Any]:
        return dict(self.state)

    def reset_metrics(self) -> None:
        self._state.set(self.initial_state())


def register_metrics_provider(cls: type[T]) -> type[T]:
    """Class decorator: creates the provider once and includes it in every response from now on."""
    current = _providers.get(cls.provider_name)
    if current is not None and type(current) is not cls:
        raise ValueError(f"a metrics provider named {cls.provider_name!r} is already registered")
    if current is None:
        _providers[cls.provider_name] = cls()
    return cls


def get_metrics_provider(provider: str | type[T]) -> T:
    """The registered instance, by name or class, to track metrics with from handler code."""
    name = provider if isinstance(provider, str) else provider.provider_name
    return _providers[name]  # type: ignore[return-value]


def metrics_providers() -> list[BaseMetricsProvider]:
    return list(_providers.values())


def unregister_metrics_provider(provider: str | type[BaseMetricsProvider]) -> None:
    _providers.pop(provider if isinstance(provider, str) else provider.provider_name, None)

"""Exceptions a handler raises, and the gRPC status each one becomes (see the package docstring)."""

from __future__ import annotations

import grpc


class HandlerError(Exception):
    """Base class; subclass it and set ``code`` to answer with another gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class RetryableError(HandlerError):
    """A passing problem (a dependency down, a timeout): the sidecar redelivers with backoff."""

    code = grpc.StatusCode.UNAVAILABLE


class NonRetryableError(HandlerError):
    """The event can never succeed (bad payload, unknown entity): the sidecar dead-letters it at once."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NoHandlerError(NonRetryableError):
    """No registered subscriber matches the event type: a deployment mistake, not worth retrying."""

    code = grpc.StatusCode.UNIMPLEMENTED


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message for an exception a handler raised."""
    if isinstance(exc, HandlerError):
        return exc.code, str(exc) or type(exc).__name__
    # ValueError covers pydantic's ValidationError: a payload that does not validate never will.
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT, f"{type(exc).__name__}: {exc}"
    return grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"

"""google.protobuf.Value <-> plain Python data (the JSON data model)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

# Beyond 2**53 a double no longer holds every integer, so such numbers stay floats.
_MAX_EXACT_INT = 2**53


def to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        n = value.number_value
        # JSON has one number type; hand integral numbers back as int, like json.loads does for "1".
        return int(n) if n.is_integer() and abs(n) <= _MAX_EXACT_INT else n
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {k: to_python(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [to_python(v) for v in value.list_value.values]
    return None


def fill(target: struct_pb2.Value, obj: Any) -> None:
    """Sets ``target`` to ``obj``: JSON-like data, dataclasses, pydantic models, datetimes and enums."""
    if obj is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        target.bool_value = obj
    elif isinstance(obj, (int, float)):
        target.number_value = obj
    elif isinstance(obj, str):
        target.string_value = obj
    elif isinstance(obj, Mapping):
        target.struct_value.Clear()  # marks the oneof as set even for {}
        for key, item in obj.items():
            fill(target.struct_value.fields[str(key)], item)
    elif isinstance(obj, (list, tuple)):
        target.list_value.Clear()
        for item in obj:
            fill(target.list_value.values.add(), item)
    else:
        fill(target, _jsonable(obj))


def to_value(obj: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    fill(value, obj)
    return value


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):  # pydantic v2
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} cannot be sent as JSON data")

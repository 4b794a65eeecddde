"""Turning domain values into JSON-safe dicts and back (Decimal as text, datetimes ISO)."""

import dataclasses
import json
import types
import typing
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

T = TypeVar("T")


def dump(value: Any) -> Any:
    """A JSON-safe rendering of a value: exact decimals, ISO times, enum values."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, float):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__}")


def dumps(value: Any) -> str:
    return json.dumps(dump(value), separators=(",", ":"), sort_keys=True)


def _load_as(kind: Any, raw: Any) -> Any:
    if raw is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _load_as(options[0], raw) if len(options) == 1 else raw
    if origin is dict:
        return dict(raw)
    if kind is Decimal:
        return Decimal(str(raw))
    if kind is datetime:
        return datetime.fromisoformat(raw)
    if kind is timedelta:
        return timedelta(seconds=float(raw))
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(raw)
    if dataclasses.is_dataclass(kind):
        return load(kind, raw)
    return raw


def load(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a dataclass stored by `dump`; unknown keys are ignored (older rows)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {name: _load_as(hints[name], value) for name, value in data.items() if name in names}
    return cls(**kwargs)


def loads(cls: type[T], text: str) -> T:
    return load(cls, json.loads(text))

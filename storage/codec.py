"""Turning domain values into JSON-safe dicts and back (Decimal as text, datetimes ISO).

Hot path: every saved intent, order, fill, position and state blob passes through here, so
the per-type decisions (which fields a dataclass has, how a field is loaded) are made once
per type and cached; `to_json` lets the C JSON encoder walk the value instead of `dump`.
"""

import dataclasses
import json
import operator
import types
import typing
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import partial
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, TypeVar

from storage.iso_text import iso_text
from storage.json_writer import JsonWriter

T = TypeVar("T")

Encoder = Callable[[Any], Any]
Loader = Callable[[Any], Any]

_PASS_THROUGH: frozenset[type] = frozenset({type(None), bool, int, str, float})
_field_names: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _field_names.get(cls)
    if names is None:
        names = _field_names[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _dataclass_dumper(kind: type) -> Encoder:
    """`dump` of a dataclass: each field's usual cases without a call to `dump` (a value
    written as it is — text, numbers, None, a str enum — takes no call, a type seen before
    its encoder's), in code generated once per class (no loop, no getattr per field)."""
    names = _names(kind)
    lines = [f"def dump_{kind.__name__}(value):"]
    for index, name in enumerate(names):
        lines.append(f"    v{index} = value.{name}")
        lines.append(f"    e{index} = _get(type(v{index}))")
    items = ", ".join(f"{name!r}: v{index} if e{index} is _identity else "
                      f"(_dump(v{index}) if e{index} is None else e{index}(v{index}))"
                      for index, name in enumerate(names))
    lines.append(f"    return {{{items}}}")
    namespace: dict[str, Any] = {"_get": _ENCODERS.get, "_identity": _identity,
                                 "_dump": dump}
    exec("\n".join(lines), namespace)  # only field names (identifiers) go into the text
    dumper: Encoder = namespace[f"dump_{kind.__name__}"]
    return dumper


def _dump_dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): dump(v) for k, v in value.items()}


def _dump_sequence(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [dump(v) for v in value]


def _identity(value: Any) -> Any:
    return value


def _enum_value(value: Enum) -> Any:
    return value.value


_ENCODERS: dict[type, Encoder] = {
    Decimal: str, datetime: iso_text, timedelta: timedelta.total_seconds,
    dict: _dump_dict, list: _dump_sequence, tuple: _dump_sequence,
    **{kind: _identity for kind in _PASS_THROUGH},    # `dump` answers these first itself
}


def _encoder_for(kind: type) -> Encoder | None:
    """The encoder of an instance type, in `dump`'s order of checks; None: not storable."""
    if issubclass(kind, bool | int | str):
        return _identity            # str/int enums stay themselves (JSON writes their value)
    if issubclass(kind, Decimal):
        return str
    if issubclass(kind, Enum):
        return _enum_value
    if issubclass(kind, datetime):
        return datetime.isoformat
    if issubclass(kind, timedelta):
        return timedelta.total_seconds
    if issubclass(kind, float):
        return _identity
    if dataclasses.is_dataclass(kind) and not issubclass(kind, type):
        return _dataclass_dumper(kind)
    if issubclass(kind, dict):
        return _dump_dict
    if issubclass(kind, list | tuple):
        return _dump_sequence
    return None


def dump(value: Any) -> Any:
    """A JSON-safe rendering of a value: exact decimals, ISO times, enum values."""
    kind = type(value)
    if kind in _PASS_THROUGH:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        encoder = _encoder_for(kind)
        if encoder is None:
            raise TypeError(f"cannot store a {kind.__name__}")
        _ENCODERS[kind] = encoder
    return encoder(value)


def _json_default(value: Any) -> Any:
    """What the JSON encoder cannot write itself, shallow (it recurses into the result)."""
    kind = type(value)
    encode = _json_defaults.get(kind)
    if encode is None:
        encode = _json_defaults[kind] = _json_default_for(kind)
    return encode(value)


def _json_default_for(kind: type) -> Encoder:
    """`_json_default`'s rendering of one type, decided once (TypeError: not storable)."""
    if dataclasses.is_dataclass(kind):
        return _fields_of(_names(kind))
    if issubclass(kind, Enum):
        return _enum_value
    if issubclass(kind, Decimal | datetime | timedelta) and (encode := _encoder_for(kind)):
        return encode               # dump's own encoder (str, isoformat, ...), not dump
    raise TypeError(f"cannot store a {kind.__name__}")


def _fields_of(names: tuple[str, ...]) -> Encoder:
    """A dataclass as the dict of its fields (shallow)."""
    if len(names) < 2:      # attrgetter returns a bare value for one name, fails for none
        return lambda value: {name: getattr(value, name) for name in names}
    get = operator.attrgetter(*names)
    return lambda value: dict(zip(names, get(value), strict=True))


_json_defaults: dict[type, Encoder] = {}
# json.dumps builds an encoder per call when given options; these are built once.
_json_encoders = {(sort_keys, compact): json.JSONEncoder(
    default=_json_default, sort_keys=sort_keys, separators=(",", ":") if compact else None)
    for sort_keys in (False, True) for compact in (False, True)}


def _one_shot(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """`encoder.encode` without its Python steps per call (a closure, the C encoder's
    arguments): the C encoder made for one value, with a fresh circular-reference memo, as
    `JSONEncoder.iterencode` makes it for `encode` (json/encoder.py); the same text."""
    if c_make_encoder is None or encoder.indent is not None or not encoder.ensure_ascii:
        return encoder.encode
    options = (encoder.default, encode_basestring_ascii, None, encoder.key_separator,
               encoder.item_separator, encoder.sort_keys, encoder.skipkeys,
               encoder.allow_nan)
    make = c_make_encoder

    def encode(value: Any) -> str:
        return "".join(make({} if encoder.check_circular else None, *options)(value, 0))
    return encode


# A dataclass through the writer generated for its class (storage/json_writer.py: the same
# text as its encoder's, cheaper); anything else through the encoder.
_json_writers = {options: JsonWriter(_one_shot(encoder), *options)
                 for options, encoder in _json_encoders.items()}


def to_json(value: Any, *, sort_keys: bool = False, compact: bool = False) -> str:
    """`json.dumps(dump(value))` without building the intermediate copy.

    The same text for every value `dump` accepts whose dict keys are text or numbers (the
    JSON encoder would write a True or None key as "true"/"null" where dump writes "True").
    """
    return _json_writers[sort_keys, compact].write(value)


def dumps(value: Any) -> str:
    """`to_json(value, sort_keys=True, compact=True)`."""
    return _json_writers[True, True].write(value)


def dumps_with(value: Any, name: str, extra: Any) -> str:
    """`dumps({name: extra, **dump(value)})` for the dataclass `value` (a journal entry's
    body: an event and its position's key), without building the dict
    (storage/json_writer.py `write_with`); the same caveat on dict keys as `to_json`.
    TypeError when `value` is not a dataclass; `name`: an ASCII identifier."""
    return _json_writers[True, True].write_with(value, name, extra)


# --- loading --------------------------------------------------------------------------
# field name -> how its stored value is loaded; None: as stored (text, numbers, booleans)
_loaders: dict[type, dict[str, Loader | None]] = {}


def _loader(kind: Any) -> Loader | None:
    """How to turn a stored value back into `kind` (decided once per field type); None: the
    stored value is the value (no call per field for text, numbers and booleans)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _loader(options[0]) if len(options) == 1 else None
    if origin is dict:
        return dict
    if origin is tuple:
        # stored as a JSON list; a tuple of one type (`tuple[str, ...]`) item by item
        args = typing.get_args(kind)
        item = _loader(args[0]) if len(args) == 2 and args[1] is Ellipsis else None
        return tuple if item is None else partial(_tuple_of, item)
    if kind is Decimal:
        return _decimal
    if kind is datetime:
        return datetime.fromisoformat
    if kind is timedelta:
        return _seconds
    if isinstance(kind, type) and issubclass(kind, Enum):
        return _member_of(kind)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return partial(load, kind)
    return None


def _tuple_of(item: Loader, raw: Any) -> tuple[Any, ...]:
    return tuple(item(value) for value in raw)


def _member_of(kind: type[Enum]) -> Loader:
    """`kind(raw)`, by its table of values first (the enum's own first step, without its
    metaclass call): what is not a value as stored (unhashable, or for `_missing_` to
    decide) goes to `kind(raw)`, which decides or raises ValueError as before."""
    members = kind._value2member_map_

    def member(raw: Any) -> Enum:
        try:
            return members[raw]
        except (KeyError, TypeError):
            return kind(raw)
    return member


def _decimal(raw: Any) -> Decimal:
    # a number (a row written by hand) by its text: Decimal(0.1) is not Decimal("0.1")
    return Decimal(raw) if raw.__class__ is str else Decimal(str(raw))


def _seconds(raw: Any) -> timedelta:
    return timedelta(seconds=float(raw))


def _field_loaders(cls: type) -> dict[str, Loader | None]:
    loaders = _loaders.get(cls)
    if loaders is None:
        hints = typing.get_type_hints(cls)
        loaders = _loaders[cls] = {name: _loader(hints[name]) for name in _names(cls)}
    return loaders


def load(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a dataclass stored by `dump`; unknown keys are ignored (older rows)."""
    loaders = _field_loaders(cls)
    kwargs = {name: value if value is None or (loader := loaders[name]) is None
              else loader(value)
              for name, value in data.items() if name in loaders}
    return cls(**kwargs)


def loads(cls: type[T], text: str) -> T:
    return load(cls, json.loads(text))

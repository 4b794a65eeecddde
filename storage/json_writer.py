"""The JSON text of a dataclass, as the C JSON encoder writes it through storage/codec.py's
`to_json` and `dumps`, from code generated once per class and text format.

    text = codec.dumps(position)     # JsonWriter(general, ...).write: the same text, cheaper

Every position save encodes the whole record (~1.3 KB: its legs, decimals, times), and the
paper exchange each order it keeps. Through the JSON encoder that is a Python `default`
call per nested value (each leg, order, decimal, time) and, key-sorted, a sort of each
dict's keys. Here the field names are ordered once per class (sorted, or as declared),
and a generated function joins `"name":<value>` pieces, each value written by its exact
type's writer (`JsonWriter.writers`). A type without a writer of its own here (a list, a
dict, an enum that is not text, a subclass of a time) is written by the same JSON encoder
as before, on that value alone: JSON text is compositional, so the whole is the same text.

What each writer must match (CPython's C encoder, json/encoder.py, `c_make_encoder`,
ensure_ascii, allow_nan, the writer's sort_keys and separators):
- text (and any str subclass: a StrEnum member) by `encode_basestring_ascii`, its own;
- an int by int's repr (an IntEnum too: the C encoder never asks the enum), bool first;
- a float by float's repr, NaN/Infinity/-Infinity spelled as the encoder spells them;
- Decimal and datetime as the text of `str`/`isoformat` in quotes (ASCII digits, signs,
  letters, "." and ":" only: nothing to escape); timedelta as its seconds (a float).
"""

import dataclasses
import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from storage.iso_text import iso_text

Writer = Callable[[Any], str]


def _float(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _none(value: None) -> str:
    return "null"


def _datetime(value: datetime) -> str:
    return f'"{iso_text(value)}"'


def _timedelta(value: timedelta) -> str:
    return _float(value.total_seconds())


_BOOLEANS = {True: "true", False: "false"}
# exact type -> its writer, for every JSON writer
_BASIC_WRITERS: dict[type, Writer] = {
    str: encode_basestring_ascii, int: int.__repr__, bool: _BOOLEANS.__getitem__,
    float: _float, type(None): _none, Decimal: '"%s"'.__mod__, datetime: _datetime,
    timedelta: _timedelta,
}


# A class attribute: `True` says every instance is a value that never changes, all the way
# down (frozen, every field text, a number, a Decimal, a time, an enum, None or another such
# value: no dict, no list), so the text written for an instance may be given again for it.
KEPT_TEXT = "__json_text_kept__"
KEPT_TEXTS = 256        # texts kept per class; all forgotten at once past that


def _kept(write: Writer) -> Writer:
    """`write`, giving the text written before for the very same instance (not an equal
    one: Decimal("1.0") == Decimal("1.00") writes other digits). Kept with the instance
    itself, so its id cannot be another object's while it is kept."""
    texts: dict[int, tuple[Any, str]] = {}

    def kept(value: Any) -> str:
        known = texts.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        text = write(value)
        if len(texts) >= KEPT_TEXTS:
            texts.clear()
        texts[id(value)] = (value, text)
        return text
    return kept


class JsonWriter:
    """The JSON text of a value, as `general` (the codec's JSON encoder: same `sort_keys`
    and separators) writes it: `JsonWriter(general, sort_keys, compact).write(value)`.
    `general(value)` writes what has no writer here."""

    def __init__(self, general: Writer, sort_keys: bool, compact: bool) -> None:
        self.general = general
        self.sort_keys = sort_keys
        self.item_separator, self.key_separator = (",", ":") if compact else (", ", ": ")
        # exact type -> its writer; other types are decided once each (`_writer_for`)
        self.writers: dict[type, Writer] = dict(_BASIC_WRITERS)
        # (dataclass, extra name) -> the writer of `write_with`
        self.writers_with: dict[tuple[type, str], Callable[[Any, Any], str]] = {}

    def write(self, value: Any) -> str:
        """The text of `value` (TypeError for what the codec cannot store)."""
        return self.writer(type(value))(value)

    def writer(self, kind: type) -> Writer:
        writer = self.writers.get(kind)
        if writer is None:
            writer = self.writers[kind] = self._writer_for(kind)
        return writer

    def _writer_for(self, kind: type) -> Writer:
        """The writer of a type met for the first time (see the module docstring)."""
        if issubclass(kind, str):
            return encode_basestring_ascii      # its text, as the C encoder reads it
        if issubclass(kind, int) and not issubclass(kind, bool):
            return int.__repr__
        if dataclasses.is_dataclass(kind) and not issubclass(kind, type):
            writer = self._generated(kind)
            return _kept(writer) if kind.__dict__.get(KEPT_TEXT) is True else writer
        return self.general

    def write_with(self, value: Any, name: str, extra: Any) -> str:
        """The text of the dict `{name: extra, **fields}` of the dataclass `value` (a
        field called `name` stands instead of `extra`, as in that dict), as `general`
        writes that dict of `dump`'s values: a journal entry's body, one event and its
        position's key, without the dict and the JSON encoder (~20,000 instructions for a
        dict of five texts, its fixed cost; ~3,000 here). `name`: an ASCII identifier
        (ValueError otherwise); TypeError when `value` is not a dataclass."""
        kind = type(value)
        writer = self.writers_with.get((kind, name))
        if writer is None:
            writer = self.writers_with[kind, name] = self._generated(kind, name)
        return writer(value, extra)

    def _generated(self, kind: type, extra: str | None = None) -> Callable[..., str]:
        """`{"a":<a>,"b":<b>,...}` for the fields of `kind` (sorted, or as declared), one
        f-string. `extra`: a name put first (then sorted with the fields), written from
        the generated function's second argument unless a field has that name."""
        names = [field.name for field in dataclasses.fields(kind)]
        sources = {name: f"value.{name}" for name in names}
        if extra is not None:
            if not (extra.isidentifier() and extra.isascii()):
                raise ValueError(f"not an ASCII identifier: {extra!r}")
            sources = {extra: sources.get(extra, "extra"),
                       **{name: source for name, source in sources.items() if name != extra}}
            names = list(sources)
        if self.sort_keys:
            names.sort()
        namespace: dict[str, Any] = {"_get": self.writers.get, "_writer": self.writer}
        arguments = "value" if extra is None else "value, extra"
        lines = [f"def json_{kind.__name__}({arguments}):"]
        text = []
        for index, name in enumerate(names):
            lines.append(f"    v{index} = {sources[name]}")
            # JSON labels of identifiers: no quote, brace or backslash to escape in the
            # f-string ('...': its expressions spell their texts "..."). None and the
            # booleans (most of a position's fields) are written without a call.
            value = f"v{index}"
            text.append(("{{" if index == 0 else self.item_separator) + json.dumps(name)
                        + self.key_separator
                        + f'{{"null" if {value} is None else "true" if {value} is True else '
                        f'"false" if {value} is False else '
                        f"(_get(type({value})) or _writer(type({value})))({value})}}")
        lines.append(f"    return f'{''.join(text)}}}}}'" if names else "    return '{}'")
        # only field names (identifiers) and their JSON labels go into the generated text
        exec("\n".join(lines), namespace)
        writer: Callable[..., str] = namespace[f"json_{kind.__name__}"]
        return writer

"""The ISO text of a time, remembered: `iso_text(moment) == moment.isoformat()`.

    updated_at = iso_text(clock.now())

Every saved intent, order, position and event writes its times as ISO text, and a tick
writes the same few times again and again (the tick's time, an intent's creation and
sending times on each of its saves, a position's and its legs' times on each step). This
CPython's `datetime.isoformat` costs ~5-9 us a call (measured: 30x a dict lookup), about
50 calls per entry tick.

Exact: the key is the time with its zone and fold. Two keys are equal only when their
times are equal, their zones equal and their folds equal; equal zones give equal UTC
offsets to equal times (`timezone`: equal offsets; `ZoneInfo` and a `tzinfo` without an
`__eq__` of its own: the same object), so the texts are equal: the same local fields,
microseconds and offset. The fold is in the key because a time compares equal to its
other-fold twin in the same zone (the comparison ignores it) though the offset, and so the
text, may differ. Only `datetime` itself: a subclass (pandas' Timestamp) writes other text
and compares equal to a datetime.

Invalidation: none needed (a time and its text never change); the memory is bounded:
forgotten all at once past ISO_TEXTS_KEPT times (a replay meets a new time every candle).

A time first met costs CPython's `isoformat` ~10,800 instructions (its fields go through
`PyUnicode_FromFormat` and `sprintf`, its offset through `utcoffset`); the agent's times are
all in UTC itself (`datetime.UTC`, the clock's zone), and one of those is written from kept
pieces instead (`utc_text`: ~2,000), the very same text (tests/test_iso_text.py).
"""

from datetime import UTC, datetime
from typing import Any

ISO_TEXTS_KEPT = 1024

_texts: dict[tuple[datetime, Any, int], str] = {}

# "00".."99": a month, day, hour, minute or second as isoformat writes it
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))
_years: dict[int, str] = {}     # a year as isoformat writes it (four digits, zero-padded)


def iso_text(moment: datetime) -> str:
    """`moment.isoformat()` (AttributeError for what is not a time, as that call)."""
    if moment.__class__ is not datetime:
        return moment.isoformat()
    key = (moment, moment.tzinfo, moment.fold)
    text = _texts.get(key)
    if text is None:
        if len(_texts) >= ISO_TEXTS_KEPT:
            _texts.clear()
        text = _texts[key] = utc_text(moment) if moment.tzinfo is UTC \
            else moment.isoformat()
    return text


def iso_text_once(moment: datetime) -> str:
    """`moment.isoformat()` of a time not worth remembering (a cutoff computed afresh each
    time: kept, it would only push out the times that come back)."""
    if moment.__class__ is datetime and moment.tzinfo is UTC:
        return utc_text(moment)
    return moment.isoformat()


def utc_text(moment: datetime) -> str:
    """`moment.isoformat()` of a `datetime` whose zone is `datetime.UTC` itself:
    "YYYY-MM-DDTHH:MM:SS+00:00", with ".ffffff" after the seconds when the microseconds are
    not 0 (the fold changes nothing: UTC's offset is always 0). Not for other zones (equal
    ones may write their offset otherwise) nor datetime subclasses (their own isoformat)."""
    year = _years.get(moment.year)
    if year is None:
        year = _years[moment.year] = f"{moment.year:04d}"
    two = _TWO_DIGITS
    microsecond = moment.microsecond
    if microsecond:
        return (f"{year}-{two[moment.month]}-{two[moment.day]}T{two[moment.hour]}:"
                f"{two[moment.minute]}:{two[moment.second]}.{microsecond:06d}+00:00")
    return (f"{year}-{two[moment.month]}-{two[moment.day]}T{two[moment.hour]}:"
            f"{two[moment.minute]}:{two[moment.second]}+00:00")

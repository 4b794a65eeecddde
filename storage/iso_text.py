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
"""

from datetime import datetime
from typing import Any

ISO_TEXTS_KEPT = 1024

_texts: dict[tuple[datetime, Any, int], str] = {}


def iso_text(moment: datetime) -> str:
    """`moment.isoformat()` (AttributeError for what is not a time, as that call)."""
    if moment.__class__ is not datetime:
        return moment.isoformat()
    key = (moment, moment.tzinfo, moment.fold)
    text = _texts.get(key)
    if text is None:
        if len(_texts) >= ISO_TEXTS_KEPT:
            _texts.clear()
        text = _texts[key] = moment.isoformat()
    return text

"""`CandleWindow`: a history's closed candles read in place, the list the strategy is given
without copying it (trader/market/history.py `CandleHistory.closed`).

A new candle every candle made `closed()` copy the whole bounded history (1,000 candles:
~13,000 instructions, a few % of a replayed candle), for a strategy that mostly reads the
last two. The window is `items[start:stop]` of the list the history keeps alongside its
deque. It never changes: the history only appends to that list past `stop` and trims it by
making a new list, so a window handed out stays the candles of its moment (a strategy may
keep it, a tick may read it across an await while a candle arrives).

It reads as the list it stands for: `len`, indexing (negative too; IndexError past either
end), slicing (a new `list`), iteration and `reversed` (lazily from the newest: the
strategy's channel test stops at the first candle or two), `==` with a list or another
window, and the `Sequence` methods (`index`, `count`, `in`). Not a list: no `append`, no
`+` with a list on its left (`list(window)` or a slice gives one).

A history that keeps its candles' closes, true ranges, highs and lows as floats (index for
index with `items`, trimmed with it: a window keeps the lists of its moment) hands them to
its windows too: `floats(count)` gives the closes and ranges of the last `count` candles,
for the float pre-tests of the strategy and the trend (trader/strategy/default.py,
trader/strategy/regime.py), `channel_floats(count, upper)` the closes and the highs (or
lows), for the strategy's channel tests. Its exact true ranges, kept by the history as they
are first asked for, give `true_ranges(count)` and `atr(count, period)` without computing
them again (the strategy's signal, the entry's regime and trend).
"""

from collections.abc import Iterator, Sequence
from decimal import Decimal, getcontext
from itertools import islice
from typing import overload

from trader.domain import Candle
from trader.market.exact_ranges import ExactRanges
from trader.market.indicators import (
    RoughEmas,
    largest_magnitude,
    rough_emas_of_floats,
    true_ranges,
    wilder_average,
)


class CandleWindow(Sequence[Candle]):
    __slots__ = ("_items", "_start", "_stop", "_floats", "_exact", "_rough", "_atr", "_largest")

    def __init__(self, items: list[Candle], start: int, stop: int,
                 floats: tuple[list[float], list[float], list[float], list[float]] | None = None,
                 exact: ExactRanges | None = None) -> None:
        self._items = items
        self._start = start
        self._stop = stop
        self._floats = floats      # (closes, true ranges, highs, lows) of `items`, index for index
        self._exact = exact        # the exact true ranges of `items`, as asked
        self._rough: dict[tuple[int, int, int], RoughEmas | None] | None = None
        self._atr: dict[tuple[int, int, int, str], Decimal | None] | None = None
        self._largest: tuple[int, float] | None = None      # (count, largest_close(count))

    def floats(self, count: int) -> tuple[list[float], list[float]] | None:
        """The float closes and true ranges of the last `count` candles (each range against
        the close before it, in the window or not), or None: no floats kept, or `count`
        not within the window."""
        floats, stop = self._floats, self._stop
        if floats is None or not 0 < count <= stop - self._start:
            return None
        return floats[0][stop - count:stop], floats[1][stop - count:stop]

    def true_ranges(self, count: int) -> list[Decimal]:
        """`true_ranges(self[-count:])[1:]`, the same Decimals: the true ranges of the last
        `count` candles but the first, each against the close before it; from the history's
        exact true ranges (each computed once: trader/market/exact_ranges.py) when it keeps
        them and `count` is within the window."""
        exact, stop = self._exact, self._stop
        if exact is None or not 0 < count <= stop - self._start:
            return true_ranges(self[-count:])[1:]
        return exact.between(stop - count + 1, stop)

    def atr(self, count: int, period: int) -> Decimal | None:
        """`atr(self[-count:], period)`, the same Decimal, from `true_ranges(count)`; kept on
        the window (it never changes: the strategy's signal, then the entry's trend, pay it
        once) for the Decimal context it was computed under."""
        context = getcontext()
        key = (count, period, context.prec, context.rounding)
        kept = self._atr
        if kept is None:
            kept = self._atr = {}
        elif key in kept:
            return kept[key]
        answer = kept[key] = wilder_average(self.true_ranges(count), period)
        return answer

    def channel_floats(self, count: int, upper: bool) -> tuple[list[float], list[float]] | None:
        """The float closes and highs (`upper`) or lows of the last `count` candles, or None:
        no floats kept, or `count` not within the window."""
        floats, stop = self._floats, self._stop
        if floats is None or not 0 < count <= stop - self._start:
            return None
        return floats[0][stop - count:stop], floats[2 if upper else 3][stop - count:stop]

    def largest_close(self, count: int) -> float | None:
        """`largest_magnitude` of the float closes of the last `count` candles (the float
        pre-tests' P: the strategy's body test, then its rough EMAs), kept for the last
        count asked; None as `floats(count)`."""
        largest = self._largest
        if largest is not None and largest[0] == count:
            return largest[1]
        floats = self.floats(count)
        if floats is None:
            return None
        self._largest = (count, largest_magnitude(floats[0]))
        return self._largest[1]

    def rough_emas(self, count: int, fast: int, slow: int) -> RoughEmas | None | bool:
        """`rough_emas_of_floats` of the last `count` closes' floats, kept on the window
        (it never changes: the strategy's signal, then the entry's trend, pay it once);
        False when the window has no floats for them (the caller converts the closes)."""
        key = (count, fast, slow)
        rough = self._rough
        if rough is not None and key in rough:
            return rough[key]
        floats = self.floats(count)
        if floats is None:
            return False
        if rough is None:
            rough = self._rough = {}
        answer = rough[key] = rough_emas_of_floats(floats[0], fast, slow,
                                                   self.largest_close(count))
        return answer

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> Candle: ...

    @overload
    def __getitem__(self, index: slice) -> list[Candle]: ...

    def __getitem__(self, index: int | slice) -> Candle | list[Candle]:
        if type(index) is int:      # most reads ([-1], [-2]): without the range below
            position = (self._stop if index < 0 else self._start) + index
            if self._start <= position < self._stop:
                return self._items[position]
            raise IndexError("CandleWindow index out of range")
        # A range of the window's positions in `items` resolves the index as a list would:
        # negative from the end, IndexError outside, a slice's bounds clipped.
        span = range(self._start, self._stop)[index]
        if type(span) is int:
            return self._items[span]
        if span.step == 1:          # type: ignore[union-attr]
            return self._items[span.start:span.stop]   # type: ignore[union-attr]
        return [self._items[i] for i in span]           # type: ignore[union-attr]

    def __iter__(self) -> Iterator[Candle]:
        return iter(self._items[self._start:self._stop])

    def __reversed__(self) -> Iterator[Candle]:
        items = self._items
        end = len(items)        # candles appended past the window since it was made
        return islice(reversed(items), end - self._stop, end - self._start)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CandleWindow):
            other = other._items[other._start:other._stop]
        if not isinstance(other, list):
            return NotImplemented
        return self._items[self._start:self._stop] == other

    __hash__ = None     # type: ignore[assignment]   # a list's: unhashable

    def __repr__(self) -> str:
        return f"CandleWindow({self._items[self._start:self._stop]!r})"

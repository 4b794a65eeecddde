"""`ExactRanges`: the exact (Decimal) true ranges of a history's kept candles, each computed
once, when a window first asks for it (trader/market/candle_window.py `atr`).

The default strategy asks for the exact ATR of its 120-candle window only on the few
candles that signal (a few in a hundred): recomputing the window's 119 true ranges each
time cost as much as the Wilder average itself, for ranges mostly computed a few candles
before. Each range is `indicators.true_ranges` of its candle and the candle before it (the
very function, so the very Decimal), computed under the Decimal context of the moment it is
asked: a change of precision or rounding starts the kept ranges afresh.

    exact = ExactRanges(items)          # the history's list of candles (only appended to)
    exact.between(1, len(items))        # == true_ranges(items)[1:], computed once each
"""

from decimal import Decimal, getcontext
from typing import Any

from trader.domain import Candle
from trader.market.indicators import true_ranges_afresh


class ExactRanges:
    """The true range of `items[i]` against `items[i - 1].close` for i in [first, first +
    len(ranges)): a run grown at its end as windows ask, begun again where asked when a
    window asks before it (or under another context)."""
    __slots__ = ("items", "first", "ranges", "context")

    def __init__(self, items: list[Candle], first: int = 0,
                 ranges: list[Decimal] | None = None, context: Any = None) -> None:
        self.items = items
        self.first = first
        self.ranges: list[Decimal] = ranges if ranges is not None else []
        self.context = context       # (precision, rounding) the ranges were computed under

    def between(self, start: int, stop: int) -> list[Decimal]:
        """The ranges of items[start:stop] against their previous closes (1 <= start <=
        stop <= len(items)): `true_ranges(items[start - 1:stop])[1:]`, the same Decimals."""
        context = getcontext()
        key = (context.prec, context.rounding)
        first, ranges = self.first, self.ranges
        end = first + len(ranges)
        if key != self.context or not first <= start <= end:
            self.context, self.first = key, start
            first, end = start, start
            ranges = self.ranges = []
        if stop > end:
            ranges += true_ranges_afresh(self.items[end - 1:stop])[1:]
        return ranges[start - first:stop - first]

    def trimmed(self, items: list[Candle], cut: int) -> "ExactRanges":
        """The ranges kept for `items`, the list of these items from index `cut` on (a
        history trims by making a new list; this one stays its windows')."""
        first, ranges = self.first - cut, self.ranges
        if first < 0:
            ranges, first = ranges[-first:], 0
        else:
            ranges = ranges[:]
        return ExactRanges(items, first, ranges, self.context)

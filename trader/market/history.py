"""A symbol's closed candles, bounded, with what the tick derives from them kept up to date
as each candle closes instead of recomputed from the whole history every tick:

- the higher timeframe (`factor` x the interval), the same candles `aggregate` builds: only
  complete groups, aligned on the higher grid, a group losing a candle off the front of the
  bounded history leaves with it;
- the true ranges of the last `range_window` candles (each against its previous close) as
  floats, for the regime breaker's volatility ratio (trader/strategy/regime.py
  `classify_ranges`);
- the list copy the strategy reads, made once per new candle, not once per reader.

    history = CandleHistory(maxlen=1000, factor=5, range_window=99)
    history.append(candle)                  # a deque: append, extend, clear, [-1], len
    history.closed()                        # list[Candle], cached until the next change
    history.higher()                        # == aggregate(history.closed(), 5), or None

It is a `deque` so the feed watchdog's backfill (clear + extend) and every reader of the
engine's candles work unchanged; each of those goes through `append`.
"""

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta

from trader.domain import ZERO, Candle
from trader.strategy.base import EPOCH


class CandleHistory(deque):   # type: ignore[type-arg] - deque[Candle]
    def __init__(self, maxlen: int, factor: int = 1, range_window: int = 0,
                 candles: Iterable[Candle] = ()) -> None:
        super().__init__((), maxlen)
        self.factor = factor
        self.range_window = range_window
        self._reset()
        self.extend(candles)

    def _reset(self) -> None:
        self._closed: list[Candle] | None = []
        self._higher: deque[tuple[int, Candle]] = deque()   # (group number, candle)
        self._group: list[Candle] = []                      # the group being filled
        self._step: timedelta | None = None
        self._higher_valid = True
        # true ranges of the last range_window candles that have a previous close
        self.ranges: deque[float] = deque(maxlen=self.range_window)

    # --- changing -----------------------------------------------------------------------
    def append(self, candle: Candle) -> None:
        evicted = self[0] if self.maxlen is not None and len(self) == self.maxlen else None
        previous = self[-1] if self else None
        super().append(candle)
        self._closed = None
        if previous is not None and self.range_window:
            self.ranges.append(_true_range(candle, previous))
        self._add_to_higher(candle, evicted)

    def extend(self, candles: Iterable[Candle]) -> None:
        for candle in candles:
            self.append(candle)

    def clear(self) -> None:
        super().clear()
        self._reset()

    def appendleft(self, candle: Candle) -> None:
        raise TypeError("a candle history only grows at its end")

    def extendleft(self, candles: Iterable[Candle]) -> None:
        raise TypeError("a candle history only grows at its end")

    # --- reading ------------------------------------------------------------------------
    def closed(self) -> list[Candle]:
        """The candles as a list (the strategy slices it); the same list until a change."""
        if self._closed is None:
            self._closed = list(self)
        return self._closed

    def higher(self) -> list[Candle] | None:
        """`aggregate(self.closed(), factor)`, built as candles closed; None when it cannot
        be kept incrementally (mixed intervals): the caller aggregates then."""
        if self.factor <= 1:
            return list(self)
        if not self._higher_valid:
            return None
        return [candle for _, candle in self._higher]

    # --- the higher timeframe -------------------------------------------------------------
    def _add_to_higher(self, candle: Candle, evicted: Candle | None) -> None:
        if self.factor <= 1 or not self._higher_valid:
            return
        if self._step is None:
            self._step = candle.interval * self.factor
        elif candle.interval * self.factor != self._step:
            self._higher_valid = False      # aggregate() would use the first candle's interval
            return
        number = (candle.open_time - EPOCH) // self._step
        if self._group and (self._group[0].open_time - EPOCH) // self._step != number:
            self._group = []                # the previous group never completed (a gap)
        self._group.append(candle)
        if len(self._group) == self.factor:
            self._higher.append((number, _merge(self._group, number, self._step)))
            self._group = []
        if evicted is not None:
            self._forget_before(evicted.open_time)

    def _forget_before(self, evicted_at: datetime) -> None:
        """The group of the candle that left the front is no longer complete."""
        assert self._step is not None
        gone = (evicted_at - EPOCH) // self._step
        while self._higher and self._higher[0][0] <= gone:
            self._higher.popleft()
        self._group = [c for c in self._group if c.open_time > evicted_at]


def _merge(rows: list[Candle], number: int, step: timedelta) -> Candle:
    """One higher-timeframe candle, exactly as `trader.strategy.base.aggregate` builds it."""
    return Candle(rows[0].symbol, EPOCH + step * number, step, rows[0].open,
                  max(c.high for c in rows), min(c.low for c in rows), rows[-1].close,
                  sum((c.volume for c in rows), ZERO))


def _true_range(candle: Candle, previous: Candle) -> float:
    """max(high-low, |high-prev close|, |low-prev close|), in float."""
    high, low, close = float(candle.high), float(candle.low), float(previous.close)
    return max(high - low, abs(high - close), abs(low - close))


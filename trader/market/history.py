"""A symbol's closed candles, bounded, with what the tick derives from them kept up to date
as each candle closes instead of recomputed from the whole history every tick:

- the higher timeframe (`factor` x the interval), the same candles `aggregate` builds: only
  complete groups, aligned on the higher grid, a group losing a candle off the front of the
  bounded history leaves with it; a group is merged into its candle when first read (the
  strategy reads the higher timeframe only when the trading timeframe signals), and the
  list of merged candles is kept from one read to the next: a read drops the groups that
  left the front since and merges only the groups completed since;
- the true ranges of the last `range_window` candles (each against its previous close) as
  floats, with their Wilder averages, for the regime breaker's volatility ratio
  (trader/strategy/regime.py `RangeWindow`, `classify_ranges`), and the last close as a
  float (`last_close`: the next range's previous close and the crash breaker's float test
  read it, a Decimal made into a float once);
- the candles the strategy reads, in place (`closed()`: a CandleWindow over a list kept
  alongside the deque, trimmed by making a new list: trader/market/candle_window.py),
  and the last few candles without a copy of the whole history (`tail`, the crash
  breaker's); beside that list, each candle's close, true range, high and low as floats
  (the strategy's float pre-tests and channel tests) and, computed when first asked, its
  exact true range (trader/market/exact_ranges.py: the strategy's ATR, the entry's regime
  and trend);
- a `version` that changes with every change, which caches of what the candles give key
  on (trader/breakers.py).

    history = CandleHistory(maxlen=1000, factor=5, range_window=99)
    history.append(candle)                  # a deque: append, extend, clear, [-1], len
    history.closed()                        # CandleWindow (reads as list[Candle]), no copy
    history.tail(5)                         # == history.closed()[-5:], without the copy
    history.higher()                        # == aggregate(history.closed(), 5), or None
    history.version                         # changes with every change (caches key on it)

It is a `deque` so the feed watchdog's backfill (clear + extend) and every reader of the
engine's candles work unchanged; each of those goes through `append`.
"""

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import count, islice

from trader.domain import ZERO, Candle
from trader.market.candle_window import CandleWindow
from trader.market.exact_ranges import ExactRanges
from trader.strategy.base import EPOCH
from trader.strategy.regime import DEFAULT_THRESHOLDS, RangeWindow

_VERSIONS = count(1)    # shared by every history: two histories never hold the same version


class CandleHistory(deque[Candle]):
    # Slots, not an instance dict: an attribute of a deque subclass with a dict is read
    # through the generic lookup (~270 instructions more than a slot's), and the tick
    # reads and writes a few dozen of them every candle (append, the breakers, the desk).
    __slots__ = ("factor", "range_window", "version", "_items", "_floats", "_exact", "_closed",
                 "_higher", "_completed", "_read", "_read_from", "_group", "_group_start",
                 "_group_end", "_interval", "_step", "_higher_valid", "ranges", "last_close")

    def __init__(self, maxlen: int, factor: int = 1, range_window: int = 0,
                 candles: Iterable[Candle] = ()) -> None:
        super().__init__((), maxlen)
        self.factor = factor
        self.range_window = range_window
        self._reset()
        self.extend(candles)

    def _reset(self) -> None:
        self.version = next(_VERSIONS)
        # The candles again, as a list kept up to twice as long; trimmed once it is by
        # making a new one, never changed before its end: `closed()` hands out windows
        # on it (trader/market/candle_window.py).
        self._items: list[Candle] = []
        # With range_window: alongside `_items`, index for index (trimmed with it), each
        # candle's close, true range (against the close before it; its high - low for the
        # first candle), high and low as floats, made once as it is appended: the
        # strategy's and the trend's float pre-tests read them through the windows
        # (trader/strategy/default.py) instead of converting 120 Decimals each time
        # (~1,460 instructions a value), and its channel tests without a scan of Decimals.
        self._floats: tuple[list[float], list[float], list[float], list[float]] | None = \
            ([], [], [], []) if self.range_window else None
        # The exact true ranges of `_items`, computed when a window first asks for them (the
        # strategy's ATR on a signal): trader/market/exact_ranges.py.
        self._exact = ExactRanges(self._items)
        self._closed: CandleWindow | None = None
        self._higher: deque[_Group] = deque()               # the complete groups
        self._completed = 0                                 # groups ever completed
        # The merged candles of the last read (never handed out: a read returns a copy),
        # of the groups numbered [_read_from, _read_from + len) in completion order.
        self._read: list[Candle] = []
        self._read_from = 0
        self._group: list[Candle] = []                      # the group being filled
        self._group_start = EPOCH                           # its cell on the higher grid,
        self._group_end = EPOCH                             # [start, end) (`_add_to_higher`)
        self._interval: timedelta | None = None             # the first candle's
        self._step: timedelta | None = None                 # factor x that interval
        self._higher_valid = True
        # true ranges of the last range_window candles that have a previous close
        self.ranges = RangeWindow(self.range_window,
                                  (DEFAULT_THRESHOLDS.fast, DEFAULT_THRESHOLDS.slow))
        # float(self[-1].close) while range_window is kept (0.0 before a candle, or without)
        self.last_close = 0.0

    # --- changing -----------------------------------------------------------------------
    def append(self, candle: Candle) -> None:
        maxlen, count = self.maxlen, len(self)
        evicted = self[0] if count == maxlen else None
        floats = self._floats
        if floats is not None:      # (range_window)
            close = float(candle.close)
            high, low = float(candle.high), float(candle.low)
            # the true range: max(high-low, |high-prev close|, |low-prev close|), in float;
            # high-low when the previous close lies within the candle (most candles; the
            # same float either way)
            if count:
                previous = self.last_close
                span = high - low if low <= previous <= high \
                    else max(high - low, abs(high - previous), abs(low - previous))
                self.ranges.append(span)
            else:
                span = high - low
            self.last_close = close
            floats[0].append(close)
            floats[1].append(span)
            floats[2].append(high)
            floats[3].append(low)
        deque.append(self, candle)
        items = self._items
        items.append(candle)
        if maxlen is not None and len(items) >= 2 * maxlen:
            self._items = items[-maxlen:]       # a new list: the windows handed out keep theirs
            self._exact = self._exact.trimmed(self._items, len(items) - maxlen)
            if floats is not None:
                self._floats = (floats[0][-maxlen:], floats[1][-maxlen:],
                                floats[2][-maxlen:], floats[3][-maxlen:])
        self._closed = None
        self.version = next(_VERSIONS)
        if self.factor > 1 and self._higher_valid:
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
    def closed(self) -> CandleWindow:
        """The candles, read as a list (the strategy slices it) without a copy; the same
        window until a change, and a window never changes."""
        closed = self._closed
        if closed is None:
            items = self._items
            closed = self._closed = CandleWindow(items, len(items) - len(self), len(items),
                                                 self._floats, self._exact)
        return closed

    def last_ranges_sum(self, count: int) -> float:
        """`sum(islice(reversed(self.ranges), count))`, the same float (the same additions,
        newest first), from the spans kept beside the candles (each range is its candle's
        span there) in one reversed slice: the crash breaker's, every candle. For ranges of
        candles still held: 1 <= count <= len(self.ranges) and count < len(self)."""
        spans = self._floats[1]         # type: ignore[index]   # kept ranges: range_window
        return sum(spans[:-count - 1:-1])

    def tail(self, size: int) -> list[Candle]:
        """The last `size` candles (fewer while the history is shorter), oldest first:
        `closed()[-size:]` without copying the whole history."""
        if size <= 0:
            return self.closed()[-size:]
        return self._items[-min(size, len(self)):] if self else []

    def higher(self) -> list[Candle] | None:
        """`aggregate(self.closed(), factor)`, built as candles closed; None when it cannot
        be kept incrementally (mixed intervals): the caller aggregates then."""
        if self.factor <= 1:
            return list(self)
        if not self._higher_valid:
            return None
        step = self._step
        if step is None:
            return []
        return list(self._read_since_last(step))

    def _read_since_last(self, step: timedelta) -> list[Candle]:
        """The merged candles of the complete groups: the last read's, less the groups that
        left the front since, plus the groups completed since. Complete groups never change
        (they only leave from the front), so the kept candles are still theirs."""
        higher, read = self._higher, self._read
        first = self._completed - len(higher)     # the number of the front group
        read_end = self._read_from + len(read)
        if first > read_end:                      # every group read last time has left
            read.clear()
            read_end = first
        else:
            del read[:first - self._read_from]
        self._read_from = first
        read.extend(group.merged(step) for group in islice(higher, read_end - first, None))
        return read

    # --- the higher timeframe -------------------------------------------------------------
    def _add_to_higher(self, candle: Candle, evicted: Candle | None) -> None:
        step = self._step
        interval = candle.interval
        if step is None:
            self._interval = interval
            step = self._step = interval * self.factor
        elif interval is not self._interval and interval != self._interval:
            self._higher_valid = False      # aggregate() would use the first candle's interval
            return
        group = self._group
        opened = candle.open_time
        # [_group_start, _group_end): the cell on the higher grid of the group being filled,
        # or once one completes, the cell after it: where the next candle opens unless the
        # data has a gap (then its cell is found from its open time, as it is for a
        # candle outside the cell of the group it would join)
        if not self._group_start <= opened < self._group_end:
            if group:
                group = self._group = []    # the previous group never completed (a gap)
            self._group_start = EPOCH + step * ((opened - EPOCH) // step)
            self._group_end = self._group_start + step
        group.append(candle)
        if len(group) == self.factor:
            self._higher.append(_Group(self._group_start, group))
            self._completed += 1
            self._group = []
            self._group_start, self._group_end = self._group_end, self._group_end + step
        if evicted is not None:
            evicted_at = evicted.open_time
            higher = self._higher
            # most candles leave nothing incomplete: only the front group's first candle does
            if (higher and higher[0].start <= evicted_at) \
                    or (self._group and self._group_start <= evicted_at):
                self._forget_before(evicted_at)

    def _forget_before(self, evicted_at: datetime) -> None:
        """The group of the candle that left the front is no longer complete: every group
        that starts at or before it (the grid's group numbers up to the evicted one's)."""
        higher = self._higher
        while higher and higher[0].start <= evicted_at:
            higher.popleft()
        # the group being filled lies in [start, end): from start on, nothing is evicted
        if self._group and self._group_start <= evicted_at:
            self._group = [c for c in self._group if c.open_time > evicted_at]


class _Group:
    """One complete group of the higher timeframe: its start on the grid and its candles,
    merged into one candle when first read (the strategy reads the higher timeframe only
    when the trading timeframe signals); the history keeps what was read."""
    __slots__ = ("start", "rows")

    def __init__(self, start: datetime, rows: list[Candle]) -> None:
        self.start = start
        self.rows = rows

    def merged(self, step: timedelta) -> Candle:
        return _merge(self.rows, self.start, step)


def _merge(rows: list[Candle], start: datetime, step: timedelta) -> Candle:
    """One higher-timeframe candle, exactly as `trader.strategy.base.aggregate` builds it
    (`start`: EPOCH + step x its group number)."""
    return Candle(rows[0].symbol, start, step, rows[0].open,
                  max(c.high for c in rows), min(c.low for c in rows), rows[-1].close,
                  sum((c.volume for c in rows), ZERO))

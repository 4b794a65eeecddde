"""Candles from CSV files (the bundled data or the user's own) and the replay feed that
drives the clock with them.

    candles = load_bundled()                      # {"BTCUSDT": [...], "XRPUSDT": [...]}
    async for batch in ReplayFeed(candles, clock):
        ...                                       # clock.now() == batch[0].close_time

CSV format: a header `open_time,open,high,low,close,volume` (volume may be empty, other
columns are ignored), or none when the rows are Binance's klines of 12 columns (its files
before 2022: csv_columns.py), one row per candle, rows in time order, of one interval.
`open_time` counts seconds, milliseconds or microseconds since the epoch (UTC): the unit is
told by the first row's size (Binance's files use ms, its spot files µs since 2025) and
every row must use the same one; a time before 2010 or after 2100 is refused rather than
read as a 1970 backtest. The symbol comes from the file name (`BTCUSDT-15m.csv`,
`BTCUSDT-1m-2024-01.csv`) or the caller. Several files of one symbol: candle_series.py.
"""

import asyncio
import copy
import heapq
import importlib.resources
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence, Sized
from datetime import datetime, timedelta
from itertools import chain, pairwise
from pathlib import Path

from loguru import logger

from trader.clock import ManualClock
from trader.config import SYMBOL_CHARS
from trader.domain import Candle
from trader.market.candle_csv import (
    KLINE_INTERVALS,
    TimeUnit,
    infer_interval,
    open_times_ms,
    out_of_order,
    parse_candles,
    stream_candles,
    time_unit,
    too_close,
)
from trader.market.funding_csv import FundingSchedule, load_funding
from trader.market.gaps import GapTally
from trader.market.interval_change import IntervalChange

FUNDING_MARK = "-funding-"
MAX_PACED_GAP = timedelta(hours=1)   # a longer silence in the data is jumped, not waited for
NO_WAIT = timedelta(0)
# At full speed (speed 0) the replay gives the event loop a turn every this many batches,
# not after every one: a turn costs about as much as the feed's own work on a candle, a
# backtest has no other task to run, and a replay's loop (trader/agent_loops.py) waits on each
# batch as a task of its own anyway. Other tasks wait at most this many batches.
YIELD_EVERY = 64
INFER_ROWS = 1000                    # rows iter_candles reads to infer the interval


def load_candles(path: Path, symbol: str | None = None,
                 interval: timedelta | None = None) -> list[Candle]:
    """Read one candle CSV. The symbol defaults to the file name (BTCUSDT-15m.csv), the
    interval to the most common spacing of the rows. ValueError names file and line, also
    when the file name does not say the symbol and none is given."""
    path = Path(path)
    symbol = _symbol_for(path, symbol)
    unit = time_unit(path)
    interval = interval or infer_interval(path, open_times_ms(path, unit))
    candles = _parse_candles(path, symbol, interval, unit)
    logger.log("DEBUG" if unit.name == "ms" else "INFO",
               "candles loaded file={} symbol={} rows={} interval={} open_time_unit={}",
               path.name, symbol, len(candles), interval, unit.name)
    return candles


def iter_candles(path: Path, symbol: str | None = None,
                 interval: timedelta | None = None) -> Iterator[Candle]:
    """`load_candles` as a stream: candles are parsed as the replay asks for them, so a
    backtest of a year of 1m candles holds a few of them at a time, not 525,600. The
    interval defaults to the most common spacing of the first INFER_ROWS rows; a row out of
    time order raises ValueError when it is reached."""
    path = Path(path)
    symbol = _symbol_for(path, symbol)
    unit = time_unit(path)
    if interval is None:
        interval = infer_interval(path, open_times_ms(path, unit, rows=INFER_ROWS))
    return stream_candles(path, symbol, interval, unit)


class CandleFile:
    """One candle CSV for a long backtest: checked whole when opened (the errors
    `load_candles` raises, before any work starts), then streamed each time it is iterated,
    so memory does not grow with its rows. `len`, `[0]` and `[-1]` work (the run's span);
    `between` narrows it to a period. Re-iterable: every sweep trial streams it again.

        candles = {"BTCUSDT": CandleFile(path)}       # 525,600 rows, a few in memory
        await run_backtest(settings, candles, out)
    """

    def __init__(self, path: Path, symbol: str | None = None, interval: timedelta | None = None,
                 start: datetime | None = None, end: datetime | None = None) -> None:
        self.path = Path(path)
        self.symbol = _symbol_for(self.path, symbol)
        self.unit = time_unit(self.path)
        # The file is read whole once here: the interval to parse with comes from the first
        # rows, and the checks' pass counts the spacing of every row (the file's interval:
        # the most common one). A file whose later rows space otherwise is checked again.
        inferred = interval is None and end is None
        self.interval = interval or self._first_interval(whole=end is not None)
        self.start, self.end = start, end
        self._count, self._first, self._last, spacing, overlap = self._check()
        if inferred and spacing is not None and spacing != self.interval:
            self.interval = spacing
            self._count, self._first, self._last, _, overlap = self._check()
        if overlap is not None:      # told once the interval is the file's, not the first rows'
            raise ValueError(overlap)

    def _first_interval(self, whole: bool) -> timedelta:
        """The interval of the first INFER_ROWS rows (`whole`: of every row; so too when the
        first rows show none: then they repeat a time, which the check reports)."""
        if not whole:
            first = list(open_times_ms(self.path, self.unit, rows=INFER_ROWS))
            if any(later > earlier for earlier, later in pairwise(first)):
                return infer_interval(self.path, first)
        return infer_interval(self.path, open_times_ms(self.path, self.unit))

    def _check(self) -> tuple[int, Candle | None, Candle | None, timedelta | None, str | None]:
        """Parse every row once (a bad value is reported before rows out of time order); up
        to `end` only, which `between` gives to a file it has checked whole already. Also
        the most common spacing of the rows read (None: fewer than two), and why the first
        row opening less than `interval` after the previous one overlaps it (None: none).
        ValueError for rows that change interval part-way (interval_change.py)."""
        count, first, last, misplaced, overlap, changed = 0, None, None, None, None, None
        interval = self.interval
        change = IntervalChange(self.path, KLINE_INTERVALS)
        self.gaps = GapTally()      # missing rows in the chosen period, for a warning
        spacings: Counter[timedelta] = Counter()
        previous: Candle | None = None
        previous_number = 0
        for number, candle in self._parsed():
            if misplaced is None and previous and candle.open_time <= previous.open_time:
                misplaced = out_of_order(self.path, number, candle.open_time, previous.open_time)
            if misplaced is None and self.end is not None and candle.open_time > self.end:
                break
            if previous is not None and candle.open_time > previous.open_time:
                spacing = candle.open_time - previous.open_time
                spacings[spacing] += 1
                changed = changed or change.step(number, spacing)
                if overlap is None and spacing < interval:
                    overlap = too_close(self.path, number, candle.open_time,
                                        previous.open_time, interval, previous_number)
            previous, previous_number = candle, number
            if self._wanted(candle):
                count, first, last = count + 1, first or candle, candle
                self.gaps.add(candle)
        if misplaced is not None or changed is not None:
            raise ValueError(misplaced or changed)
        usual = spacings.most_common(1)[0][0] if spacings else None
        return count, first, last, usual, overlap

    def _parsed(self) -> Iterator[tuple[int, Candle]]:
        return parse_candles(self.path, self.symbol, self.interval, self.unit)

    def _wanted(self, candle: Candle) -> bool:
        return ((self.start is None or candle.open_time >= self.start)
                and (self.end is None or candle.open_time <= self.end))

    def between(self, start: datetime | None, end: datetime | None) -> "CandleFile":
        """The same file narrowed to open times in [start, end] (None: no bound). The same
        period is this file itself: it was checked when opened, so it is not read again."""
        if (start, end) == (self.start, self.end):
            return self
        return CandleFile(self.path, self.symbol, self.interval, start, end)

    def anchored(self) -> "CandleFile":
        """The same file by its absolute path, for a process whose working folder differs
        (a Ray worker); not read again. Messages name the path as given until then."""
        if self.path.is_absolute():
            return self
        anchored = copy.copy(self)
        anchored.path = self.path.absolute()
        return anchored

    def __iter__(self) -> Iterator[Candle]:
        # The rows were found in time order when the file was opened: reading stops at the
        # period's end (a day of a year's file, replayed by every sweep trial).
        return stream_candles(self.path, self.symbol, self.interval, self.unit, self.start,
                              self.end)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> Candle:
        """Only the first and the last candle (what a run's span needs)."""
        candle = {0: self._first, -1: self._last}.get(index) if self._count else None
        if candle is None:
            raise IndexError(f"CandleFile gives [0] and [-1] only, not [{index}]")
        return candle


def symbol_from_file_name(path: Path) -> str | None:
    """'BTCUSDT' for BTCUSDT-15m.csv or btcusdt.csv; None when the name is no symbol."""
    head = Path(path).stem.split("-")[0].upper()
    return head if is_symbol(head) else None


def is_symbol(text: str) -> bool:
    """A USD-M symbol like BTCUSDT (the rule TRADEBOT_SYMBOLS applies)."""
    return set(text) <= SYMBOL_CHARS and text.endswith("USDT") and 4 < len(text) <= 16


def _symbol_for(path: Path, given: str | None) -> str:
    if given is not None:
        if not is_symbol(given.upper()):
            raise ValueError(f"{given!r} is not a USD-M symbol like BTCUSDT")
        return given.upper()
    named = symbol_from_file_name(path)
    if named is None:
        raise ValueError(f"{path}: the file name does not say the symbol; pass --symbol "
                         "SYMBOL (e.g. ETHUSDT) or name the file like ETHUSDT-5m.csv")
    return named


def bundled_data_files() -> list[Path]:
    """The candle CSVs shipped in trader/data (funding files excluded)."""
    return [p for p in _bundled_csvs() if FUNDING_MARK not in p.name]


def bundled_funding_files() -> list[Path]:
    return [p for p in _bundled_csvs() if FUNDING_MARK in p.name]


def load_bundled() -> dict[str, list[Candle]]:
    """All bundled candles by symbol."""
    loaded: dict[str, list[Candle]] = {}
    for path in bundled_data_files():
        candles = load_candles(path)
        if candles:
            loaded[candles[0].symbol] = candles
    return loaded


def load_bundled_funding() -> dict[str, FundingSchedule]:
    """Bundled historical funding rates by symbol (for Simulator.set_funding_schedule)."""
    return {p.name.split("-")[0].upper(): load_funding(p) for p in bundled_funding_files()}


class ReplayFeed:
    """Async iterator of candle batches in close-time order, driving a ManualClock.

    All symbols' candles that close at the same moment come together (sorted by symbol).
    Before a batch is yielded the clock is moved to its close time through `clock.sleep`,
    so a clock with speed > 0 paces the replay in real time (N x faster) and speed 0 runs
    it as fast as possible; a silence longer than MAX_PACED_GAP is jumped at once.

    The symbols' candles are merged as they are replayed, never all batched up front: a
    symbol's candles may be an iterator (`iter_candles`: a year of 1m candles streamed from
    its CSV) and memory stays flat; then pass `total` (for progress bars) or leave it None.
    """

    def __init__(self, candles_by_symbol: Mapping[str, Iterable[Candle]], clock: ManualClock,
                 speed: float | None = None, total: int | None = None) -> None:
        self.clock = clock
        if speed is not None:
            clock.speed = speed
        self.candles = _in_time_order(candles_by_symbol.values())
        self.total = total if total is not None else _count(candles_by_symbol.values())

    def __aiter__(self) -> AsyncIterator[list[Candle]]:
        return self._run()

    async def _run(self) -> AsyncIterator[list[Candle]]:
        """The candles in close-time order gathered into batches here (runs of one close
        time, sorted by symbol: what groupby of the merge gave), not by a generator of
        batches in between: a layer less for every replayed candle."""
        unyielded = 0      # batches since the event loop last had a turn (speed 0)
        clock = self.clock
        batch: list[Candle] = []
        closes_at: datetime | None = None
        for candle in chain(self.candles, _END):
            if candle is not None:
                closes = candle.open_time + candle.interval     # its close_time, inline
                if closes == closes_at:
                    batch.append(candle)
                    continue
            if batch:
                assert closes_at is not None    # set with the batch's first candle
                wait = closes_at - clock.now()
                # At speed 0 the wait is no time at all: only the yield below is left of it
                # (clock.sleep would add the wait and `set` then lands on the same moment).
                if clock.speed > 0:
                    if NO_WAIT < wait <= MAX_PACED_GAP:
                        await clock.sleep(wait.total_seconds())
                    else:
                        self._jumped(wait, closes_at)
                        await asyncio.sleep(0)
                else:
                    if wait > MAX_PACED_GAP:        # `_jumped`'s test, inline: every candle
                        self._jumped(wait, closes_at)
                    unyielded += 1
                    if unyielded >= YIELD_EVERY:
                        unyielded = 0
                        await asyncio.sleep(0)
                clock.set(closes_at)
                yield batch if len(batch) == 1 else sorted(batch, key=_symbol)
            if candle is not None:
                batch, closes_at = [candle], closes

    def _jumped(self, wait: timedelta, closes_at: datetime) -> None:
        if wait > MAX_PACED_GAP:
            logger.info("replay jumps over a gap in the data from={} to={}",
                        self.clock.now(), closes_at)


_END = (None,)      # after the last candle: its batch is complete


def _in_time_order(symbols: Iterable[Iterable[Candle]]) -> Iterator[Candle]:
    """The symbols' candles in close-time order, their streams merged lazily (a list out of
    time order is sorted first); one stream alone is itself (most backtests: heapq.merge
    costs more than the rest of the feed's work)."""
    streams = [_in_close_order(rows) for rows in symbols]
    if len(streams) == 1:
        return iter(streams[0])
    return heapq.merge(*streams, key=_close_time)


def _in_close_order(rows: Iterable[Candle]) -> Iterable[Candle]:
    if isinstance(rows, Sequence) and any(
            later.close_time < earlier.close_time for earlier, later in pairwise(rows)):
        return sorted(rows, key=_close_time)
    return rows


def _close_time(candle: Candle) -> datetime:
    return candle.close_time


def _symbol(candle: Candle) -> str:
    return candle.symbol


def _count(symbols: Iterable[Iterable[Candle]]) -> int | None:
    """How many candles, when every symbol's are a sized collection (None otherwise)."""
    sizes = [len(rows) for rows in symbols if isinstance(rows, Sized)]
    return sum(sizes) if len(sizes) == len(list(symbols)) else None


# --- CSV files ------------------------------------------------------------------------
def _bundled_csvs() -> list[Path]:
    folder = importlib.resources.files("trader").joinpath("data")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".csv"))


def _parse_candles(path: Path, symbol: str, interval: timedelta, unit: TimeUnit) -> list[Candle]:
    """All candles of a file; a bad value is reported before rows out of time order, and
    those before rows that change interval (interval_change.py) or overlap."""
    candles: list[Candle] = []
    misplaced: str | None = None
    overlap: str | None = None
    changed: str | None = None
    change = IntervalChange(path, KLINE_INTERVALS)
    previous_number = 0
    for number, candle in parse_candles(path, symbol, interval, unit):
        if candles and misplaced is None:
            previous = candles[-1].open_time
            if candle.open_time <= previous:
                misplaced = out_of_order(path, number, candle.open_time, previous)
            else:
                changed = changed or change.step(number, candle.open_time - previous)
                if overlap is None and candle.open_time - previous < interval:
                    overlap = too_close(path, number, candle.open_time, previous, interval,
                                        previous_number)
        candles.append(candle)
        previous_number = number
    if misplaced is not None or changed is not None or overlap is not None:
        raise ValueError(misplaced or changed or overlap)
    return candles

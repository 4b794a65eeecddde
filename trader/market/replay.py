"""Candles from CSV files (the bundled data or the user's own) and the replay feed that
drives the clock with them.

    candles = load_bundled()                      # {"BTCUSDT": [...], "XRPUSDT": [...]}
    async for batch in ReplayFeed(candles, clock):
        ...                                       # clock.now() == batch[0].close_time

CSV format: a header `open_time,open,high,low,close,volume` (volume may be empty, other
columns are ignored), one row per candle, rows in time order. `open_time` counts seconds,
milliseconds or microseconds since the epoch (UTC): the unit is told by the first row's size
(Binance's files use ms, its spot files µs since 2025) and every row must use the same one;
a time before 2010 or after 2100 is refused rather than read as a 1970 backtest. The symbol
comes from the file name (`BTCUSDT-15m.csv`, `BTCUSDT-1m-2024-01.csv`) or the caller.
"""

import asyncio
import csv
import heapq
import importlib.resources
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import groupby, islice, pairwise
from pathlib import Path

from loguru import logger

from trader.clock import ManualClock
from trader.config import INTERVAL_SECONDS, SYMBOL_CHARS
from trader.domain import ZERO, Candle, utc
from trader.market.candle_values import PRICE_COLUMNS, check_plausible, parse_number
from trader.market.gaps import GapTally

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close")
FUNDING_COLUMNS = ("funding_time", "funding_rate")
FUNDING_MARK = "-funding-"
MAX_PACED_GAP = timedelta(hours=1)   # a longer silence in the data is jumped, not waited for
INFER_ROWS = 1000                    # rows iter_candles reads to infer the interval

FundingSchedule = list[tuple[datetime, Decimal]]


def load_candles(path: Path, symbol: str | None = None,
                 interval: timedelta | None = None) -> list[Candle]:
    """Read one candle CSV. The symbol defaults to the file name (BTCUSDT-15m.csv), the
    interval to the most common spacing of the rows. ValueError names file and line, also
    when the file name does not say the symbol and none is given."""
    path = Path(path)
    symbol = _symbol_for(path, symbol)
    unit = _time_unit(path)
    interval = interval or _infer_interval(
        path, [_open_ms(path, n, r, unit) for n, r in _iter_rows(path, CANDLE_COLUMNS)])
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
    unit = _time_unit(path)
    if interval is None:
        head = islice(_iter_rows(path, CANDLE_COLUMNS), INFER_ROWS)
        interval = _infer_interval(path, [_open_ms(path, n, r, unit) for n, r in head])
    return _stream_candles(path, symbol, interval, unit)


def _stream_candles(path: Path, symbol: str, interval: timedelta,
                    unit: "TimeUnit") -> Iterator[Candle]:
    previous: Candle | None = None
    previous_prices: dict[str, Decimal] = {}
    for number, row in _iter_rows(path, CANDLE_COLUMNS):
        open_time = utc(_open_ms(path, number, row, unit))
        candle, previous_prices = _candle(path, number, row, symbol, interval, open_time,
                                          previous_prices)
        if previous is not None and candle.open_time <= previous.open_time:
            raise ValueError(f"{path}: line {number}: open_time not after the previous row")
        previous = candle
        yield candle


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
        self.unit = _time_unit(self.path)
        self.interval = interval or _infer_interval(
            self.path, (_open_ms(self.path, n, r, self.unit)
                        for n, r in _iter_rows(self.path, CANDLE_COLUMNS)))
        self.start, self.end = start, end
        self.gaps = GapTally()      # missing rows in the chosen period, for a warning
        self._count, self._first, self._last = self._check()

    def _check(self) -> tuple[int, Candle | None, Candle | None]:
        """Parse every row once (a bad value is reported before rows out of time order)."""
        count, first, last, out_of_order = 0, None, None, None
        previous: Candle | None = None
        for number, candle in self._parsed():
            if out_of_order is None and previous and candle.open_time <= previous.open_time:
                out_of_order = number
            previous = candle
            if self._wanted(candle):
                count, first, last = count + 1, first or candle, candle
                self.gaps.add(candle)
        if out_of_order is not None:
            raise ValueError(f"{self.path}: line {out_of_order}: open_time not after the "
                             "previous row")
        return count, first, last

    def _parsed(self) -> Iterator[tuple[int, Candle]]:
        prices: dict[str, Decimal] = {}
        for number, row in _iter_rows(self.path, CANDLE_COLUMNS):
            open_time = utc(_open_ms(self.path, number, row, self.unit))
            candle, prices = _candle(self.path, number, row, self.symbol, self.interval,
                                     open_time, prices)
            yield number, candle

    def _wanted(self, candle: Candle) -> bool:
        return ((self.start is None or candle.open_time >= self.start)
                and (self.end is None or candle.open_time <= self.end))

    def between(self, start: datetime | None, end: datetime | None) -> "CandleFile":
        """The same file narrowed to open times in [start, end] (None: no bound)."""
        return CandleFile(self.path, self.symbol, self.interval, start, end)

    def __iter__(self) -> Iterator[Candle]:
        return (candle for _, candle in self._parsed() if self._wanted(candle))

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


def load_funding(path: Path) -> FundingSchedule:
    """Read a funding CSV (funding_time in ms, funding_rate) into (time, rate) pairs."""
    schedule = []
    for number, row in _iter_rows(Path(path), FUNDING_COLUMNS):
        try:
            schedule.append((utc(int(row["funding_time"])), Decimal(row["funding_rate"])))
        except (ValueError, InvalidOperation) as exc:
            raise ValueError(f"{path}: line {number}: bad funding row ({exc})") from exc
    return sorted(schedule)


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
        self.batches = _batches(candles_by_symbol.values())
        self.total = total if total is not None else _count(candles_by_symbol.values())

    def __aiter__(self) -> AsyncIterator[list[Candle]]:
        return self._run()

    async def _run(self) -> AsyncIterator[list[Candle]]:
        for batch in self.batches:
            closes_at = batch[0].close_time
            wait = closes_at - self.clock.now()
            if timedelta(0) < wait <= MAX_PACED_GAP:
                await self.clock.sleep(wait.total_seconds())
            else:
                if wait > MAX_PACED_GAP:
                    logger.info("replay jumps over a gap in the data from={} to={}",
                                self.clock.now(), closes_at)
                await asyncio.sleep(0)
            self.clock.set(closes_at)
            yield batch


def _batches(symbols: Iterable[Iterable[Candle]]) -> Iterator[list[Candle]]:
    """Batches of the candles closing at one moment, in close-time order, each sorted by
    symbol: the symbols' streams merged lazily (a list out of time order is sorted first)."""
    merged = heapq.merge(*(_in_close_order(rows) for rows in symbols), key=_close_time)
    for _, batch in groupby(merged, key=_close_time):
        yield sorted(batch, key=_symbol)


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


# --- CSV parsing ------------------------------------------------------------------------
def _bundled_csvs() -> list[Path]:
    folder = importlib.resources.files("trader").joinpath("data")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".csv"))


def _iter_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs, read as they are used (a year of 1m candles is 525,600
    rows: holding them all as dicts next to the candles doubled the peak memory of loading);
    ValueError when the file or its header is unusable. utf-8-sig: a CSV saved by Excel
    starts with a byte order mark, which would otherwise be part of the first column name."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: line 1: missing column(s) {', '.join(missing)} "
                                 f"(expected {','.join(required)})")
            for row in reader:
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read candles ({exc})") from exc


def _parse_candles(path: Path, symbol: str, interval: timedelta, unit: "TimeUnit") -> list[Candle]:
    """All candles of a file; a bad value is reported before rows out of time order."""
    candles: list[Candle] = []
    previous_prices: dict[str, Decimal] = {}
    out_of_order: int | None = None
    for number, row in _iter_rows(path, CANDLE_COLUMNS):
        open_time = utc(_open_ms(path, number, row, unit))
        candle, previous_prices = _candle(path, number, row, symbol, interval, open_time,
                                          previous_prices)
        if out_of_order is None and candles and candle.open_time <= candles[-1].open_time:
            out_of_order = number
        candles.append(candle)
    if out_of_order is not None:
        raise ValueError(f"{path}: line {out_of_order}: open_time not after the previous row")
    return candles


@dataclass(frozen=True, slots=True)
class TimeUnit:
    """How a file counts `open_time`. Told apart by size: from 2010 to 2100 a time has
    10 digits in s, 13 in ms, 16 in µs; values of a unit lie in [lowest, highest)."""
    name: str
    per_second: int
    lowest: int
    highest: int

    def to_ms(self, value: int) -> int:
        return value * 1000 // self.per_second


TIME_UNITS = (TimeUnit("s", 1, 0, 10**11), TimeUnit("ms", 1000, 10**11, 10**14),
              TimeUnit("µs", 1_000_000, 10**14, 10**17))
EARLIEST_MS = 1262304000000   # 2010-01-01: Binance did not exist before; older = a wrong unit
LATEST_MS = 4102444800000     # 2100-01-01


def _time_unit(path: Path) -> TimeUnit:
    """The unit of the file's open_time, from its first row (ms for an empty file)."""
    for number, row in _iter_rows(path, CANDLE_COLUMNS):
        value = _open_time_int(path, number, row)
        unit = next((u for u in TIME_UNITS if u.lowest <= value < u.highest), None)
        if unit is None:
            raise ValueError(f"{path}: line {number}: open_time {value} is too large for "
                             "seconds, milliseconds or microseconds since the epoch")
        return unit
    return TIME_UNITS[1]


def _open_ms(path: Path, number: int, row: dict[str, str], unit: TimeUnit) -> int:
    """open_time in ms; ValueError when it is not in the file's unit or not 2010..2100."""
    value = _open_time_int(path, number, row)
    if not unit.lowest <= value < unit.highest:
        raise ValueError(f"{path}: line {number}: open_time {value} is not in {unit.name} like "
                         "the first row (one unit per file)")
    ms = unit.to_ms(value)
    if not EARLIEST_MS <= ms < LATEST_MS:
        raise ValueError(f"{path}: line {number}: open_time {value} ({unit.name}) is "
                         f"{utc(ms):%Y-%m-%d}, outside 2010..2100: not a time since the epoch "
                         "in s, ms or µs")
    return ms


def _open_time_int(path: Path, number: int, row: dict[str, str]) -> int:
    try:
        return int(row["open_time"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: line {number}: open_time {row['open_time']!r} is not a "
                         "whole number of s, ms or µs since the epoch") from exc


def _infer_interval(path: Path, open_times: Iterable[int]) -> timedelta:
    deltas = Counter(b - a for a, b in pairwise(open_times) if b > a)
    if deltas:
        return timedelta(milliseconds=deltas.most_common(1)[0][0])
    suffix = path.stem.split("-")[1] if "-" in path.stem else ""
    if suffix in INTERVAL_SECONDS:
        return timedelta(seconds=INTERVAL_SECONDS[suffix])
    raise ValueError(f"{path}: cannot infer the candle interval (fewer than two rows and no "
                     f"interval in the file name)")


def _candle(path: Path, number: int, row: dict[str, str], symbol: str, interval: timedelta,
            open_time: datetime,
            previous_prices: dict[str, Decimal]) -> tuple[Candle, dict[str, Decimal]]:
    """One candle, and its prices by text. A price written as in the previous row (an open
    is usually the last close) or earlier in this row shares its Decimal: they are
    immutable, and a candle's five Decimals are most of its ~800 bytes."""
    prices = dict(previous_prices)
    for column in PRICE_COLUMNS:
        text = row[column]
        if text not in prices:
            prices[text] = parse_number(path, number, column, text)
    open_, high, low, close = (prices[row[c]] for c in PRICE_COLUMNS)
    volume = parse_number(path, number, "volume", row["volume"]) if row.get("volume") else ZERO
    if not (low <= min(open_, close) and high >= max(open_, close) and low > 0):
        raise ValueError(f"{path}: line {number}: inconsistent candle "
                         f"(open={open_} high={high} low={low} close={close})")
    check_plausible(path, number, row, (open_, high, low, close))
    candle = Candle(symbol=symbol, open_time=open_time, interval=interval,
                    open=open_, high=high, low=low, close=close, volume=volume)
    return candle, {row[c]: prices[row[c]] for c in PRICE_COLUMNS}

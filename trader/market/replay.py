"""Candles from CSV files (the bundled data or the user's own) and the replay feed that
drives the clock with them.

    candles = load_bundled()                      # {"BTCUSDT": [...], "XRPUSDT": [...]}
    async for batch in ReplayFeed(candles, clock):
        ...                                       # clock.now() == batch[0].close_time

CSV format: a header `open_time,open,high,low,close,volume` (volume may be empty), one
row per candle, `open_time` in ms since the epoch (UTC), rows in time order.
"""

import asyncio
import csv
import importlib.resources
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from loguru import logger

from trader.clock import ManualClock
from trader.config import INTERVAL_SECONDS
from trader.domain import ZERO, Candle, utc

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close")
FUNDING_COLUMNS = ("funding_time", "funding_rate")
FUNDING_MARK = "-funding-"
MAX_PACED_GAP = timedelta(hours=1)   # a longer silence in the data is jumped, not waited for

FundingSchedule = list[tuple[datetime, Decimal]]


def load_candles(path: Path, symbol: str | None = None,
                 interval: timedelta | None = None) -> list[Candle]:
    """Read one candle CSV. The symbol defaults to the file name (BTCUSDT-15m.csv), the
    interval to the most common spacing of the rows. ValueError names file and line."""
    path = Path(path)
    symbol = symbol or path.stem.split("-")[0].upper()
    interval = interval or _infer_interval(
        path, [_open_ms(path, n, r) for n, r in _iter_rows(path, CANDLE_COLUMNS)])
    candles = _parse_candles(path, symbol, interval)
    logger.debug("candles loaded file={} symbol={} rows={} interval={}", path.name, symbol,
                 len(candles), interval)
    return candles


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
    """

    def __init__(self, candles_by_symbol: dict[str, list[Candle]], clock: ManualClock,
                 speed: float | None = None) -> None:
        self.clock = clock
        if speed is not None:
            clock.speed = speed
        self.batches = _batches(c for rows in candles_by_symbol.values() for c in rows)
        self.total = sum(len(batch) for batch in self.batches)

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


def _batches(candles: Iterable[Candle]) -> list[list[Candle]]:
    by_close: dict[datetime, list[Candle]] = {}
    for candle in candles:
        by_close.setdefault(candle.close_time, []).append(candle)
    return [sorted(by_close[t], key=lambda c: c.symbol) for t in sorted(by_close)]


# --- CSV parsing ------------------------------------------------------------------------
def _bundled_csvs() -> list[Path]:
    folder = importlib.resources.files("trader").joinpath("data")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".csv"))


def _iter_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs, read as they are used (a year of 1m candles is 525,600
    rows: holding them all as dicts next to the candles doubled the peak memory of loading);
    ValueError when the file or its header is unusable."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: line 1: missing column(s) {', '.join(missing)} "
                                 f"(expected {','.join(required)})")
            for row in reader:
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read candles ({exc})") from exc


def _parse_candles(path: Path, symbol: str, interval: timedelta) -> list[Candle]:
    """All candles of a file; a bad value is reported before rows out of time order."""
    candles: list[Candle] = []
    previous_prices: dict[str, Decimal] = {}
    out_of_order: int | None = None
    for number, row in _iter_rows(path, CANDLE_COLUMNS):
        candle, previous_prices = _candle(path, number, row, symbol, interval, previous_prices)
        if out_of_order is None and candles and candle.open_time <= candles[-1].open_time:
            out_of_order = number
        candles.append(candle)
    if out_of_order is not None:
        raise ValueError(f"{path}: line {out_of_order}: open_time not after the previous row")
    return candles


def _open_ms(path: Path, number: int, row: dict[str, str]) -> int:
    try:
        return int(row["open_time"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: line {number}: open_time {row['open_time']!r} is not "
                         f"milliseconds since the epoch") from exc


def _infer_interval(path: Path, open_times: list[int]) -> timedelta:
    deltas = Counter(b - a for a, b in zip(open_times, open_times[1:], strict=False) if b > a)
    if deltas:
        return timedelta(milliseconds=deltas.most_common(1)[0][0])
    suffix = path.stem.split("-")[1] if "-" in path.stem else ""
    if suffix in INTERVAL_SECONDS:
        return timedelta(seconds=INTERVAL_SECONDS[suffix])
    raise ValueError(f"{path}: cannot infer the candle interval (fewer than two rows and no "
                     f"interval in the file name)")


def _candle(path: Path, number: int, row: dict[str, str], symbol: str, interval: timedelta,
            previous_prices: dict[str, Decimal]) -> tuple[Candle, dict[str, Decimal]]:
    """One candle, and its prices by text. A price written as in the previous row (an open
    is usually the last close) or earlier in this row shares its Decimal: they are
    immutable, and a candle's five Decimals are most of its ~800 bytes."""
    prices = dict(previous_prices)
    try:
        for column in ("open", "high", "low", "close"):
            text = row[column]
            if text not in prices:
                prices[text] = Decimal(text)
        open_, high, low, close = (prices[row[c]] for c in ("open", "high", "low", "close"))
        volume = Decimal(row["volume"]) if row.get("volume") else ZERO
    except (TypeError, InvalidOperation) as exc:
        raise ValueError(f"{path}: line {number}: a price or volume is not a number") from exc
    if not (low <= min(open_, close) and high >= max(open_, close) and low > 0):
        raise ValueError(f"{path}: line {number}: inconsistent candle "
                         f"(open={open_} high={high} low={low} close={close})")
    candle = Candle(symbol=symbol, open_time=utc(_open_ms(path, number, row)), interval=interval,
                    open=open_, high=high, low=low, close=close, volume=volume)
    return candle, {row[c]: prices[row[c]] for c in ("open", "high", "low", "close")}

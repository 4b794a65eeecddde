"""Checks of what a user hands `tradebot backtest` / `sweep` / `run --replay` before any
work: the --data paths, opened by symbol (several files of one symbol joined into one
series), and a warning per symbol whose candles have gaps (missing rows)."""

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from trader.domain import Candle
from trader.market.candle_series import CandleSeries
from trader.market.gaps import GapTally
from trader.market.replay import CandleFile, symbol_from_file_name

# A --data symbol's candles, streamed: one file, or several of the symbol joined
CandleSource = CandleFile | CandleSeries
# A symbol's candles to run: in memory (the bundled data), or streamed from its --data file(s)
SymbolCandles = list[Candle] | CandleSource


class BacktestError(ValueError):
    """Bad backtest input (no data in range, unknown symbol); the message says what to fix."""

def check_data_file(path: Path, kind: str = "candle") -> None:
    """ValueError saying what is wrong with a --data (or, kind "funding", --funding) path
    that is no readable file (the later errors would talk about the file name or the
    columns instead)."""
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a {kind} CSV file")
    if not path.exists():
        raise ValueError(f"{path}: no such file")


def candle_files(paths: Sequence[Path], symbol: str | None = None) -> dict[str, CandleSource]:
    """The --data files by symbol, each opened (checked whole) and streamed: the symbol is
    the file name's (BTCUSDT-5m-2024-01.csv: BTCUSDT), or `symbol` (--symbol) for every
    file; a symbol's several files are one series (trader/market/candle_series.py).
    ValueError naming the file for one that is no candle file, holds no row, or is given
    twice, and for --symbol over files whose names say two symbols."""
    if symbol is not None:
        named = {path: symbol_from_file_name(path) for path in paths}
        said = sorted({name for name in named.values() if name is not None})
        if len(said) > 1:
            raise ValueError(f"--symbol {symbol}: joins the --data files into one series of "
                             f"{symbol}, but their names say {', '.join(said)}; without "
                             "--symbol each file is the symbol its name says")
    files: dict[str, list[CandleFile]] = {}
    seen: set[Path] = set()
    for path in paths:
        check_data_file(path)
        if path.resolve() in seen:
            raise ValueError(f"{path}: given twice")
        seen.add(path.resolve())
        rows = CandleFile(path, symbol=symbol)
        if not rows:
            raise ValueError(f"{path}: no candle rows, only the header")
        files.setdefault(rows.symbol, []).append(rows)
    return {name: rows[0] if len(rows) == 1 else CandleSeries.joined(rows)
            for name, rows in files.items()}


def gap_warnings(candles: Mapping[str, Iterable[Candle]]) -> list[str]:
    """One line per symbol whose candles have gaps (the engine trades straight across a
    jump in time, which a user should know about); a CandleFile or CandleSeries counted
    its gaps when it was checked, a list is counted here, an iterator is left alone (not consumed)."""
    lines = []
    for symbol, rows in sorted(candles.items()):
        if isinstance(rows, CandleSource):
            tally = rows.gaps
        elif isinstance(rows, Sequence):
            tally = _tally(rows)
        else:
            continue
        line = tally.warning(symbol)
        if line is not None:
            lines.append(line)
    return lines


def warn_about_gaps(candles: Mapping[str, Iterable[Candle]]) -> None:
    """`gap_warnings` on stderr (stdout carries the report)."""
    for line in gap_warnings(candles):
        print(line, file=sys.stderr)


def _tally(rows: Iterable[Candle]) -> GapTally:
    tally = GapTally()
    for candle in rows:
        tally.add(candle)
    return tally

"""Checks of what a user hands `tradebot backtest` / `sweep` before any work: the --data
path, and a warning per symbol whose candles have gaps (missing rows)."""

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from trader.domain import Candle
from trader.market.gaps import GapTally
from trader.market.replay import CandleFile


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


def gap_warnings(candles: Mapping[str, Iterable[Candle]]) -> list[str]:
    """One line per symbol whose candles have gaps (the engine trades straight across a
    jump in time, which a user should know about); a CandleFile counted its gaps when it
    was checked, a list is counted here, an iterator is left alone (not consumed)."""
    lines = []
    for symbol, rows in sorted(candles.items()):
        if isinstance(rows, CandleFile):
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

"""A backtest's data: the candles --data / --symbols / --from / --to pick (the bundled
data without --data), the funding rates (bundled, or --funding files) and the candles
before --from that warm each symbol up (trader/backtest_warmup.py).
"""

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from trader.backtest_input import BacktestError, CandleSource, SymbolCandles
from trader.backtest_warmup import warmup_candles
from trader.config import Settings
from trader.domain import Candle
from trader.market.replay import FundingSchedule


def select_candles(candles: Mapping[str, SymbolCandles],
                   symbols: list[str] | None, start: datetime | None, end: datetime | None,
                   *, asked_by: str = "--symbols") -> dict[str, SymbolCandles]:
    if symbols:
        unknown = [s for s in symbols if s not in candles]
        if unknown:
            raise BacktestError(f"no data for {', '.join(unknown)} (asked by {asked_by}); the "
                                f"data has {', '.join(sorted(candles)) or 'no symbol'}")
        candles = {s: candles[s] for s in symbols}
    if start is not None and end is not None and start > end:
        raise BacktestError("--from is after --to")
    picked: dict[str, SymbolCandles] = {
              s: rows.between(start, end) if isinstance(rows, CandleSource) else
              [c for c in rows if (start is None or c.open_time >= start)
               and (end is None or c.open_time <= end)] for s, rows in candles.items()}
    left_out = sorted(s for s, rows in picked.items() if not rows)
    picked = {s: rows for s, rows in picked.items() if rows}
    if not picked:
        covers = "; ".join(f"{symbol} {_span(rows)}" for symbol, rows in sorted(candles.items()))
        raise BacktestError(f"no candles in the chosen period ({_period(start, end)}); the "
                            f"data covers {covers}")
    if symbols:     # asked for by name: say why one is missing from the report
        for symbol in left_out:
            print(f"{symbol}: no candles in the chosen period (its data covers "
                  f"{_span(candles[symbol])}): left out", file=sys.stderr)
    return picked


def _period(start: datetime | None, end: datetime | None) -> str:
    """The --from/--to period in words: "from 2021-11-16 00:00 to 2021-11-17 00:00 UTC"."""
    parts = [f"from {start:%Y-%m-%d %H:%M}" if start else "",
             f"to {end:%Y-%m-%d %H:%M}" if end else ""]
    return " ".join(part for part in parts if part) + " UTC" if start or end else "all of it"


def _span(rows: Sequence[Candle] | CandleSource) -> str:
    if not rows:
        return "nothing"
    return f"{rows[0].open_time:%Y-%m-%d %H:%M} to {rows[-1].open_time:%Y-%m-%d %H:%M} UTC"


def backtest_data(settings: Settings, args: argparse.Namespace) -> tuple[
        dict[str, SymbolCandles], dict[str, FundingSchedule] | None, dict[str, list[Candle]]]:
    """The candles to run (and the bundled funding rates, and the candles before --from that
    warm each symbol up: trader/backtest_warmup.py) for `args.data` / `args.symbol` /
    `args.symbols` / `args.start` / `args.end`. Symbols: --symbols, else TRADEBOT_SYMBOLS for
    the bundled data (an explicit --data file is its own choice), else all of the data."""
    from trader.backtest_input import candle_files, warn_about_gaps
    from trader.market.replay import load_bundled, load_bundled_funding
    funding = None
    data: Mapping[str, SymbolCandles]
    if args.data is None and getattr(args, "symbol", None):
        raise BacktestError(f"--symbol names the symbol of a --data file; to pick symbols of "
                            f"the bundled data use --symbols {args.symbol}")
    if args.data is not None:
        data = candle_files(args.data, getattr(args, "symbol", None))
    else:
        data, funding = load_bundled(), load_bundled_funding()
    symbols, asked_by = requested_symbols(settings, args.symbols, args.data is None)
    picked = select_candles(data, symbols, args.start, args.end, asked_by=asked_by)
    given = funding_files(getattr(args, "funding", None) or [], picked)
    if given:
        funding = {**(funding or {}), **given}
    warn_about_gaps(picked)
    return picked, funding, warmup_candles(data, picked, args.start)


def funding_files(paths: list[Path], candles: Mapping[str, object]) -> dict[
        str, FundingSchedule]:
    """--funding files by the symbol their names say, a symbol's several files (Binance's
    months) joined (trader/market/funding_csv.py: the bundled funding_time,funding_rate
    layout or Binance's calc_time,funding_interval_hours,last_funding_rate); BacktestError
    for a name that says no symbol or a symbol not run."""
    from trader.backtest_input import check_data_file
    from trader.market.funding_csv import load_funding_files
    from trader.market.replay import symbol_from_file_name
    by_symbol: dict[str, list[Path]] = {}
    for path in paths:
        try:
            check_data_file(path, "funding")
        except ValueError as exc:
            raise BacktestError(f"--funding {exc}") from exc
        symbol = symbol_from_file_name(path)
        if symbol is None:
            raise BacktestError(f"--funding {path}: the file name does not say the symbol; "
                                "name it like ETHUSDT-funding-8h.csv")
        if symbol not in candles:
            raise BacktestError(f"--funding {path}: {symbol} is not a symbol of the run "
                                f"({', '.join(sorted(candles))})")
        by_symbol.setdefault(symbol, []).append(path)
    return {symbol: load_funding_files(files) for symbol, files in by_symbol.items()}


def requested_symbols(settings: Settings, option: str | None,
                      bundled: bool) -> tuple[list[str] | None, str]:
    """(symbols to run or None for all, where the choice came from)."""
    if option:
        return [s.strip().upper() for s in option.split(",") if s.strip()], "--symbols"
    if bundled and "symbols" in settings.model_fields_set:
        return list(settings.symbols), "TRADEBOT_SYMBOLS"
    return None, ""

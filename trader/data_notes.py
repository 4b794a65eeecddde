"""What a backtest's report says about the data it ran on, one note line each (report.txt's
Notes, report.json's notes): where each symbol's funding came from, a funding file's rates or
the paper exchange's assumed flat rate (the report's "Funding" figure reads as measured
otherwise); and each symbol's candle interval (a 5m strategy fed 1m candles shows)."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from trader.domain import Candle
from trader.exchange.sim_core import SimConfig
from trader.market.replay import CandleFile


def funding_notes(symbols: Iterable[str],
                  schedules: Mapping[str, list[tuple[datetime, Decimal]]] | None) -> list[str]:
    """One line per symbol, in symbol order: its funding file's span, or the assumed rate
    (`SimConfig.funding_rate`, charged when a symbol has no rate of its own)."""
    assumed = f"the assumed {percent(SimConfig().funding_rate)} per 8 h"
    lines = []
    for symbol in sorted(symbols):
        schedule = (schedules or {}).get(symbol)
        if schedule:
            first, last = schedule[0][0], schedule[-1][0]
            lines.append(f"funding: {symbol} from a funding file (rates {first:%Y-%m-%d %H:%M} "
                         f"to {last:%Y-%m-%d %H:%M} UTC; before the first, {assumed})")
        else:
            lines.append(f"funding: {symbol} at an assumed flat {percent(SimConfig().funding_rate)}"
                         " per 8 h (no funding file for it; --funding FILE gives its real rates)")
    return lines


def percent(rate: Decimal) -> str:
    """0.0001 -> "0.01 %"."""
    return f"{(rate * 100).normalize():f} %"


def candle_intervals(candles: Mapping[str, Sequence[Candle] | CandleFile]) -> dict[str, str]:
    """{symbol: "5m"}: the interval each symbol's candles were read with, named as Binance
    names its klines' (1m, 15m, 4h, 1d; another spacing in its largest whole unit, 90s)."""
    intervals = {}
    for symbol, rows in sorted(candles.items()):
        interval = rows.interval if isinstance(rows, CandleFile) else rows[0].interval
        seconds = int(interval.total_seconds())
        unit, size = next((unit, size) for unit, size in (("d", 86400), ("h", 3600),
                                                          ("m", 60), ("s", 1))
                          if seconds % size == 0)
        intervals[symbol] = f"{seconds // size}{unit}"
    return intervals

"""What a backtest's report says about the data it ran on, one note line each (report.txt's
Notes, report.json's notes): where each symbol's funding came from, a funding file's rates or
the paper exchange's assumed flat rate (the report's "Funding" figure reads as measured
otherwise); each symbol's candle interval (a 5m strategy fed 1m candles shows), and
candles no shorter than the time in trade (every trade then ends at its first close)."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from trader.backtest_input import CandleSource
from trader.domain import Candle
from trader.exchange.sim_core import SimConfig


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


def time_limit_notes(limit_minutes: int,
                     candles: Mapping[str, Sequence[Candle] | CandleSource]) -> list[str]:
    """One line per symbol whose candles last as long as the time in trade allows or
    longer (TRADEBOT_TIME_IN_TRADE_MINUTES): the time exit fires at the first candle close
    after each entry, so every trade is a one-candle TIME_EXIT (unless a stop or target
    came first), a result that reads like the strategy's."""
    limit = timedelta(minutes=limit_minutes)
    lines = []
    for symbol, rows in sorted(candles.items()):
        interval = _interval(rows)
        if interval >= limit:
            than = "shorter than" if interval > limit else "no longer than"
            lines.append(f"{symbol}: every position is closed at the first candle close after "
                         f"its entry: the time limit (TRADEBOT_TIME_IN_TRADE_MINUTES "
                         f"{limit_minutes} min) is {than} a candle "
                         f"({_minutes(interval)} min); use shorter candles, or read the "
                         "results as one-candle trades")
    return lines


def _minutes(interval: timedelta) -> str:
    return f"{interval.total_seconds() / 60:g}"


def _interval(rows: Sequence[Candle] | CandleSource) -> timedelta:
    return rows.interval if isinstance(rows, CandleSource) else rows[0].interval


def candle_intervals(candles: Mapping[str, Sequence[Candle] | CandleSource]) -> dict[str, str]:
    """{symbol: "5m"}: the interval each symbol's candles were read with, named as Binance
    names its klines' (1m, 15m, 4h, 1d; another spacing in its largest whole unit, 90s)."""
    intervals = {}
    for symbol, rows in sorted(candles.items()):
        interval = _interval(rows)
        seconds = int(interval.total_seconds())
        unit, size = next((unit, size) for unit, size in (("d", 86400), ("h", 3600),
                                                          ("m", 60), ("s", 1))
                          if seconds % size == 0)
        intervals[symbol] = f"{seconds // size}{unit}"
    return intervals

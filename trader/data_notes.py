"""What a backtest's report says about the data it ran on, one note line each (report.txt's
Notes, report.json's notes): where each symbol's funding came from, a funding file's rates or
the paper exchange's assumed flat rate (the report's "Funding" figure reads as measured
otherwise)."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

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

"""The warm-up of a backtest that starts at --from: the candles the data holds before it, fed
to the engine's history (trader/engine.py `Engine.warm_up`) so the window trades from its
first candle, and the report's note saying how many there were.

freqtrade does the same with a strategy's `startup_candle_count` ("it'll load data from
20190101 - (100 * 5m) ... The startup period (Up to 2019-01-01 00:00:00) will then be removed
before starting backtesting": https://www.freqtrade.io/en/stable/strategy-customization/
#strategy-startup-period), and
jesse loads warm-up candles before the start date (its research `backtest(...,
warmup_candles=...)`; `get_candles` "returns both warm-up candles and the actual trading
candles": https://docs.jesse.trade/docs/research/candles). Without a warm-up a slice spends
its first `strategy.warmup` candles (10 hours of 5m candles) unable to trade where the full
run over the same days trades: a difference of the tool's, not of the user's strategy.

    warmup = warmup_candles(data, picked, args.start)     # {symbol: [candles before --from]}
    lines, short = warmup_notes(warmup, picked, args.start, strategy.warmup)   # short: on stderr too
"""

from collections import deque
from collections.abc import Iterable, Mapping, Sequence, Sized
from datetime import datetime
from itertools import takewhile

from trader.backtest_input import CandleSource
from trader.domain import Candle
from trader.engine_parts import CANDLE_HISTORY

# As many as the engine's history holds, not the strategy's `warmup` alone: its 5x higher
# timeframe (trader/entry.py) and the correlation of positions read further back, and with
# the history full the slice's reading at --from is the full run's.
WARMUP_KEPT = CANDLE_HISTORY


def warmup_candles(data: Mapping[str, Sequence[Candle] | CandleSource],
                   symbols: Iterable[str], start: datetime | None) -> dict[str, list[Candle]]:
    """{symbol: the last WARMUP_KEPT candles of `data` opening before `start`} for each of
    `symbols` (the run's); {} without a --from (the data's own first candles warm up)."""
    if start is None:
        return {}
    return {symbol: candles_before(data[symbol], start, WARMUP_KEPT) for symbol in symbols}


def candles_before(rows: Sequence[Candle] | CandleSource, start: datetime,
                   count: int) -> list[Candle]:
    """The last `count` candles opening before `start`, a few in memory at a time; a file
    (in time order: checked when opened) is read only up to `start`."""
    if isinstance(rows, CandleSource):
        before: Iterable[Candle] = takewhile(lambda candle: candle.open_time < start, rows)
    else:
        before = (candle for candle in rows if candle.open_time < start)
    return list(deque(before, maxlen=count))


def warmup_notes(warmup: Mapping[str, Sequence[Candle]], window: Mapping[str, Sized],
                 start: datetime | None, needed: int) -> tuple[list[str], list[str]]:
    """(one line per symbol of a --from run: the warm-up it had, or how many candles short of
    the strategy's `needed` it was; the lines of those short of it, whose `window` (the
    candles from --from on) warms up the rest: said on stderr too)."""
    if start is None:
        return [], []
    at = f"{start:%Y-%m-%d %H:%M} UTC"
    lines, short = [], []
    for symbol, candles in sorted(warmup.items()):
        fed = len(candles)
        if fed < needed:
            rest = needed - fed
            which = f"the first {rest:,} candles of the window warm up" \
                if rest < len(window[symbol]) else "the whole window warms up: no trade possible"
            short.append(f"warm-up: {symbol}: {fed:,} of {needed:,} candles before {at} in the "
                         f"data; {which}")
            lines.append(short[-1])
        else:
            lines.append(f"warm-up: {symbol}: the {fed:,} candles before {at} in the data (the "
                         f"strategy needs {needed:,}) fed the indicators without trading; "
                         f"trades, equity and funding start at {at}")
    return lines, short

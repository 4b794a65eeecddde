"""Correlation-aware portfolio heat, pure: which open positions are the same bet as a new
entry.

Two positions are correlated when the close-to-close returns of their symbols over the
last `window` closed candles both hold (matched by open time), taken in each position's
direction (a short's returns are negated), correlate above `threshold` (Pearson). So BTC,
ETH and SOL longs usually are one bet, while a BTC long and an ETH short hedge each other.
Correlation links chain: the cluster of an entry is every open position reachable from it
through correlated pairs (single linkage). An entry still working (ENTERING: a resting
maker quote, a market entry whose answer was lost) counts as an open position at its
planned size and stop: it may fill any moment, so two breakouts on one candle are one bet.

The cluster counts as one position against the heat (trader/risk.py): its open risk plus
the new entry's may not exceed one entry's risk budget, and the total over all positions
stays within TRADEBOT_MAX_HEAT. With fewer than MIN_RETURNS common returns a pair is not
judged correlated (the total heat cap still applies).

    cluster = correlated_cluster("ETHUSDT", Side.BUY, open_positions, candles_by_symbol,
                                 threshold=0.7, window=100)
    cluster.symbols, cluster.risk      # ("BTCUSDT",), Decimal("250.00")
"""

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trader.domain import ZERO, Candle, Side
from trader.fast_init import fast_init
from trader.position import Position

MIN_RETURNS = 20          # common returns below this: no verdict (not clustered)
TAKER_FEE = Decimal("0.0005")


@fast_init          # one per entry looked at
@dataclass(frozen=True, slots=True)
class Cluster:
    """The open positions that are one bet with an entry, and what they risk now."""
    symbols: tuple[str, ...] = ()
    risk: Decimal = ZERO               # money lost if all their stops fill now


def returns(candles: Sequence[Candle], window: int) -> dict[datetime, float]:
    """Close-to-close returns of the last `window` candles, by the later candle's open time."""
    recent = candles[-(window + 1):]
    return {later.open_time: float(later.close / earlier.close) - 1.0
            for earlier, later in zip(recent, recent[1:], strict=False) if earlier.close > 0}


def correlation(first: dict[datetime, float], second: dict[datetime, float]) -> float | None:
    """Pearson correlation of two return series over the times both hold; None with fewer
    than MIN_RETURNS of them or when either is flat (no variance)."""
    common = sorted(first.keys() & second.keys())
    if len(common) < MIN_RETURNS:
        return None
    try:
        value = statistics.correlation([first[t] for t in common], [second[t] for t in common])
    except statistics.StatisticsError:
        return None
    return value if math.isfinite(value) else None


def correlated_cluster(symbol: str, side: Side, positions: Iterable[Position],
                       candles: Mapping[str, Sequence[Candle]], threshold: Decimal | float,
                       window: int) -> Cluster:
    """The open (or entering) positions that are one bet with an entry on `symbol` in
    `side` (see the module docstring); an empty cluster when none is, or when `threshold`
    >= 1. `candles`: closed candles by symbol (a symbol missing has no returns: never
    correlated)."""
    if threshold >= 1:
        return Cluster()
    others = [p for p in positions if p.state.at_stake and p.symbol != symbol]
    series = {s: returns(candles.get(s, ()), window)
              for s in {symbol, *(p.symbol for p in others)}}
    members = [(symbol, side), *((p.symbol, p.side) for p in others)]
    linked = _linked_to_first(members, series, float(threshold))
    chosen = [p for index, p in enumerate(others, start=1) if index in linked]
    return Cluster(tuple(p.symbol for p in chosen), sum((risk_at_stop(p) for p in chosen), ZERO))


def risk_at_stop(position: Position, taker_fee: Decimal = TAKER_FEE) -> Decimal:
    """Money lost if the stop fills now, with the taker fees of both legs, the way an
    entry's risk is budgeted (trader/risk.py); 0 once the stop is at or past breakeven."""
    entry, stop = position.entry_price, position.stop.trigger_price
    loss = ((entry - stop) * position.side.sign + taker_fee * (entry + stop)) * position.quantity
    return max(loss, ZERO) if position.risk_amount() > 0 else ZERO


def _linked_to_first(members: list[tuple[str, Side]], series: dict[str, dict[datetime, float]],
                     threshold: float) -> set[int]:
    """Indexes of the members reachable from members[0] through correlated pairs."""
    reached, frontier = {0}, [0]
    while frontier:
        current = frontier.pop()
        for index, member in enumerate(members):
            if index in reached:
                continue
            rho = correlation(series[members[current][0]], series[member[0]])
            if rho is not None and rho * members[current][1].sign * member[1].sign > threshold:
                reached.add(index)
                frontier.append(index)
    return reached - {0}

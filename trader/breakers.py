"""The per-symbol entry breakers checked every tick: a spread wide against its own recent
history (and wider than a few ticks), a crash over the last candles, an EXTREME volatility
regime. The rules are the pure functions of trader/guards.py; this keeps the spread history
they compare against and the regime of each symbol's last closed candle.
Breakers gate new entries only, never exits or protection.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from trader import guards
from trader.domain import BookTicker, Candle
from trader.guard_book import GuardBook
from trader.market.history import CandleHistory
from trader.strategy.regime import DEFAULT_THRESHOLDS, Regime, classify_ranges, read_regime

SPREAD_HISTORY = 100


class Breakers:
    def __init__(self, book: GuardBook) -> None:
        self.book = book
        self.spreads: dict[str, list[Decimal]] = {}
        self._regimes: dict[str, tuple[datetime | None, Regime | None]] = {}

    def check(self, symbol: str, quote: BookTicker | None, tick_size: Decimal,
              candles: Sequence[Candle] | CandleHistory, now: datetime) -> str | None:
        """Run the breakers for one symbol; the regime read, for telemetry. `quote`: the top
        of book (None when there is none this tick: the spread check skips), `tick_size`
        its price grid (the spread floor is in ticks). A CandleHistory gives the regime
        from its float true ranges (exact near a threshold)."""
        config = self.book.config
        if quote is not None and tick_size > 0:
            spread_pct = quote.spread_pct
            history = self.spreads.setdefault(symbol, [])
            if history:
                self.book.apply(guards.check_spread, symbol, spread_pct,
                                (quote.ask - quote.bid) / tick_size, history, now, config)
            history.append(spread_pct)
            del history[:-SPREAD_HISTORY]
        closed = candles.closed() if isinstance(candles, CandleHistory) else candles
        self.book.apply(guards.check_crash, symbol, closed, now, config)
        regime = self.regime(symbol, candles)
        if regime is None:
            return None
        self.book.apply(guards.check_regime, symbol, regime, now, config)
        return regime.value

    def regime(self, symbol: str, candles: Sequence[Candle] | CandleHistory) -> Regime | None:
        """The symbol's volatility regime on its last closed candle, read once per candle
        (the breaker, the regime gauge and the open position's legs ask every tick)."""
        last = candles[-1].open_time if len(candles) else None
        cached = self._regimes.get(symbol)
        if cached is not None and cached[0] == last:
            return cached[1]
        regime = regime_of(candles)
        self._regimes[symbol] = (last, regime)
        return regime


def regime_of(candles: Sequence[Candle] | CandleHistory) -> Regime | None:
    """`read_regime(candles).regime`; from the history's float ranges when they decide it."""
    if isinstance(candles, CandleHistory):
        window = DEFAULT_THRESHOLDS.lookback - 1     # the ranges read_regime computes
        if (candles and candles[-1].close > 0
                and len(candles.ranges) == min(len(candles) - 1, window)):
            regime = classify_ranges(candles.ranges)
            if regime is not None:
                return regime
        candles = candles.closed()
    reading = read_regime(candles)
    return reading.regime if reading is not None else None

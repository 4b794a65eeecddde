"""The per-symbol entry breakers checked every tick: a spread wide against its own recent
history, a crash over the last candles, an EXTREME volatility regime. The rules are the
pure functions of trader/guards.py; this keeps the spread history they compare against.
Breakers gate new entries only, never exits or protection.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from trader import guards
from trader.domain import Candle
from trader.guard_book import GuardBook
from trader.strategy.regime import read_regime

SPREAD_HISTORY = 100


class Breakers:
    def __init__(self, book: GuardBook) -> None:
        self.book = book
        self.spreads: dict[str, list[Decimal]] = {}

    def check(self, symbol: str, spread_pct: Decimal | None, candles: Sequence[Candle],
              now: datetime) -> str | None:
        """Run the breakers for one symbol; the regime read, for telemetry."""
        config = self.book.config
        if spread_pct is not None:
            history = self.spreads.setdefault(symbol, [])
            if history:
                self.book.apply(guards.check_spread, symbol, spread_pct, history, now, config)
            history.append(spread_pct)
            del history[:-SPREAD_HISTORY]
        self.book.apply(guards.check_crash, symbol, candles, now, config)
        reading = read_regime(candles)
        if reading is None:
            return None
        self.book.apply(guards.check_regime, symbol, reading.regime, now, config)
        return reading.regime.value

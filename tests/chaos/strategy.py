"""A strategy plug-in for the chaos test and the soak benchmark
(TRADEBOT_STRATEGY=tests.chaos.strategy:EveryCandle): it wants a position on every closed
candle, so that entries, stops, take-profits and closes all happen in a short run.
Its signal depends only on the candle's time, so a restarted agent sees the same signal on
the same candle (which is what makes duplicate entries possible if idempotency breaks).
The side flips every half hour of candle time, so the 5-minute timeframe the agent checks
against agrees with the 1-minute one (except at a flip)."""

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from trader.domain import Candle, Side, Signal


class EveryCandle:
    name = "chaos-every-candle"
    warmup = 25
    side_minutes = 30

    def signal(self, closed: Sequence[Candle]) -> Signal | None:
        minute = int(closed[-1].open_time.timestamp()) // 60
        side = Side.BUY if (minute // self.side_minutes) % 2 == 0 else Side.SELL
        return Signal(side, 0.7, Decimal("0.012"), Decimal("0.006"), cooldown=timedelta(0),
                      reason="chaos")


class EveryCandleLong(EveryCandle):
    """Long on every closed candle, its stop and target far away (3 %, 6 %): for a test about
    something else that closes the position by hand, which the agent must not close first
    on its own (an opposite signal at the half-hour flip, a stop or target hit by the next
    candle's walk)."""
    name = "chaos-every-candle-long"

    def signal(self, closed: Sequence[Candle]) -> Signal | None:
        return Signal(Side.BUY, 0.7, Decimal("0.06"), Decimal("0.03"), cooldown=timedelta(0),
                      reason="chaos")

"""A strategy plug-in for the chaos test (TRADEBOT_STRATEGY=tests.chaos.strategy:EveryFewCandles):
it trades often so that entries, partial takes, stops and closes all happen in a short run.
Its signal depends only on the candle's time, so a restarted agent sees the same signal on
the same candle (which is what makes duplicate entries possible if idempotency breaks)."""

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from trader.domain import Candle, Side, Signal


class EveryFewCandles:
    name = "chaos-every-few-candles"
    warmup = 25
    period = 4

    def signal(self, closed: Sequence[Candle]) -> Signal | None:
        minute = int(closed[-1].open_time.timestamp()) // 60
        if minute % self.period:
            return None
        side = Side.BUY if (minute // self.period) % 2 == 0 else Side.SELL
        return Signal(side, 0.7, Decimal("0.012"), Decimal("0.006"), cooldown=timedelta(0),
                      reason="chaos")

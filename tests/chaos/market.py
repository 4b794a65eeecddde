"""A seeded market for the chaos test and the soak benchmark: it moves the fake exchange's
price one closed 1m candle at a time, so stops and take-profits trigger as on Binance."""

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from trader.domain import Candle


class Market:
    """A Gaussian walk of closed 1m candles (0.35 % per candle, wicks of 0.15 %).

    Candle times start `history` before now and advance one minute per candle, faster than
    real time while they are in the past (fills, stamped with their candle's time, stay
    inside the boot pass's 2-day look-back). A candle is never pushed before it has closed:
    once the walk reaches now, it goes on at real time, one candle a minute, as on Binance.
    """

    def __init__(self, fake: FakeBinance, rng: random.Random, symbol: str,
                 price: Decimal = Decimal("50000"),
                 history: timedelta = timedelta(days=1)) -> None:
        self.fake, self.rng, self.symbol = fake, rng, symbol
        self.next_open = datetime.now(UTC).replace(second=0, microsecond=0) - history
        self.price = price
        self.pushed = 0

    async def push(self) -> None:
        move = Decimal(str(self.rng.gauss(0, 0.0035)))
        close = (self.price * (1 + move)).quantize(Decimal("0.1"))
        wick = Decimal(str(abs(self.rng.gauss(0, 0.0015)))) * self.price
        high = (max(self.price, close) + wick).quantize(Decimal("0.1"))
        low = (min(self.price, close) - wick).quantize(Decimal("0.1"))
        candle = Candle(self.symbol, self.next_open, timedelta(minutes=1), self.price, high, low,
                        close, Decimal("12"))
        await self.fake.push_candle(candle)
        self.price = close
        self.next_open += timedelta(minutes=1)
        self.pushed += 1

    def seconds_until_closed(self) -> float:
        """Seconds until the next candle has closed (0 if it has)."""
        close = self.next_open + timedelta(minutes=1)
        return max(0.0, (close - datetime.now(UTC)).total_seconds())

    async def run(self, every: float) -> None:
        """Push a candle every `every` seconds, or when it closes, until cancelled."""
        while True:
            await asyncio.sleep(self.seconds_until_closed())
            await self.push()
            await asyncio.sleep(every)

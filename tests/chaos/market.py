"""A seeded market for the chaos test and the soak benchmark: it moves the fake exchange's
price one closed 1m candle at a time, so stops and take-profits trigger as on Binance, for
as long as the run lasts (each candle is drawn from the seeded walk when it is pushed)."""

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from trader.domain import Candle
from trader.exchange.sim_path import candle_path, funding_times

# Candle time a run may use up before the walk reaches now: a year of 1m candles lasts
# ~22 h at the chaos test's pace (one every 0.15 s), longer than any chaos run or soak.
LONG_HISTORY = timedelta(days=365)


class Market:
    """A Gaussian walk of closed 1m candles (0.35 % per candle, wicks of 0.15 %).

    Candle times start `history` before now and advance one minute per candle, faster than
    real time while they are in the past. A candle is never pushed before it has closed:
    once the walk reaches now, it goes on at real time, one candle a minute, as on Binance.

    The price walks each candle's path (open, the nearer extreme, the other one, close:
    the simulator's own path, trader/exchange/sim_path.py) on the fake exchange at real
    time, and funding is charged at the current rate as candle time passes 00/08/16 UTC:
    every fill and funding payment is stamped with the time it happens, never with its
    candle's time, so the agent's look-backs (2 days of fills at boot, 7 of income) see
    them however far in the past the candles are, and a long `history` costs nothing.

    `hold()` keeps the price still (no candle is pushed) until `release()`: a check of
    something that needs the position to outlive a restart (tests/chaos/stop_moves.py).
    """

    def __init__(self, fake: FakeBinance, rng: random.Random, symbol: str,
                 price: Decimal = Decimal("50000"),
                 history: timedelta = LONG_HISTORY) -> None:
        self.fake, self.rng, self.symbol = fake, rng, symbol
        self.next_open = datetime.now(UTC).replace(second=0, microsecond=0) - history
        self.price = price
        self.pushed = 0
        self.funding_charges = 0
        self._moving = asyncio.Event()
        self._moving.set()

    async def push(self) -> None:
        move = Decimal(str(self.rng.gauss(0, 0.0035)))
        close = (self.price * (1 + move)).quantize(Decimal("0.1"))
        wick = Decimal(str(abs(self.rng.gauss(0, 0.0015)))) * self.price
        high = (max(self.price, close) + wick).quantize(Decimal("0.1"))
        low = (min(self.price, close) - wick).quantize(Decimal("0.1"))
        candle = Candle(self.symbol, self.next_open, timedelta(minutes=1), self.price, high, low,
                        close, Decimal("12"))
        for point in candle_path(candle)[1:]:        # the open is the last close: no gap
            await self.fake.move_price(self.symbol, point.price)
        for _ in funding_times(candle.open_time, candle.close_time):
            await self.fake.settle_funding(self.symbol, self.fake.sim.funding_rate(self.symbol))
            self.funding_charges += 1
        await self.fake.push_candle(candle, walk=False)
        self.price = close
        self.next_open += timedelta(minutes=1)
        self.pushed += 1

    def seconds_until_closed(self) -> float:
        """Seconds until the next candle has closed (0 if it has)."""
        close = self.next_open + timedelta(minutes=1)
        return max(0.0, (close - datetime.now(UTC)).total_seconds())

    def hold(self) -> None:
        """No candle (no price move) from now until `release()`."""
        self._moving.clear()

    def release(self) -> None:
        self._moving.set()

    async def run(self, every: float) -> None:
        """Push a candle every `every` seconds, or when it closes, until cancelled (waiting
        while held)."""
        while True:
            await asyncio.sleep(self.seconds_until_closed())
            await self._moving.wait()
            await self.push()
            await asyncio.sleep(every)

"""The fake Binance for a person trying `tradebot run` by hand: the server with a market
that moves, so the agent sees candles and trades.

    python -m tests.fakes.binance_server --port 8900 [--market bundled|walk|none]

`PlayMarket` plays Binance's market side on the fake: first `history` closed candles up to
the last interval boundary (what the agent's boot reads from GET /fapi/v1/klines), then, as
on Binance, the price moves every second along the current candle's path (book ticker and
mark price events; stops and targets trigger on it), an unclosed kline ("x": false) goes to
the <symbol>@kline_<interval> subscribers with each move, and the closed kline ("x": true)
at the boundary (event shape: binance_wire.kline_event, from Binance's Kline/Candlestick
Streams page). Binance pushes kline updates every 250 ms; once a second is enough here.

The candles' shapes come from the bundled data (trader/data: each candle's open, high, low
and close as ratios to the close before it, chained from the symbol's start price, looped
at the end) or from a seeded random walk. With the bundled shapes and the default strategy
the live part starts a few candles before one the default strategy signals on, so the
first trade comes within minutes rather than hours.
"""

import argparse
import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import cycle, pairwise

from loguru import logger

from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_wire import kline_event
from trader.domain import Candle, to_ms
from trader.market.replay import load_bundled
from trader.strategy.default import DefaultStrategy

Shape = tuple[Decimal, Decimal, Decimal, Decimal]     # open, high, low, close / last close
MARKETS = ("bundled", "walk", "none")
LEAD = 3                  # live candles before the first one the default strategy signals on


def bundled_shapes(bundled: dict[str, list[Candle]], symbol: str,
                   interval: timedelta) -> list[Shape]:
    """The bundled candles of `symbol` (else of the first bundled symbol) as ratios to the
    close before each, their moves scaled to `interval` by the square root of the
    intervals' ratio (a 15m candle moves ~sqrt(15) = 3.9 times as far as a 1m one: taken
    as they are, 1m candles of them trip the agent's spike breaker)."""
    candles = bundled.get(symbol) or next(iter(bundled.values()))
    scale = Decimal(str(math.sqrt(interval / candles[0].interval)))
    return [tuple(1 + (price / before.close - 1) * scale    # type: ignore[misc]
                  for price in (c.open, c.high, c.low, c.close))
            for before, c in pairwise(candles)]


def walk_shapes(rng: random.Random) -> Iterator[Shape]:
    """A Gaussian walk: 0.3 % per candle, wicks of 0.1 %, with trending stretches."""
    drift = 0.0
    while True:
        if rng.random() < 0.05:
            drift = rng.choice((-1, 0, 0, 1)) * 0.0015
        close = Decimal(str(1 + rng.gauss(drift, 0.003)))
        wick_up, wick_down = (Decimal(str(abs(rng.gauss(0, 0.001)))) for _ in range(2))
        yield (Decimal(1), max(Decimal(1), close) + wick_up, min(Decimal(1), close) - wick_down,
               close)


class PlayMarket:
    """See the module docstring. `candles[symbol]`: every candle made so far."""

    def __init__(self, fake: FakeBinance, symbols: list[str], shapes: dict[str, Iterator[Shape]],
                 interval: timedelta = timedelta(minutes=1), history: int = 300) -> None:
        self.fake, self.symbols, self.shapes = fake, symbols, shapes
        self.interval, self.history = interval, history
        self.price = {s: fake.sim.mark_price(s) for s in symbols}
        self.candles: dict[str, list[Candle]] = {s: [] for s in symbols}

    def next_candle(self, symbol: str, open_time: datetime) -> Candle:
        """The next candle of `symbol`'s shapes from its last close, on its tick size."""
        last = self.price[symbol]
        tick = self.fake.sim.rules_for(symbol).tick_size
        open_, high, low, close = ((last * ratio / tick).to_integral_value() * tick
                                   for ratio in next(self.shapes[symbol]))
        candle = Candle(symbol, open_time, self.interval, open_, max(high, open_, close),
                        min(low, open_, close), close, Decimal("100"))
        self.price[symbol] = close
        self.candles[symbol].append(candle)
        return candle

    def boundary(self, moment: datetime) -> datetime:
        """The start of the interval `moment` is in."""
        seconds = int(self.interval.total_seconds())
        return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)

    async def seed_history(self) -> None:
        """`history` closed candles per symbol, the last one closed at the last boundary."""
        first_open = self.boundary(self.fake.now()) - self.interval * self.history
        for symbol in self.symbols:
            for number in range(self.history):
                await self.fake.push_candle(self.next_candle(symbol,
                                                             first_open + self.interval * number))

    async def run(self, stop: asyncio.Event) -> None:
        """Candle after candle at real time until `stop` is set."""
        while not stop.is_set():
            open_time = self.boundary(self.fake.now())
            live = {s: self.next_candle(s, open_time) for s in self.symbols}
            if not await self._walk(live, stop):
                return
            for candle in live.values():
                await self.fake.push_candle(candle, walk=False)

    async def _walk(self, live: dict[str, Candle], stop: asyncio.Event) -> bool:
        """Move each price along its candle's path (open, the nearer extreme, the other,
        close) once a second until the candle's close; False if `stop` was set."""
        close_time = next(iter(live.values())).close_time
        while (left := (close_time - self.fake.now()).total_seconds()) > 0:
            done = 1 - left / self.interval.total_seconds()
            for candle in live.values():
                price = path_price(candle, done)
                await self.fake.move_price(candle.symbol, price)
                so_far = Candle(candle.symbol, candle.open_time, candle.interval, candle.open,
                                max(candle.open, price), min(candle.open, price), price,
                                candle.volume * Decimal(str(round(done, 2))), closed=False)
                event = kline_event(so_far, to_ms(self.fake.now()))
                await self.fake.hub.send_market(event["stream"], event)
            try:
                await asyncio.wait_for(stop.wait(), min(1.0, left))
                return False
            except TimeoutError:
                continue
        return True


def path_price(candle: Candle, done: float) -> Decimal:
    """The price `done` (0..1) of the way along open -> nearer extreme -> other -> close."""
    first, second = ((candle.low, candle.high)
                     if candle.open - candle.low <= candle.high - candle.open
                     else (candle.high, candle.low))
    points = (candle.open, first, second, candle.close)
    leg = min(int(done * 3), 2)
    start, end = points[leg], points[leg + 1]
    share = Decimal(str(done * 3 - leg))
    return max(candle.low, min(candle.high, start + (end - start) * share))


def first_signal_at(symbol: str, shapes: list[Shape], price: Decimal, history: int) -> int:
    """Where in `shapes` (from `history` on) the default strategy first signals, chained
    from `price` (0 if it never does)."""
    strategy, candles, last = DefaultStrategy(), [], price
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    for number, (open_, high, low, close) in enumerate(shapes):
        candles.append(Candle(symbol, moment + timedelta(minutes=number), timedelta(minutes=1),
                              last * open_, last * high, last * low, last * close))
        last *= close
        if number >= history and strategy.signal(candles[-strategy.window:]) is not None:
            return number
    return 0


def shapes_for(market: str, symbol: str, price: Decimal, history: int, seed: int,
               bundled: dict[str, list[Candle]]) -> Iterator[Shape]:
    """The candle shapes of `symbol` for `market` ("bundled" or "walk")."""
    if market == "walk":
        return walk_shapes(random.Random(f"{seed}:{symbol}"))
    shapes = bundled_shapes(bundled, symbol, timedelta(minutes=1))
    start = max(0, first_signal_at(symbol, shapes, price, history) - history - LEAD)
    return cycle(shapes[start:] + shapes[:start])


async def serve_forever(fake: FakeBinance, market: str = "bundled", seed: int = 7) -> None:
    """Serve `fake` (with a `market`: MARKETS) until interrupted."""
    async with fake:
        print(f"fake binance on {fake.url} (ws {fake.ws_url}) key={fake.api_key} "
              f"secret={fake.api_secret}", flush=True)
        stop = asyncio.Event()
        if market != "none":
            symbols, bundled = fake.endpoints.symbols, load_bundled()
            play = PlayMarket(fake, symbols, {
                s: shapes_for(market, s, fake.sim.mark_price(s), 300, seed, bundled)
                for s in symbols})
            await play.seed_history()
            print(f"market: {market} candles, 1m, {play.history} candles of history for "
                  f"{', '.join(symbols)}", flush=True)
            await play.run(stop)
        await stop.wait()


def main(argv: list[str] | None = None,
         serve: Callable[[FakeBinance], Awaitable[None]] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Binance USD-M futures server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="fake-api-key-0123456789")
    parser.add_argument("--api-secret", default="fake-api-secret-0123456789")
    parser.add_argument("--ws-layout", default="both", choices=("routed", "legacy", "both"))
    parser.add_argument("--price", action="append", default=[],
                        help="SYMBOL=PRICE, repeatable (default: a few majors)")
    parser.add_argument("--market", default="bundled", choices=MARKETS,
                        help="1m candles from the bundled data's shapes (default), a random "
                             "walk, or none (prices move only through /_control)")
    parser.add_argument("--seed", type=int, default=7, help="of the random walk")
    parser.add_argument("--no-algo-api", action="store_true",
                        help="a server without the Algo Order API (HTTP 404 there)")
    args = parser.parse_args(argv)
    prices = {k: Decimal(v) for k, v in (item.split("=", 1) for item in args.price)} or None
    fake = FakeBinance(api_key=args.api_key, api_secret=args.api_secret, prices=prices,
                       host=args.host, port=args.port, ws_layout=args.ws_layout,
                       algo_api=not args.no_algo_api)
    started = time.monotonic()
    try:
        asyncio.run(serve(fake) if serve else serve_forever(fake, args.market, args.seed))
    except KeyboardInterrupt:
        logger.info("fake binance stopped after {:.0f}s", time.monotonic() - started)


if __name__ == "__main__":
    main()

"""Live candle feed: closed candles polled from the exchange (REST klines).

The exchange adapter may also push klines from its stream; polling stays as the floor so a
silent stream never starves the strategy. Gaps are backfilled by asking for more candles.
Whether a candle is closed is the exchange's word (`Candle.closed`: Binance's clock, its next
kline begun, the stream's "x"), never the host's clock: a host ahead of Binance's would take
the kline in progress, and the final one would then never come (seen already).
"""

from datetime import datetime

from loguru import logger

from trader.config import INTERVAL_SECONDS
from trader.domain import Candle
from trader.exchange.base import Exchange, clock_offset


class ExchangeFeed:
    def __init__(self, exchange: Exchange, symbols: list[str], interval: str) -> None:
        self.exchange = exchange
        self.symbols = symbols
        self.interval = interval
        self.seconds = INTERVAL_SECONDS[interval]
        self.last_open: dict[str, datetime] = {}

    async def poll(self, now: datetime) -> list[Candle]:
        """Closed candles not seen before, oldest first (the first call returns history).
        `now`: the host's time; the next candle is asked for once it closed on the
        exchange's clock (the host's plus the measured offset)."""
        fresh = self._from_stream()
        exchange_now = now + clock_offset(self.exchange)
        for symbol in self.symbols:
            last = self.last_open.get(symbol)
            if last is not None and (exchange_now - last).total_seconds() < 2 * self.seconds:
                continue
            limit = 300 if last is None else 10
            candles = await self.exchange.klines(symbol, self.interval, None, limit)
            closed = [c for c in candles if c.closed and (last is None or c.open_time > last)]
            if closed:
                self.last_open[symbol] = closed[-1].open_time
                fresh += closed
                logger.debug("candles symbol={} new={}", symbol, len(closed))
        return sorted(fresh, key=lambda c: c.close_time)

    def _from_stream(self) -> list[Candle]:
        """Candles the exchange's kline stream pushed (REST polling stays as the floor)."""
        drain = getattr(self.exchange, "drain_candles", None)
        if drain is None:
            return []
        fresh = []
        for candle in drain():
            last = self.last_open.get(candle.symbol)
            if candle.symbol in self.symbols and candle.closed and last is not None \
                    and candle.open_time > last:
                self.last_open[candle.symbol] = candle.open_time
                fresh.append(candle)
        return fresh

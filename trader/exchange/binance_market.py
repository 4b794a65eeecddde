"""Binance's market reads over REST: klines, the book top, and from the premium index the
mark price, the funding rate and an asset's index price (what a fee in BNB is worth)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from trader.domain import BookTicker, Candle, to_ms
from trader.exchange import binance_codec as codec
from trader.exchange.binance_fields import Fields, interval_delta, rows_of
from trader.exchange.binance_rest import BinanceRest

# The price a fee in BNB is valued with is read at the close, which waits for it (the tick
# with it): one try this long at most, not the client's 10 s with the gate's retries (44 s
# on a hanging read). Not read: the fee is valued later (trader/close_readback.py).
PRICE_READ_SECONDS = 2.0


class BinanceMarket:
    """The market reads, each one request through the gate (binance_rest.py)."""

    def __init__(self, rest: BinanceRest) -> None:
        self._rest = rest

    async def klines(self, symbol: str, interval: str, start: datetime | None = None,
                     limit: int = 500) -> list[Candle]:
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start is not None:
            params["startTime"] = to_ms(start)
        weight = 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        asked_at = self._rest.server_now()   # Binance answers after: its rows closed by then
        rows = await self._rest.call("klines", self._rest.client.futures_klines, weight=weight,
                                     **params)
        return codec.candles_from_rest(rows_of(rows, codec.KLINES), symbol,
                                       interval_delta(interval), asked_at)

    async def book_ticker(self, symbol: str) -> BookTicker:
        return codec.book_from_ticker(await self._rest.call(
            "book ticker", self._rest.client.futures_orderbook_ticker, weight=2, symbol=symbol))

    async def mark_price(self, symbol: str) -> Decimal:
        """Binance's mark price of `symbol`: GET /fapi/v1/premiumIndex with the symbol,
        weight 1, its "markPrice" (https://developers.binance.com/docs/derivatives/
        usds-margined-futures/market-data/rest-api/Mark-Price: "Mark Price and Funding
        Rate", weight "1 with symbol, 10 without"). What our stops trigger on."""
        return codec.mark_from_premium_index(await self._premium_index(symbol))

    async def funding_rate(self, symbol: str) -> Decimal:
        raw = await self._premium_index(symbol)
        return Fields(raw, codec.PREMIUM_INDEX).number("lastFundingRate")

    async def asset_price(self, asset: str) -> Decimal:
        """The index price of <asset>USDT: BNB's price on the spot markets Binance's index
        follows, what a fee charged in BNB is worth (GET /fapi/v1/premiumIndex with a
        symbol, weight 1: https://developers.binance.com/docs/derivatives/
        usds-margined-futures/market-data/rest-api/Mark-Price). An asset with no such
        symbol (BNFCR) is refused by Binance (-1121 Invalid symbol): an ExchangeError.
        Sent once, for PRICE_READ_SECONDS at most: UnknownOutcome past it."""
        raw = await self._premium_index(f"{asset}USDT", timeout=PRICE_READ_SECONDS, once=True)
        return codec.asset_price_from_premium_index(raw)

    async def _premium_index(self, symbol: str, **options: Any) -> Any:
        """GET /fapi/v1/premiumIndex of one symbol (weight 1): the mark (`mark_price`), the
        funding rate (`funding_rate`) and the index price (`asset_price`) all come from it;
        `options` as `BinanceRest.call` takes them."""
        return await self._rest.call("premium index", self._rest.client.futures_mark_price,
                                     symbol=symbol, **options)

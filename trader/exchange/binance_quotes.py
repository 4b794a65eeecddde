"""Quotes from Binance's market streams: bookTicker and markPriceUpdate events -> the latest
book top and mark price per symbol, each stamped with the injected clock's time it arrived.

No queue: a newer value replaces the older, because only the latest price matters. The book
and the mark age apart: the book-ticker stream pushes only when the best bid or ask changes
(a quiet book is no fault), the mark stream every second, so a mark stays Binance's mark
(`LatestQuotes.mark`) however long the book is quiet, and the book (`LatestQuotes.book`)
however long the mark stream is down. A whole quote (`LatestQuotes.quote`) is only as fresh
as its oldest part. While a stream is down nothing replaces its part, so it ages out and the
caller reads REST instead (the book: bookTicker; the mark: premiumIndex, never the book).

Documented payloads (tests/fixtures/binance/event_book_ticker*.json, event_mark_price*.json):
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Individual-Symbol-Book-Ticker-Streams
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Mark-Price-Stream
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from trader.clock import Clock
from trader.domain import BookTicker
from trader.exchange.base import Quote
from trader.exchange.binance_fields import Fields

BOOK_TICKER_EVENT, MARK_PRICE_EVENT = "bookTicker stream event", "markPriceUpdate stream event"


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """One markPriceUpdate: the mark price and the funding rate (None when Binance sends "",
    as for a delivery contract)."""
    symbol: str
    mark: Decimal
    funding_rate: Decimal | None


def book_from_stream(event: Any) -> BookTicker:
    """A <symbol>@bookTicker event {"e": "bookTicker", "s", "b", "a", ...}: best bid and ask.
    MalformedResponse when the symbol or a price is missing or not a number."""
    f = Fields(event, BOOK_TICKER_EVENT)
    return BookTicker(symbol=f.text("s"), bid=f.number("b"), ask=f.number("a"))


def mark_from_stream(event: Any) -> MarkPrice:
    """A <symbol>@markPrice[@1s] event {"e": "markPriceUpdate", "s", "p", "r", ...}.
    MalformedResponse when the symbol or the mark price is missing or not a number."""
    f = Fields(event, MARK_PRICE_EVENT)
    rate = f.optional_number("r") if f.present("r") else None
    return MarkPrice(symbol=f.text("s"), mark=f.number("p"), funding_rate=rate)


class LatestQuotes:
    """The newest book top and mark price per symbol, with the clock time each arrived.

        quotes = LatestQuotes(clock)
        quotes.on_book(book_from_stream(event)); quotes.on_mark(mark_from_stream(event))
        quotes.quote("BTCUSDT", timedelta(seconds=5))   # Quote, or None if a part is older
        quotes.mark("BTCUSDT", timedelta(seconds=5))    # MarkPrice alone, whatever the book
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._books: dict[str, tuple[BookTicker, datetime]] = {}
        self._marks: dict[str, tuple[MarkPrice, datetime]] = {}

    def on_book(self, book: BookTicker) -> None:
        self._books[book.symbol] = (book, self._clock.now())

    def on_mark(self, mark: MarkPrice) -> None:
        self._marks[mark.symbol] = (mark, self._clock.now())

    def book(self, symbol: str, max_age: timedelta) -> BookTicker | None:
        """The book top of `symbol` if it arrived within `max_age` of now, else None."""
        part = self._books.get(symbol)
        if part is None or self._clock.now() - part[1] > max_age:
            return None
        return part[0]

    def mark(self, symbol: str, max_age: timedelta) -> MarkPrice | None:
        """The mark of `symbol` if it arrived within `max_age` of now, else None: the book's
        age does not matter (stops trigger on the mark, not on the book)."""
        part = self._marks.get(symbol)
        if part is None or self._clock.now() - part[1] > max_age:
            return None
        return part[0]

    def quote(self, symbol: str, max_age: timedelta) -> Quote | None:
        """Book and mark of `symbol` if both arrived within `max_age` of now, else None.
        `Quote.at` is when the newer of the two arrived."""
        book_part, mark_part = self._books.get(symbol), self._marks.get(symbol)
        if book_part is None or mark_part is None:
            return None
        (book, book_at), (mark, mark_at) = book_part, mark_part
        if self._clock.now() - min(book_at, mark_at) > max_age:
            return None
        return Quote(symbol=symbol, bid=book.bid, ask=book.ask, mark=mark.mark,
                     funding_rate=mark.funding_rate, at=max(book_at, mark_at))

"""The matching simulator: one Binance USD-M account (one-way mode, isolated margin) in memory.

Reused by the paper exchange (trader/exchange/paper.py) and the fake Binance HTTP server
(tests/fakes/binance_server.py). It never sleeps and never reads the clock: every call gets
`now`, candles carry their own times, and `latency()` only draws a seeded delay.

Matching rules:
- Intra-candle path: open -> the extreme nearer to the open -> the other extreme -> close
  (if |open - high| <= |open - low| the high comes first, else the low). Before walking
  it, the price jumps from the last price to the open: a gap.
- Triggers use the last price (Binance's workingType=CONTRACT_PRICE); the simulator's mark
  price is the last price too. Along a move, orders fire in the order the path meets their
  levels (placement order breaks ties), so with TP and SL inside one candle the one the
  path reaches first fills and the other expires with the position.
- MARKET orders fill at once at mid +- spread/2, plus slippage against the taker, rounded
  to the tick against the taker; taker fee. A triggered STOP_MARKET / TAKE_PROFIT_MARKET
  is such a market fill from its stop price, or from the open when the candle gaps through
  it. LIMIT orders rest and fill at their price (maker fee) when the path trades through
  it: queue position at the touch is modelled conservatively, a resting buy at P fills
  only once the price goes below P (a trade AT P does not fill it), a sell only above P.
  A marketable LIMIT fills at once as taker at the book price (never worse than its
  limit); a post-only one (Binance timeInForce GTX) is refused instead with -5022 and
  not recorded, as Binance does.
- Orders fill in full (no partial fills; `fill_partly` plays one). reduce-only orders are clipped to the position;
  closePosition orders close whatever exists at trigger time; resting reduce-only and
  closePosition orders expire as soon as their position is gone (or flipped).
- Conditional orders are one `Order` from NEW to FILLED under their client id (Binance's
  algo order and the market order it spawns are not told apart).
- Liquidation (isolated, approximated): when the path crosses the position's liquidation
  price (see sim_ledger.py) the position is closed there (or at the gap price) as a taker
  market order with client id `autoclose-<n>`, as Binance names its liquidation orders.
- Funding at 00/08/16 UTC when a candle spans that moment, at the candle's close price,
  from the symbol's funding schedule, rate, or `SimConfig.funding_rate`. `set_price` never
  applies funding (the fake server calls `apply_funding` explicitly).
"""

from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

from loguru import logger

from trader.domain import (
    ZERO,
    BookTicker,
    Candle,
    Order,
    OrderRequest,
    Side,
)
from trader.exchange.base import ExchangeError, OrderUpdate
from trader.exchange.sim_core import SimConfig, SimEvent, SimulatorCore
from trader.exchange.sim_members import BUY, CANCELED, FLATTEN, LIMIT, MARKET, NEW, SELL
from trader.exchange.sim_path import book_at, candle_path, candle_problem
from trader.exchange.sim_rules import (
    DEFAULT_RULES,
    check_leverage,
    rules_for,
    spread_for,
    validate_filters,
    validate_shape,
    would_trigger_now,
)
from trader.exchange.sim_state import dump_state, load_state
from trader.symbol_rules import SymbolRules

__all__ = ["DEFAULT_RULES", "SimConfig", "SimEvent", "Simulator", "rules_for"]

BOOKS_KEPT = 1024    # books kept per symbol, one per price (Simulator.book)
POST_ONLY_REJECTED = ("Due to the order could not be executed as maker, the Post Only order "
                      "will be rejected.")


class Simulator(SimulatorCore):
    """One simulated futures account and its market prices. See the module docstring."""

    # --- market -----------------------------------------------------------------------
    def on_candle(self, candle: Candle) -> list[SimEvent]:
        """Walk the candle's price path (gap to the open first), then apply due funding.
        A candle with a price <= 0 is refused: skipped with a warning, nothing moves."""
        symbol = candle.symbol
        problem = candle_problem(candle)
        if problem is not None:
            logger.warning("sim candle refused symbol={} open_time={} problem={} (every price "
                           "must be above 0)", symbol, candle.open_time.isoformat(), problem)
            return []
        return self.walk_candle(candle)

    def walk_candle(self, candle: Candle) -> list[SimEvent]:
        """`on_candle` for a candle its caller found sound (`candle_problem` None): the
        paper exchange checks each candle once, not once here and once there."""
        symbol = candle.symbol
        # Nothing fires: a flat account with no order (nothing could fire at any price: most
        # candles, told without a call), or no level between the last price and the extremes
        held = self.ledger.positions.get(symbol)
        if (held is None or not held.quantity) and not self.orders.by_symbol.get(symbol) \
                or self._quiet_candle(candle):
            self.prices[symbol] = candle.close   # where walking the path would leave it
            events: list[SimEvent] = []
        else:
            events = self._sweep(symbol, candle.open, candle.open_time, gap=True)
            for start, end in pairwise(candle_path(candle)):
                events += self._sweep(symbol, end.price, end.time, gap=False, start=start.price)
        open_time = candle.open_time
        due = self.funding.due(symbol, open_time, open_time + candle.interval)
        for moment in due:      # most candles: none (FundingBook.due decides it cheaply)
            events += self._fund(symbol, moment)
        return events

    def _quiet_candle(self, candle: Candle) -> bool:
        """True when nothing fires anywhere between the last price and the candle's
        extremes (a position or an order is there: `walk_candle` tells a flat account with
        no order itself), which then skips the path walk."""
        symbol = candle.symbol
        last = self.prices.get(symbol)
        # the range spanned by the gap from the last price and the path (only compared
        # with levels by value: which of two equal Decimals min/max return does not matter)
        if last is None:
            low = min(candle.open, candle.high, candle.low, candle.close)
            high = max(candle.open, candle.high, candle.low, candle.close)
        else:
            low = min(candle.open, candle.high, candle.low, candle.close, last)
            high = max(candle.open, candle.high, candle.low, candle.close, last)
        return self._quiet_between(symbol, low, high)

    def set_price(self, symbol: str, price: Decimal, now: datetime,
                  gap: bool = False) -> list[SimEvent]:
        """Move the price at once; orders crossed on the way fill at their levels (or at
        `price` when `gap`). A price <= 0 is refused (a warning, nothing moves)."""
        if price <= 0:
            logger.warning("sim price refused symbol={} at={} price={} (must be above 0)",
                           symbol, now.isoformat(), price)
            return []
        return self._sweep(symbol, price, now, gap=gap)

    def set_funding_rate(self, symbol: str, rate: Decimal) -> None:
        self.funding.set_rate(symbol, rate)

    def set_funding_schedule(self, symbol: str, schedule: list[tuple[datetime, Decimal]]) -> None:
        """Historical rates: funding at t uses the latest entry at or before t."""
        self.funding.set_schedule(symbol, sorted(schedule))

    def funding_rate(self, symbol: str, at: datetime | None = None) -> Decimal:
        return self.funding.rate(symbol, at)

    def apply_funding(self, symbol: str, now: datetime) -> list[SimEvent]:
        """Charge one funding payment now (the fake server's control API)."""
        return self._fund(symbol, now)

    def book(self, symbol: str) -> BookTicker:
        """Bid and ask around the last price (sim_path.book_at), kept per price for the
        last BOOKS_KEPT prices: a tick reads it several times at one price, and prices
        come back (a candle file's equal price texts are one Decimal: candle_csv.py)."""
        return self.book_at_mark(symbol, self.mark_price(symbol))

    def book_at_mark(self, symbol: str, mark: Decimal) -> BookTicker:
        """`book(symbol)` when the last price `mark` is at hand (the paper exchange's quote)."""
        spread = self.config.spread.get(symbol)        # spread_for(symbol, config.spread)
        if spread is None:
            spread = spread_for(symbol, self.config.spread)
        tick = self.rules_for(symbol).tick_size
        books = self._books.get(symbol)
        if books is None:
            books = self._books[symbol] = {}
        # by identity, the very same Decimals (not equal ones: 0.5 and 0.50 may round to
        # other digits); an entry holds its mark, so no other object can take its id
        kept = books.get(id(mark))
        if kept is not None and kept[0] is mark and kept[1] is spread and kept[2] is tick:
            return kept[3]
        if len(books) >= BOOKS_KEPT:
            books.clear()
        book = book_at(symbol, mark, spread, tick)
        books[id(mark)] = (mark, spread, tick, book)
        return book

    # --- account ----------------------------------------------------------------------
    def place(self, request: OrderRequest, now: datetime) -> tuple[Order, list[SimEvent]]:
        """Validate and submit one order; raises ExchangeError with Binance's code."""
        symbol = request.symbol
        validate_shape(request)
        last = self.mark_price(symbol)
        validate_filters(request, self.rules_for(symbol), last)
        if self.orders.open_order(symbol, request.client_id) is not None:
            raise ExchangeError(-4116, "ClientOrderId is duplicated.")
        if request.post_only and request.type is LIMIT:
            self._check_post_only(request)
        if request.type.conditional:
            self._check_conditional(request, last)
        elif request.reduce_only:
            self._check_reduces(request)
        order = self._new_order(request, now)
        if request.type is MARKET:
            events = self._submit_market(order, now)
        elif request.type is LIMIT:
            events = self._submit_limit(order, now)
        else:
            events = self._rest(order, now)
        return self.order(symbol, order.client_id) or order, events

    def cancel(self, symbol: str, client_id: str, now: datetime) -> tuple[Order, list[SimEvent]]:
        order = self.orders.open_order(symbol, client_id)
        if order is None:
            raise ExchangeError(-2011, "Unknown order sent.")
        cancelled = self._finish(order, CANCELED, now)
        return cancelled, [OrderUpdate(cancelled, None, now)]

    def order(self, symbol: str, client_id: str) -> Order | None:
        return self.orders.get(symbol, client_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.orders.open_orders(symbol)

    def set_leverage(self, symbol: str, leverage: int) -> None:
        check_leverage(leverage)
        self.ledger.leverages[symbol] = leverage

    def leverage(self, symbol: str) -> int:
        return self.ledger.leverage(symbol)

    def close_by_hand(self, symbol: str, now: datetime,
                      quantity: Decimal | None = None) -> list[SimEvent]:
        """What an operator does in the Binance app: a market reduce, client id manual-<n>."""
        held = self.ledger.position(symbol)
        if held.sign == 0:
            logger.info("sim close by hand: no position symbol={}", symbol)
            return []
        size = abs(held.quantity) if quantity is None else min(quantity, abs(held.quantity))
        side = SELL if held.sign > 0 else BUY
        return self._by_hand(symbol, side, size, now, reduce_only=True)

    def close_by_exchange(self, symbol: str, now: datetime, client_id: str,
                          quantity: Decimal | None = None) -> list[SimEvent]:
        """A close the exchange itself makes, under one of Binance's special client ids
        ("autoclose-<n>" liquidation, "adl_autoclose" auto-deleveraging,
        "settlement_autoclose-<n>" delisting settlement); `quantity` None closes it all."""
        held = self.ledger.position(symbol)
        if held.sign == 0:
            return []
        size = abs(held.quantity) if quantity is None else min(quantity, abs(held.quantity))
        side = SELL if held.sign > 0 else BUY
        request = OrderRequest(symbol=symbol, side=side, type=MARKET, quantity=size,
                               client_id=client_id, role=FLATTEN, reduce_only=True)
        return self.place(request, now)[1]

    def open_by_hand(self, symbol: str, side: Side, quantity: Decimal,
                     now: datetime) -> list[SimEvent]:
        """An operator opens (or adds to) a position in the app: market, client id manual-<n>."""
        return self._by_hand(symbol, side, quantity, now, reduce_only=False)

    def cancel_by_hand(self, symbol: str, client_id: str, now: datetime) -> list[SimEvent]:
        return self.cancel(symbol, client_id, now)[1]

    def latency(self) -> float:
        """Seconds of order latency, seeded uniform in latency_ms (the sim never sleeps)."""
        self.counters["latency"] += 1
        low, high = self.config.latency_ms
        return self._rng.uniform(low, high) / 1000

    def to_state(self) -> dict[str, Any]:
        """The full state, JSON-safe (Decimals and times as text)."""
        return dump_state(self)

    @classmethod
    def from_state(cls, state: dict[str, Any], config: SimConfig,
                   rules: dict[str, SymbolRules] | None = None) -> "Simulator":
        sim = cls(config, rules)
        load_state(sim, state)
        for _ in range(sim.counters["latency"]):   # same random stream as before the restart
            sim._rng.uniform(0, 1)
        return sim

    # --- submission -------------------------------------------------------------------
    def _check_conditional(self, request: OrderRequest, last: Decimal) -> None:
        assert request.trigger_price is not None   # validate_shape guarantees it
        if would_trigger_now(request.type, request.side, request.trigger_price, last):
            raise ExchangeError(-2021, "Order would immediately trigger.")
        if request.close_position and any(
                o.close_position and o.side is request.side and o.type is request.type
                for o in self.orders.open_orders(request.symbol)):
            raise ExchangeError(-4130, "An open stop or take profit order with GTE and "
                                       "closePosition in the direction is existing.")

    def _check_post_only(self, request: OrderRequest) -> None:
        """A post-only LIMIT that would take liquidity is refused, not filled (error-code
        page, 50xx: https://developers.binance.com/docs/derivatives/usds-margined-futures/
        error-code; the order is not recorded)."""
        book = self.book(request.symbol)
        assert request.price is not None   # validate_shape guarantees it for a LIMIT
        if request.price >= book.ask if request.side is BUY else request.price <= book.bid:
            raise ExchangeError(-5022, POST_ONLY_REJECTED)

    def _check_reduces(self, request: OrderRequest) -> None:
        held = self.ledger.position(request.symbol)
        if held.sign == 0 or held.sign == request.side.sign:
            raise ExchangeError(-2022, "ReduceOnly Order is rejected.")

    def _check_margin(self, order: Order, price: Decimal, fee_rate: Decimal) -> None:
        if self._margin_shortfall(order, price, fee_rate) > 0:
            raise ExchangeError(-2019, "Margin is insufficient.")

    def _new_order(self, request: OrderRequest, now: datetime) -> Order:
        self.counters["order"] += 1
        # by position, in Order's field order (every order; keywords cost ~3,500
        # instructions more): symbol, client_id, side, type, status, quantity, filled_qty,
        # avg_price, price, trigger_price, reduce_only, close_position, exchange_id,
        # updated_at (tests/test_intent_copies.py)
        return Order(request.symbol, request.client_id, request.side, request.type, NEW,
                     request.quantity, ZERO, ZERO, request.price, request.trigger_price,
                     request.reduce_only, request.close_position, str(self.counters["order"]),
                     now)

    def _submit_market(self, order: Order, now: datetime) -> list[SimEvent]:
        price = self._taker_price(order.symbol, order.side, self.mark_price(order.symbol))
        self._check_margin(order, price, self.config.taker_fee)
        return [OrderUpdate(order, None, now), *self._execute(order, price, False, now)]

    def _submit_limit(self, order: Order, now: datetime) -> list[SimEvent]:
        assert order.price is not None
        taker = self._taker_price(order.symbol, order.side, self.mark_price(order.symbol))
        book = self.book(order.symbol)
        marketable = (order.price >= book.ask if order.side is BUY
                      else order.price <= book.bid)
        if not marketable:
            self._check_margin(order, order.price, self.config.maker_fee)
            return self._rest(order, now)
        price = min(order.price, taker) if order.side is BUY else max(order.price, taker)
        self._check_margin(order, price, self.config.taker_fee)
        return [OrderUpdate(order, None, now), *self._execute(order, price, False, now)]

    def _rest(self, order: Order, now: datetime) -> list[SimEvent]:
        self.orders.add(order)
        return [OrderUpdate(order, None, now)]

    def _by_hand(self, symbol: str, side: Side, quantity: Decimal, now: datetime,
                 reduce_only: bool) -> list[SimEvent]:
        self.counters["manual"] += 1
        request = OrderRequest(symbol=symbol, side=side, type=MARKET,
                               quantity=quantity, client_id=f"manual-{self.counters['manual']}",
                               role=FLATTEN, reduce_only=reduce_only)
        return self.place(request, now)[1]

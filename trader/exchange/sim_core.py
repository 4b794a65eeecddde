"""The matching core of the simulator: account and price state, fills, trigger sweeps along
a price path, liquidation and funding. The public API and order admission live in sim.py
(read its docstring for the matching rules)."""

import random
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from loguru import logger

from trader.domain import (
    ZERO,
    Balance,
    BookTicker,
    ExchangePosition,
    Fill,
    Order,
    OrderStatus,
    Side,
)
from trader.evolve import evolve
from trader.exchange.base import (
    AccountUpdate,
    ExchangeError,
    ExchangeEvent,
    FundingApplied,
    OrderUpdate,
)
from trader.exchange.sim_book import (
    FundingBook,
    OrderBook,
    QuietBand,
    Trigger,
    next_trigger,
    quiet_band,
)
from trader.exchange.sim_ledger import Ledger, SimPosition, money
from trader.exchange.sim_members import (
    BUY,
    EXPIRED,
    FILLED,
    LIMIT,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    SELL,
)
from trader.exchange.sim_path import taker_price, to_tick
from trader.exchange.sim_rules import DEFAULT_RULES, maintenance_rate, rules_for, spread_for
from trader.symbol_rules import SymbolRules

SimEvent = ExchangeEvent


class HistoryListener(Protocol):
    """Told of every order that reaches a terminal state and every fill, as they happen
    (the paper exchange journals them so a save never rewrites the whole history)."""

    def order_closed(self, order: Order) -> None: ...

    def fill_kept(self, fill: Fill) -> None: ...


@dataclass(frozen=True)
class SimConfig:
    balance: Decimal = Decimal("10000")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    spread: dict[str, Decimal] = field(default_factory=dict)   # fraction of price per symbol
    slippage: Decimal = Decimal("0.0001")                        # fraction against the taker
    latency_ms: tuple[int, int] = (50, 500)
    seed: int = 7
    default_leverage: int = 5
    funding_rate: Decimal = Decimal("0.0001")   # per 8 h when a symbol has no rate of its own
    max_fills_kept: int = 1000                  # older fills are dropped from memory and state
    max_terminal_orders_kept: int = 1000


def _fill_time(fill: Fill) -> datetime:
    return fill.time


def _disorder(fills: Sequence[Fill]) -> int:
    """How many fills come earlier in time than the fill before them."""
    return sum(1 for before, after in zip(fills, fills[1:], strict=False)
               if after.time < before.time)


class SimulatorCore:
    """State and matching of one simulated account; `Simulator` adds the public API."""

    def __init__(self, config: SimConfig = SimConfig(),
                 rules: dict[str, SymbolRules] | None = None) -> None:
        self.config = config
        self._rules = {**DEFAULT_RULES, **(rules or {})}
        self.ledger = Ledger(config.balance, config.default_leverage)
        self.orders = OrderBook(config.max_terminal_orders_kept)
        self.funding = FundingBook(config.funding_rate)
        self.prices: dict[str, Decimal] = {}
        self.fill_log = []
        self.counters = {"order": 0, "trade": 0, "manual": 0, "autoclose": 0, "latency": 0}
        self._rng = random.Random(config.seed)
        self.history: HistoryListener | None = None
        # per symbol, the last liquidation level and what it was computed from
        self._liquidations: dict[
            str, tuple[SimPosition, int, Decimal, Decimal, Decimal | None]] = {}
        # per symbol, by id(mark): the books of recent prices and the (mark, spread, tick)
        # each was computed from (Simulator.book)
        self._books: dict[str, dict[int, tuple[Decimal, Decimal, Decimal, BookTicker]]] = {}
        # per symbol: the key of what the quiet band was made of and the band
        # (_quiet_between)
        self._bands: dict[str, tuple[tuple[int, SimPosition | None, int | None,
                                           SymbolRules | None], QuietBand]] = {}

    @property
    def fill_log(self) -> list[Fill]:
        """The fills kept, oldest first. Assign a new list to change it, never change it in
        place: `_disorder` (how many of its neighbours are out of time order) must follow."""
        return self._fill_log

    @fill_log.setter
    def fill_log(self, fills: list[Fill]) -> None:
        self._fill_log = fills
        self._disorder = _disorder(fills)

    def fills(self, symbol: str, since: datetime | None = None) -> list[Fill]:
        """The kept fills of `symbol` at or after `since` (all with None), oldest first.
        While the log is in time order (always, unless a caller passed times that went
        back) the fills before `since` are skipped by bisection, not compared one by one:
        the very same list either way."""
        log = self._fill_log
        if since is not None and self._disorder == 0:
            log = log[bisect_left(log, since, key=_fill_time):]
        return [f for f in log if f.symbol == symbol and (since is None or f.time >= since)]

    def rules_for(self, symbol: str) -> SymbolRules:
        return self._rules.get(symbol) or rules_for(symbol)

    def set_rules(self, rules: SymbolRules) -> None:
        """Change a symbol's filters or status under a running session (the exchange does:
        tick-size changes, delistings); orders are checked against them from now on."""
        self._rules[rules.symbol] = rules

    def mark_price(self, symbol: str) -> Decimal:
        price = self.prices.get(symbol)
        if price is None:
            raise ExchangeError(-2010, f"No market price for {symbol} yet.")
        return price

    def position(self, symbol: str) -> ExchangePosition:
        return self.ledger.exchange_position(symbol, self.prices.get(symbol, ZERO))

    def positions(self) -> list[ExchangePosition]:
        return [self.position(symbol) for symbol in sorted(self.ledger.positions)]

    def balance(self) -> Balance:
        return self.ledger.balance(self.prices, self._reserved_margin())

    def balance_current(self, balance: Balance) -> bool:
        """Whether `balance()` would answer `balance` itself now (a flat account's)."""
        ledger = self.ledger    # (an open position: no, before summing resting orders)
        if ledger.positions:
            return False
        # With no live order `_reserved_margin()` is ZERO itself (its sum starts there and
        # adds nothing): not summed then (a flat account, every replayed candle)
        return ledger.balance_current(balance, self._reserved_margin() if self.orders.live
                                      else ZERO)

    def _margin_shortfall(self, order: Order, price: Decimal, fee_rate: Decimal) -> Decimal:
        if order.reduce_only or order.close_position:
            return ZERO
        shortfall = self.ledger.margin_shortfall(order.symbol, order.side, order.quantity,
                                                 price, fee_rate, self._reserved_margin())
        if shortfall > 0:
            logger.info("sim margin insufficient symbol={} client_id={} shortfall={}",
                        order.symbol, order.client_id, shortfall)
        return shortfall

    # --- execution --------------------------------------------------------------------
    def _execute(self, order: Order, price: Decimal, maker: bool,
                 now: datetime) -> list[SimEvent]:
        """Fill what is left of `order` at `price` (clipped when reduce-only); book money
        and events."""
        held = self.ledger.position(order.symbol)
        quantity = order.quantity - order.filled_qty
        if order.reduce_only or order.close_position:
            sign = held.sign
            if sign == 0 or sign == order.side.sign:
                expired = self._finish(order, EXPIRED, now)
                return [OrderUpdate(expired, None, now)]
            quantity = abs(held.quantity) if order.close_position else min(quantity,
                                                                            abs(held.quantity))
        rate = self.config.maker_fee if maker else self.config.taker_fee
        fee = money(quantity * price * rate)
        realized = self.ledger.apply_fill(order.symbol, order.side, quantity, price, fee)
        self.counters["trade"] += 1
        # by position, in Fill's field order (trade_id, symbol, client_id, side, quantity,
        # price, fee, realized_pnl, time, maker; tests/test_intent_copies.py)
        fill = Fill(str(self.counters["trade"]), order.symbol, order.client_id, order.side,
                    quantity, price, fee, realized, now, maker)
        self._keep_fill(fill)
        total = order.filled_qty + quantity
        average = (order.avg_price * order.filled_qty + price * quantity) / total \
            if total else price
        filled = self._finish(order, FILLED, now, filled_qty=total,
                              avg_price=average)
        logger.debug("sim fill symbol={} client_id={} side={} qty={} price={} fee={} pnl={}",
                     order.symbol, order.client_id, order.side, quantity, price, fee, realized)
        events: list[SimEvent] = [OrderUpdate(filled, fill, now),
                                  self._account_update(order.symbol, "ORDER", now)]
        if self.orders.by_symbol.get(order.symbol):   # (an entry's fill: none resting)
            events += self._expire_orphans(order.symbol, now)
        return events

    def fill_partly(self, symbol: str, client_id: str, quantity: Decimal,
                    now: datetime) -> list[SimEvent]:
        """Part of a resting order fills; the rest stays live as PARTIALLY_FILLED. A LIMIT
        order fills at its price as maker (part of the queue ahead of it traded away), any
        other at the market as taker (a triggered stop meeting too little liquidity)."""
        order = self.orders.open_order(symbol, client_id)
        if order is None:
            return []
        quantity = min(quantity, order.quantity - order.filled_qty)
        maker = order.type is LIMIT and order.price is not None
        price = order.price if maker and order.price is not None \
            else self._taker_price(symbol, order.side, self.mark_price(symbol))
        fee = money(quantity * price * (self.config.maker_fee if maker
                                        else self.config.taker_fee))
        realized = self.ledger.apply_fill(symbol, order.side, quantity, price, fee)
        self.counters["trade"] += 1
        fill = Fill(trade_id=str(self.counters["trade"]), symbol=symbol, client_id=client_id,
                    side=order.side, quantity=quantity, price=price, fee=fee,
                    realized_pnl=realized, time=now, maker=maker)
        self._keep_fill(fill)
        filled = order.filled_qty + quantity
        average = (order.avg_price * order.filled_qty + price * quantity) / filled
        updated = evolve(order, filled_qty=filled, avg_price=average,
                         status=PARTIALLY_FILLED, updated_at=now)
        self.orders.add(updated)
        return [OrderUpdate(updated, fill, now), self._account_update(symbol, "ORDER", now)]

    def _expire_orphans(self, symbol: str, now: datetime) -> list[SimEvent]:
        """Resting reduce-only / closePosition orders whose position is gone expire."""
        sign = self.ledger.position(symbol).sign
        events: list[SimEvent] = []
        for order in self.orders.open_orders(symbol):
            reducing = order.reduce_only or order.close_position
            if reducing and (sign == 0 or sign == order.side.sign):
                events.append(OrderUpdate(self._finish(order, EXPIRED, now),
                                          None, now))
        return events

    def _finish(self, order: Order, status: OrderStatus, now: datetime,
                filled_qty: Decimal | None = None, avg_price: Decimal | None = None) -> Order:
        """`order` in its terminal `status` from `now` (with a fill's `filled_qty` and
        `avg_price`; None: the order's own), recorded as such. Every order ends here: built
        by position, in Order's field order (symbol, client_id, side, type, status,
        quantity, filled_qty, avg_price, price, trigger_price, reduce_only,
        close_position, exchange_id, updated_at; tests/test_intent_copies.py), where
        `evolve` with keywords cost ~8,000 instructions more."""
        final = Order(order.symbol, order.client_id, order.side, order.type, status,
                      order.quantity, order.filled_qty if filled_qty is None else filled_qty,
                      order.avg_price if avg_price is None else avg_price, order.price,
                      order.trigger_price, order.reduce_only, order.close_position,
                      order.exchange_id, now)
        self.orders.close(final)
        if self.history is not None:
            self.history.order_closed(final)
        return final

    def _keep_fill(self, fill: Fill) -> None:
        log = self._fill_log
        if log and fill.time < log[-1].time:
            self._disorder += 1
        log.append(fill)
        if self.history is not None:
            self.history.fill_kept(fill)
        overflow = len(log) - self.config.max_fills_kept
        if overflow > 0:
            self._disorder -= _disorder(log[:overflow + 1])   # the pairs that leave with them
            del log[:overflow]

    def _account_update(self, symbol: str, reason: str, now: datetime) -> AccountUpdate:
        return AccountUpdate([self.position(symbol)], reason, now)

    def _taker_price(self, symbol: str, side: Side, reference: Decimal) -> Decimal:
        cost = spread_for(symbol, self.config.spread) / 2 + self.config.slippage
        return taker_price(side, reference, cost, self.rules_for(symbol).tick_size)

    def _reserved_margin(self) -> Decimal:
        """Initial margin held by resting LIMIT orders that open exposure (what is still to
        fill: a partly filled order's filled part is in its position's margin)."""
        reserved = ZERO   # summed as sum(..., ZERO) would: the same Decimal, digit for digit
        for o in self.orders.live.values():
            if o.type is LIMIT and not o.reduce_only and o.price is not None:
                reserved += (o.quantity - o.filled_qty) * o.price / self.ledger.leverage(o.symbol)
        return reserved

    # --- price moves ------------------------------------------------------------------
    def _sweep(self, symbol: str, end: Decimal, now: datetime, gap: bool,
               start: Decimal | None = None) -> list[SimEvent]:
        """Move the price from `start` (default: the last price) to `end`, firing orders."""
        start = self.prices.get(symbol) if start is None else start
        events: list[SimEvent] = []
        if start is not None:
            while (trigger := self._next_trigger(symbol, start, end)) is not None:
                events += self._fire(trigger, end if gap else trigger.at, now)
        self.prices[symbol] = end
        return events

    def _next_trigger(self, symbol: str, start: Decimal, end: Decimal) -> Trigger | None:
        orders = self.orders.live_of(symbol)
        held = self.ledger.position(symbol)
        if not orders and held.quantity == 0:
            return None
        return next_trigger(symbol, orders, self._liquidation_level(symbol, held), held.sign,
                            start, end)

    def _quiet_between(self, symbol: str, low: Decimal, high: Decimal) -> bool:
        """True when no live order of `symbol` and no liquidation fires anywhere in
        [low, high]: a candle inside that range only moves the price, so its path need not
        be walked. The band (sim_book.QuietBand) depends on the live orders, the position
        and the liquidation level, which comes from the position, the leverage, the rules'
        tick and the maintenance rate (a constant per symbol: sim_rules.MAINTENANCE_RATE).
        It is kept while all of those are what it was made of: the order book's version
        (bumped by every change of a live order), the position (frozen: a change is a new
        object), the leverage set and the rules set for the symbol (None: the defaults,
        which never change). Two equal keys made of other objects reuse it too: the band
        depends on their values only."""
        orders = self.orders
        ledger = self.ledger
        held = ledger.positions.get(symbol)
        key = (orders.version, held, ledger.leverages.get(symbol), self._rules.get(symbol))
        kept = self._bands.get(symbol)
        if kept is None or kept[0] != key:
            position = ledger.position(symbol)
            live = orders.live_of(symbol)
            if not live and position.quantity == 0:
                return True
            band = quiet_band(live, self._liquidation_level(symbol, position), position.sign)
            kept = self._bands[symbol] = (key, band)
        return kept[1].holds(low, high)

    def _liquidation_level(self, symbol: str, held: SimPosition) -> Decimal | None:
        """The liquidation price on the tick (toward the position: a long's rounds up), None
        when flat. Kept until the position, leverage, rate or tick changes."""
        if held.quantity == 0:
            return None
        leverage = self.ledger.leverage(symbol)
        rate = maintenance_rate(symbol)
        tick = self.rules_for(symbol).tick_size
        cached = self._liquidations.get(symbol)
        # the very same Decimals (not equal ones: 0.5 and 0.50 may round to other digits)
        if cached is not None and cached[0] is held and cached[1] == leverage \
                and cached[2] is rate and cached[3] is tick:
            return cached[4]
        liquidation = self.ledger.liquidation_price(symbol, rate)
        level = None if liquidation is None else to_tick(liquidation, tick, up=held.sign > 0)
        self._liquidations[symbol] = (held, leverage, rate, tick, level)
        return level

    def _fire(self, trigger: Trigger, price: Decimal, now: datetime) -> list[SimEvent]:
        symbol = trigger.symbol
        self.prices[symbol] = price
        if trigger.order is None:
            return self._liquidate(symbol, price, now)
        order = trigger.order
        if order.type is LIMIT:
            return self._execute(order, trigger.level, True, now)
        fill_price = self._taker_price(symbol, order.side, price)
        if self._margin_shortfall(order, fill_price, self.config.taker_fee) > 0:
            expired = self._finish(order, EXPIRED, now)   # Binance rejects it
            return [OrderUpdate(expired, None, now)]
        return self._execute(order, fill_price, False, now)

    def _liquidate(self, symbol: str, price: Decimal, now: datetime) -> list[SimEvent]:
        held = self.ledger.position(symbol)
        self.counters["autoclose"] += 1
        self.counters["order"] += 1
        order = Order(symbol=symbol, client_id=f"autoclose-{self.counters['autoclose']}",
                      side=SELL if held.sign > 0 else BUY, type=MARKET,
                      status=NEW, quantity=abs(held.quantity), reduce_only=True,
                      exchange_id=str(self.counters["order"]), updated_at=now)
        logger.warning("sim liquidation symbol={} qty={} entry={} price={}", symbol,
                       held.quantity, held.entry_price, price)
        return [OrderUpdate(order, None, now), *self._execute(order, price, False, now)]

    # --- funding ----------------------------------------------------------------------
    def _fund(self, symbol: str, now: datetime) -> list[SimEvent]:
        if self.ledger.position(symbol).sign == 0:
            return []
        rate = self.funding.rate(symbol, now)
        amount = self.ledger.apply_funding(symbol, rate, self.mark_price(symbol))
        logger.debug("sim funding symbol={} rate={} amount={}", symbol, rate, amount)
        return [FundingApplied(symbol, rate, amount, now),
                self._account_update(symbol, "FUNDING_FEE", now)]

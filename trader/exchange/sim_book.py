"""Bookkeeping of the matching simulator: its orders by client id, its funding rates, and
which resting order (or the liquidation) a price move reaches first."""

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from trader.domain import Order, OrderType
from trader.exchange.sim_path import (
    distance_along,
    funding_times,
    rising_trigger,
    touched,
    traded_through,
)

OrderKey = tuple[str, str]   # (symbol, client id)

# Binance stamps funding a few milliseconds after the hour (e.g. 00:00:00.017).
SCHEDULE_TOLERANCE = timedelta(minutes=1)
LIQUIDATION_RANK = 1 << 62   # after every order at the same level


class OrderBook:
    """Live orders in placement order, plus the most recent terminal ones (bounded)."""

    def __init__(self, max_terminal: int) -> None:
        self.max_terminal = max_terminal
        self.live: dict[OrderKey, Order] = {}
        self.terminal: dict[OrderKey, Order] = {}

    def add(self, order: Order) -> None:
        self.live[(order.symbol, order.client_id)] = order

    def close(self, order: Order) -> None:
        """Record a terminal state; a reused client id replaces the older terminal order."""
        key = (order.symbol, order.client_id)
        self.live.pop(key, None)
        self.terminal.pop(key, None)
        self.terminal[key] = order
        while len(self.terminal) > self.max_terminal:
            del self.terminal[next(iter(self.terminal))]

    def open_order(self, symbol: str, client_id: str) -> Order | None:
        return self.live.get((symbol, client_id))

    def get(self, symbol: str, client_id: str) -> Order | None:
        key = (symbol, client_id)
        return self.live.get(key) or self.terminal.get(key)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.live.values() if symbol is None or o.symbol == symbol]


class FundingBook:
    """Funding rates per symbol (a fixed rate or a historical schedule) and what was paid."""

    def __init__(self, default_rate: Decimal) -> None:
        self.default_rate = default_rate
        self.rates: dict[str, Decimal] = {}
        self.schedules: dict[str, list[tuple[datetime, Decimal]]] = {}
        self.funded_until: dict[str, datetime] = {}
        # each schedule's moments, for bisect (built once per schedule, not once per read)
        self._moments: dict[str, tuple[list[tuple[datetime, Decimal]], list[datetime]]] = {}

    def rate(self, symbol: str, at: datetime | None = None) -> Decimal:
        schedule = self.schedules.get(symbol)
        if schedule and at is not None:
            index = bisect_right(self._moments_of(symbol, schedule), at + SCHEDULE_TOLERANCE)
            if index:
                return schedule[index - 1][1]
        return self.rates.get(symbol, self.default_rate)

    def _moments_of(self, symbol: str, schedule: list[tuple[datetime, Decimal]]) -> list[datetime]:
        cached = self._moments.get(symbol)
        if cached is None or cached[0] is not schedule or len(cached[1]) != len(schedule):
            cached = (schedule, [moment for moment, _ in schedule])
            self._moments[symbol] = cached
        return cached[1]

    def due(self, symbol: str, after: datetime, until: datetime) -> list[datetime]:
        """Funding moments in (after, until] not yet paid; marks them paid."""
        paid = self.funded_until.get(symbol)
        start = max(after, paid) if paid is not None else after
        self.funded_until[symbol] = max(until, paid) if paid is not None else until
        return funding_times(start, until)


@dataclass(frozen=True, slots=True)
class Trigger:
    """A resting order (or, with `order` None, the liquidation) reached by a price move."""
    symbol: str
    level: Decimal      # the order's limit/stop price or the liquidation price
    at: Decimal         # where the continuous move meets it
    order: Order | None


def next_trigger(symbol: str, orders: list[Order], liquidation: Decimal | None,
                 position_sign: int, start: Decimal, end: Decimal) -> Trigger | None:
    """The first order (or liquidation) the move start -> end reaches, or None.

    Levels met earlier along the move come first; at one level, orders in placement
    order, then the liquidation. A stop or take-profit fires when the price reaches its
    level; a resting LIMIT fills only when the price trades through it (sim.py).
    """
    low, high = min(start, end), max(start, end)
    best: tuple[Decimal, int, Trigger] | None = None
    for order in orders:
        level = order.trigger_price if order.type.conditional else order.price
        reached = traded_through if order.type is OrderType.LIMIT else touched
        if level is None or not reached(rising_trigger(order.type, order.side), level, low, high):
            continue
        rank = (distance_along(start, level, low, high), int(order.exchange_id or 0))
        if best is None or rank < best[:2]:
            best = (*rank, Trigger(symbol, level, _meets(level, start, low, high), order))
    if liquidation is not None and touched(position_sign < 0, liquidation, low, high):
        rank = (distance_along(start, liquidation, low, high), LIQUIDATION_RANK)
        if best is None or rank < best[:2]:
            best = (*rank, Trigger(symbol, liquidation, _meets(liquidation, start, low, high),
                                   None))
    return best[2] if best else None


def _meets(level: Decimal, start: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return level if low <= level <= high else start

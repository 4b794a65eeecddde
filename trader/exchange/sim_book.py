"""Bookkeeping of the matching simulator: its orders by client id, its funding rates, and
which resting order (or the liquidation) a price move reaches first."""

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from trader.domain import Order, OrderType
from trader.exchange.sim_path import (
    distance_along,
    funding_period,
    funding_times,
    rising_trigger,
    touched,
    traded_through,
)
from trader.fast_init import fast_init

# Enum members read once, here: a read of `Side.BUY` goes through EnumType.__getattr__
# (Python 3.11: ~850 instructions), a module global is a dict read. The very same objects.
_LIMIT = OrderType.LIMIT

OrderKey = tuple[str, str]   # (symbol, client id)

# Binance stamps funding a few milliseconds after the hour (e.g. 00:00:00.017).
SCHEDULE_TOLERANCE = timedelta(minutes=1)
LIQUIDATION_RANK = 1 << 62   # after every order at the same level
NO_ORDERS: Mapping[str, Order] = MappingProxyType({})


class OrderBook:
    """Live orders in placement order, plus the most recent terminal ones (bounded).

    The live orders are also kept by symbol (same placement order): every candle asks for
    one symbol's, and filtering all of them each time was a hot spot of the backtest."""

    def __init__(self, max_terminal: int) -> None:
        self.max_terminal = max_terminal
        self.live: dict[OrderKey, Order] = {}
        # oldest first. An OrderedDict, not a dict: dropping a dict's oldest key leaves a
        # hole at the front of its entries, which every later next(iter(...)) walks past
        # until the next resize (~865 holes on average at 1,000 kept: ~2 us a close once
        # full); the OrderedDict drops its oldest in O(1), and keeps the very same order
        self.terminal: OrderedDict[OrderKey, Order] = OrderedDict()
        # symbol -> client id -> live order (read only: change it through add and close);
        # empty or absent for a symbol with none
        self.by_symbol: dict[str, dict[str, Order]] = {}
        # bumped by every change of the live orders (`add`, `close`): what was computed from
        # them (the simulator's quiet band) holds while it is the same number
        self.version = 0

    def add(self, order: Order) -> None:
        self.version += 1
        self.live[(order.symbol, order.client_id)] = order
        self.by_symbol.setdefault(order.symbol, {})[order.client_id] = order

    def close(self, order: Order) -> None:
        """Record a terminal state; a reused client id replaces the older terminal order."""
        self.version += 1
        key = (order.symbol, order.client_id)
        self.live.pop(key, None)
        self.by_symbol.get(order.symbol, {}).pop(order.client_id, None)
        self.terminal.pop(key, None)
        self.terminal[key] = order
        while len(self.terminal) > self.max_terminal:
            self.terminal.popitem(last=False)

    def open_order(self, symbol: str, client_id: str) -> Order | None:
        return self.live.get((symbol, client_id))

    def get(self, symbol: str, client_id: str) -> Order | None:
        key = (symbol, client_id)
        return self.live.get(key) or self.terminal.get(key)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is None:
            return list(self.live.values())
        return list(self.live_of(symbol))

    def live_of(self, symbol: str) -> Collection[Order]:
        """The symbol's live orders in placement order, not copied: read it before the
        book changes."""
        return self.by_symbol.get(symbol, NO_ORDERS).values()


class FundingBook:
    """Funding rates per symbol (a fixed rate or a historical schedule) and what was paid.

    Change rates through `set_rate` / `set_schedule` / `restore`: they bump `version`, which
    readers caching a rate (the paper exchange's quote) compare."""

    def __init__(self, default_rate: Decimal) -> None:
        self.default_rate = default_rate
        self.rates: dict[str, Decimal] = {}
        self.schedules: dict[str, list[tuple[datetime, Decimal]]] = {}
        self.funded_until: dict[str, datetime] = {}
        self.version = 0
        # each schedule's moments, for bisect (built once per schedule, not once per read)
        self._moments: dict[str, tuple[list[tuple[datetime, Decimal]], list[datetime]]] = {}
        # per symbol, the funding period (previous moment, next moment) funded_until was in
        # at the last `due`: while a candle ends before the next moment nothing is due
        self._periods: dict[str, tuple[datetime, datetime]] = {}

    def set_rate(self, symbol: str, rate: Decimal) -> None:
        self.rates[symbol] = rate
        self.version += 1

    def set_schedule(self, symbol: str, schedule: list[tuple[datetime, Decimal]]) -> None:
        self.schedules[symbol] = schedule
        self.version += 1

    def restore(self, rates: dict[str, Decimal],
                schedules: dict[str, list[tuple[datetime, Decimal]]],
                funded_until: dict[str, datetime]) -> None:
        self.rates, self.schedules, self.funded_until = rates, schedules, funded_until
        self.version += 1

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
        if paid is None:
            self.funded_until[symbol] = until
            return funding_times(after, until)
        # max(until, paid), without the builtin call: max gives the later, `until` when equal
        self.funded_until[symbol] = paid if paid > until else until
        period = self._periods.get(symbol)
        if period is None or not period[0] <= paid < period[1]:
            period = funding_period(paid)
            self._periods[symbol] = period
        if until < period[1]:   # the first moment after max(after, paid) is >= period[1]
            return []
        return funding_times(max(after, paid), until)


@dataclass(frozen=True, slots=True)
class Trigger:
    """A resting order (or, with `order` None, the liquidation) reached by a price move."""
    symbol: str
    level: Decimal      # the order's limit/stop price or the liquidation price
    at: Decimal         # where the continuous move meets it
    order: Order | None


def next_trigger(symbol: str, orders: Iterable[Order], liquidation: Decimal | None,
                 position_sign: int, start: Decimal, end: Decimal) -> Trigger | None:
    """The first order (or liquidation) the move start -> end reaches, or None.

    Levels met earlier along the move come first; at one level, orders in placement
    order, then the liquidation. A stop or take-profit fires when the price reaches its
    level; a resting LIMIT fills only when the price trades through it (sim.py).
    """
    low, high = min(start, end), max(start, end)
    best: tuple[Decimal, int, Trigger] | None = None
    for order in orders:
        level = reached_level(order, low, high)
        if level is None:
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


def reached_level(order: Order, low: Decimal, high: Decimal) -> Decimal | None:
    """The order's limit/stop level when a move spanning [low, high] reaches it (a stop or
    take-profit at its level, a LIMIT only through it), else None."""
    level = order.trigger_price if order.type.conditional else order.price
    if level is None:
        return None
    reached = traded_through if order.type is _LIMIT else touched
    return level if reached(rising_trigger(order.type, order.side), level, low, high) else None


@fast_init          # one per book change in the simulator
@dataclass(frozen=True, slots=True)
class QuietBand:
    """What a move may span without reaching any of some orders or a liquidation: the
    highest falling and the lowest rising level, each split by how it is reached (a stop,
    take-profit or the liquidation at a touch, a LIMIT only through it; sim.py). None: no
    such level. A move spanning [low, high] reaches nothing exactly when `holds(low,
    high)`: each reach test only compares `low` or `high` with a level, so none of them
    passes when the nearest level of its kind is out of reach."""
    touch_floor: Decimal | None        # reached when low <= it
    through_floor: Decimal | None      # reached when low < it
    touch_ceiling: Decimal | None      # reached when high >= it
    through_ceiling: Decimal | None    # reached when high > it

    def holds(self, low: Decimal, high: Decimal) -> bool:
        return (self.touch_floor is None or low > self.touch_floor) \
            and (self.through_floor is None or low >= self.through_floor) \
            and (self.touch_ceiling is None or high < self.touch_ceiling) \
            and (self.through_ceiling is None or high <= self.through_ceiling)


def quiet_band(orders: Iterable[Order], liquidation: Decimal | None,
               position_sign: int) -> QuietBand:
    """The band of `orders` and the liquidation (a short's is reached rising, a long's
    falling, at a touch), as `reached_level` and `next_trigger` reach them."""
    floors: tuple[list[Decimal], list[Decimal]] = ([], [])       # (touch, through)
    ceilings: tuple[list[Decimal], list[Decimal]] = ([], [])
    for order in orders:
        level = order.trigger_price if order.type.conditional else order.price
        if level is None:
            continue
        side = ceilings if rising_trigger(order.type, order.side) else floors
        side[order.type is _LIMIT].append(level)
    if liquidation is not None:
        (ceilings if position_sign < 0 else floors)[0].append(liquidation)
    return QuietBand(max(floors[0], default=None), max(floors[1], default=None),
                     min(ceilings[0], default=None), min(ceilings[1], default=None))


def _meets(level: Decimal, start: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return level if low <= level <= high else start

"""A simulated Binance for driving `trader.lifecycle.step` directly (test-only, pure: no
I/O, no clock, no event loop).

`SimExchange` holds what the exchange holds for one symbol: our position's size and every
order it can still tell about, by client id. It answers requests the way the USD-M
futures documentation says Binance does; its `mood` decides how the next requests fare:
- a placement is refused with -2019 "Margin is insufficient." (NO_MARGIN), refused with
  -2021 "Order would immediately trigger." when its trigger is already behind the mark, or
  its answer is lost (timeout) after it landed (LOST_PLACED) or before (LOST_UNPLACED);
  error codes: https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code
- a cancel of an order that is already gone is -2011 "Unknown order sent." (a no-op, then
  the read-back finds what there is); in the RACE mood a fill beats the cancel;
- a query by client id finds an order, or nothing: Binance forgets CANCELED / EXPIRED
  conditional orders without fills after 3 days (.../trade/rest-api/Query-Algo-Order),
  which is how an order can vanish without a final status reaching us;
- conditional orders trigger when the mark crosses them; a reduce-only order never opens
  or flips a position: with nothing left to close it expires (ALGO_UPDATE EXPIRED,
  .../user-data-streams/Event-Algo-Order-Update); a MARKET close fills at most the
  position, and only half of it in the THIN mood (the rest expires);
- in the DOWN mood nothing answers: reads fail (-1001, after the error policy's retries)
  and every send's answer is lost.

`tests/machine_driver.py` plays the engine around it and drives `step` through it.
"""

from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from trader.domain import (
    ZERO,
    ClientId,
    ExchangePosition,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.symbol_rules import SymbolRules

SYMBOL = "BTCUSDT"
RULES = SymbolRules(SYMBOL, tick_size=Decimal("0.1"), step_size=Decimal("0.001"),
                    min_qty=Decimal("0.001"), min_notional=Decimal("100"))
ENTRY = Decimal("50000")
FULL = Decimal("0.010")
TP1_PART = Decimal("0.005")     # the two-TP plan's TP1 part of FULL
LEG_TYPES = {OrderRole.STOP_LOSS: OrderType.STOP_MARKET,
             OrderRole.TAKE_PROFIT: OrderType.TAKE_PROFIT_MARKET,
             OrderRole.TAKE_PROFIT_1: OrderType.TAKE_PROFIT_MARKET}


class Mood(StrEnum):
    CALM = "calm"                      # every request does what it asks
    NO_MARGIN = "no_margin"            # placements refused: -2019
    LOST_PLACED = "lost_placed"        # a placement lands, its answer is lost
    LOST_UNPLACED = "lost_unplaced"    # a placement never lands, its answer is lost
    RACE = "race"                      # a fill beats the cancel
    THIN = "thin"                      # a market close fills half, the rest expires
    DOWN = "down"                      # nothing answers: reads fail, sends are lost


class ExchangeDown(Exception):
    """-1001 "Internal error; unable to process your request", after the policy's retries."""


class Placement(StrEnum):
    PLACED = "placed"
    REFUSED = "refused"                # -2019
    PASSED = "passed"                  # -2021, still so after the policy's one retry
    LOST = "lost"                      # timeout: landed or not, nobody knows


@dataclass
class SimExchange:
    side: Side
    mark: Decimal
    entry_id: str
    entry_price: Decimal
    size: Decimal = ZERO                        # our side's position, unsigned
    mood: Mood = Mood.CALM
    orders: dict[str, Order] = field(default_factory=dict)   # what a query can find
    hidden_once: set[str] = field(default_factory=set)       # left out of one snapshot
    pushed: list[Order] = field(default_factory=list)        # user-data stream updates
    requests: list[str] = field(default_factory=list)        # accepted client ids, in order

    # --- reading -------------------------------------------------------------------------
    def position(self) -> ExchangePosition:
        return ExchangePosition(SYMBOL, self.size * self.side.sign,
                                self.entry_price if self.size else ZERO, self.mark)

    def read_position(self) -> ExchangePosition:
        """GET positionRisk."""
        self._answer()
        return self.position()

    def open_orders(self) -> list[Order]:
        """GET openOrders + openAlgoOrders; a glitching listing leaves an order out once."""
        self._answer()
        listed = [o for o in self.orders.values()
                  if o.status.live and o.client_id not in self.hidden_once]
        self.hidden_once.clear()
        return listed

    def query(self, client_id: str) -> Order | None:
        self._answer()
        return self.orders.get(client_id)

    def _answer(self) -> None:
        if self.mood is Mood.DOWN:
            raise ExchangeDown(self.mood)

    def live_legs(self, role: OrderRole, *, ours: bool = True) -> list[Order]:
        """The live protective orders of one role: ours, or ours and anybody's of its type
        (a take-profit placed by hand has no role: it counts for TP1 and TP2 alike)."""
        return [o for o in self.orders.values()
                if o.status.live and o.type is LEG_TYPES[role]
                and (o.role is role or not ours and ClientId.parse(o.client_id) is None)]

    def live_of_type(self, role: OrderRole) -> list[Order]:
        """Every live order of the role's order type: ours of any role, and anybody's."""
        return [o for o in self.orders.values()
                if o.status.live and o.type is LEG_TYPES[role]]

    def covers(self, order: Order) -> Decimal:
        """What a live order still closes (a closePosition order: whatever is open)."""
        return self.size if order.close_position else order.quantity - order.filled_qty

    # --- requests ------------------------------------------------------------------------
    def place(self, role: OrderRole, client_id: str, trigger: Decimal,
              quantity: Decimal) -> Placement:
        """POST /fapi/v1/algoOrder: a reduce-only STOP_MARKET / TAKE_PROFIT_MARKET."""
        if self.mood is Mood.NO_MARGIN:
            return Placement.REFUSED
        if self.would_trigger(role, trigger):
            return Placement.PASSED
        if self.mood in (Mood.LOST_UNPLACED, Mood.DOWN):
            return Placement.LOST
        self.orders[client_id] = Order(SYMBOL, client_id, self.side.opposite, LEG_TYPES[role],
                                       OrderStatus.NEW, quantity, trigger_price=trigger,
                                       reduce_only=True)
        self.requests.append(client_id)
        return Placement.LOST if self.mood is Mood.LOST_PLACED else Placement.PLACED

    def would_trigger(self, role: OrderRole, trigger: Decimal) -> bool:
        """A long's stop fires at or below its trigger, its take-profit at or above."""
        below = role is OrderRole.STOP_LOSS
        if self.side is Side.SELL:
            below = not below
        return self.mark <= trigger if below else self.mark >= trigger

    def cancel(self, client_id: str) -> Order | None:
        """DELETE, then read back: CANCELED, or FILLED when a fill raced it; None if the
        exchange knows no such order (-2011, then the query finds nothing)."""
        self._answer()
        order = self.orders.get(client_id)
        if order is not None and order.status.live:
            if self.mood is Mood.RACE and order.type in LEG_TYPES.values():
                self.fill(client_id, self.covers(order), push=False)
            else:
                self.orders[client_id] = replace(order, status=OrderStatus.CANCELED)
        return self.orders.get(client_id)

    def market_close(self, quantity: Decimal) -> Decimal:
        """A reduce-only MARKET order; returns what it filled."""
        self._answer()
        filled = min(quantity, self.size)
        if self.mood is Mood.THIN:
            filled = RULES.round_qty(filled / 2)
        self.reduce_by_hand(filled)
        return filled

    # --- what happens on the exchange by itself ------------------------------------------
    def fill_entry(self, quantity: Decimal) -> None:
        entry = self.orders[self.entry_id]
        if not entry.status.live:
            return
        part = min(quantity, entry.quantity - entry.filled_qty)
        filled = entry.filled_qty + part
        status = OrderStatus.FILLED if filled == entry.quantity else OrderStatus.PARTIALLY_FILLED
        self.size += part
        self._push(replace(entry, filled_qty=filled, status=status, avg_price=self.entry_price))

    def expire_entry(self) -> None:
        entry = self.orders[self.entry_id]
        if entry.status.live:
            self._push(replace(entry, status=OrderStatus.EXPIRED))

    def fill(self, client_id: str, quantity: Decimal, *, rest_expires: bool = False,
             push: bool = True) -> None:
        """A protective order fills `quantity` (reduce-only: at most the position)."""
        order = self.orders[client_id]
        part = min(quantity, self.covers(order))
        filled = order.filled_qty + part
        self.reduce_by_hand(part)
        if filled == order.quantity or order.close_position and part > 0:
            status = OrderStatus.FILLED
        elif rest_expires or part == 0 or self.size == 0:
            status = OrderStatus.EXPIRED
        else:
            status = OrderStatus.PARTIALLY_FILLED
        updated = replace(order, filled_qty=filled, status=status,
                          avg_price=order.trigger_price or ZERO)
        if push:
            self._push(updated)
        else:
            self.orders[client_id] = updated

    def move_mark(self, mark: Decimal) -> None:
        """The mark moves; every live conditional order it crosses fires."""
        self.mark = mark
        for order in list(self.orders.values()):
            role = order.role
            if order.status.live and role in LEG_TYPES and order.trigger_price is not None \
                    and self.would_trigger(role, order.trigger_price):
                self.fill(order.client_id, self.covers(order))

    def cancel_by_hand(self, client_id: str, *, traceless: bool,
                       status: OrderStatus = OrderStatus.CANCELED) -> None:
        """The operator cancels (or the exchange expires) an order. Traceless: no final
        status ever reaches us and a query finds nothing."""
        order = self.orders.get(client_id)
        if order is None or not order.status.live:
            return
        if traceless:
            del self.orders[client_id]
        else:
            self._push(replace(order, status=status))

    def place_by_hand(self, role: OrderRole, client_id: str, trigger: Decimal) -> None:
        """The operator sets a stop / take-profit in the Binance app: closePosition, no
        quantity, a client id that is not ours."""
        if self.size > 0 and not self.would_trigger(role, trigger):
            self._push(Order(SYMBOL, client_id, self.side.opposite, LEG_TYPES[role],
                             OrderStatus.NEW, ZERO, trigger_price=trigger, close_position=True))

    def reduce_by_hand(self, quantity: Decimal) -> None:
        """Any reduction: a MARKET reduce placed in the Binance app, the liquidation
        engine, a leg's or a market close's fill. Our MARKET entry has long finished by
        then: whatever it did not fill expires."""
        self.size -= min(quantity, self.size)
        if quantity > 0:
            self.expire_entry()

    def _push(self, order: Order) -> None:
        self.orders[order.client_id] = order
        self.pushed.append(order)


# --- stories: what happens on the exchange between the engine's ticks --------------------

def mark_at(side: Side, points: int) -> Decimal:
    """The mark `points` basis points from the entry, in the position's favour if > 0."""
    return RULES.round_price(ENTRY * (1 + Decimal(side.sign * points) / 10000), up=False)


def new_exchange(side: Side, entry_id: str) -> SimExchange:
    """Our MARKET entry of 0.010 at 50000 is in, nothing filled yet."""
    exchange = SimExchange(side, ENTRY, entry_id, ENTRY)
    exchange.orders[entry_id] = Order(SYMBOL, entry_id, side, OrderType.MARKET,
                                      OrderStatus.NEW, FULL)
    return exchange


def happen(exchange: SimExchange, what: tuple, leg_orders: dict[OrderRole, str]) -> None:
    """One thing happening on the exchange, e.g. ("hand_cancel", STOP_LOSS, confirmed).
    Leg happenings hit the leg's own order (`leg_orders`) if it is live, else any of ours."""
    kind, *args = what
    if kind == "price":
        exchange.move_mark(mark_at(exchange.side, args[0]))
    elif kind == "entry_fill":
        exchange.fill_entry(Decimal(args[0]))
    elif kind == "entry_expire":
        exchange.expire_entry()
    elif kind == "mood":
        exchange.mood = Mood(args[0])
    elif kind in ("hand_close", "liquidation"):
        exchange.reduce_by_hand(exchange.size)
    elif kind == "hand_reduce":
        exchange.reduce_by_hand(Decimal(args[0]))
    elif kind == "hand_stop":        # near our planned levels: -1 % / +2 %
        points = (-100 if args[0] is OrderRole.STOP_LOSS else 200) + args[1]
        exchange.place_by_hand(args[0], f"web_{len(exchange.orders)}",
                               mark_at(exchange.side, points))
    else:
        _happen_to_leg(exchange, kind, args, leg_orders.get(args[0]))


def _happen_to_leg(exchange: SimExchange, kind: str, args: list, preferred: str | None) -> None:
    live = [o.client_id for o in exchange.live_legs(args[0])]
    client_id = preferred if preferred in live else (live[0] if live else None)
    if client_id is None:
        return
    if kind == "leg_fill":
        order = exchange.orders[client_id]
        part = order.quantity - order.filled_qty if args[1] == "all" else Decimal(args[1])
        exchange.fill(client_id, part, rest_expires=args[2])
    elif kind == "hand_cancel":
        exchange.cancel_by_hand(client_id, traceless=not args[1])
    elif kind == "expire":
        exchange.cancel_by_hand(client_id, traceless=False, status=OrderStatus.EXPIRED)
    elif kind == "glitch":
        exchange.hidden_once.add(client_id)

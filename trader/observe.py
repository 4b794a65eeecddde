"""From what the exchange says to events for the state machine, pure.

`observe(position, view)` compares the agent's record of one position with the exchange's
view of its symbol (the exchange position and what the order tracker knows) and returns
the events, terminal detection first: if the exchange holds no position (or the opposite
side) the only event is PositionGone, nothing else runs for that symbol in that tick.

The two-TP plan's take-profits fill without closing the position (TP1 always, TP2 when it
fills first): such a fill is reported once the exchange's position shows it too (the stream's order and account updates
can arrive in either order), so that the smaller size and the fill are stepped in the same
observation and the stop is moved once (trader/protection.py).
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from trader.domain import ClientId, ExchangePosition, Order, OrderRole, OrderStatus, OrderType
from trader.events import (
    EntryFilled,
    Event,
    LegFilled,
    LegGone,
    LegPlaced,
    LegRejected,
    LegSeen,
    PositionGone,
    PositionSizeChanged,
)
from trader.evolve import evolve
from trader.fast_init import fast_init
from trader.order_tracker import TrackedOrder
from trader.position import ExitPlan, Leg, LegStatus, Position, PositionState

LEG_TYPES = {OrderRole.STOP_LOSS: OrderType.STOP_MARKET,
             OrderRole.TAKE_PROFIT: OrderType.TAKE_PROFIT_MARKET,
             OrderRole.TAKE_PROFIT_1: OrderType.TAKE_PROFIT_MARKET}
# How long a TP1 fill waits for the exchange's position to show it before it is reported
# anyway (the account update of the same trade normally follows within milliseconds).
FILL_REPORT_LAG = timedelta(seconds=10)
# Read for every leg on every tick: module names, not enum members through their class
# (~0.1 us each).
FILLED, LIVE, ENTERING = OrderStatus.FILLED, LegStatus.LIVE, PositionState.ENTERING
MARKET = OrderType.MARKET


@fast_init
@dataclass(frozen=True, slots=True)
class SymbolView:
    """The exchange's side of one symbol at one moment."""
    symbol: str
    at: datetime
    position: ExchangePosition
    orders: Mapping[str, TrackedOrder]   # what the tracker knows, by client id
    live: list[Order]                  # every live order on the symbol (ours and anybody's)
    mark: Decimal


def observe(position: Position, view: SymbolView) -> list[Event]:
    """The events that bring `position` up to date with `view` (terminal detection first)."""
    exchange = view.position
    if position.state is ENTERING:
        if exchange.side is position.side and exchange.size > 0:
            return [EntryFilled(exchange.size, exchange.entry_price)]
        return []
    if not position.state.open:
        return []
    if exchange.side is not position.side:
        return [PositionGone()]
    events: list[Event] = []
    if exchange.size != position.quantity:
        events.append(PositionSizeChanged(exchange.size, exchange.entry_price))
    legs = position.legs
    held = [leg.order.client_id for leg in legs if leg.order is not None]
    # Live orders no leg holds (most ticks: none, and nothing more to look at for them).
    others = [order for order in view.live if order.client_id not in held]
    for leg in legs:
        events += _leg_events(position, leg, view, others)
    return events


def steady(position: Position, view: SymbolView) -> bool:
    """For a `protection.settled` position (the caller asks that first): `observe(position,
    view)` would give only LegSeen events that `protection.confirms` skips, so the engine
    need not build them. Most ticks of a trade. Why, along `observe` and `_leg_events`:

    - settled means PROTECTED (open, not ENTERING) and every leg holds an order, live, for
      what it should close, at its plan, with nothing pending or superseded: so for each
      leg `_leg_events` neither looks at `superseded` nor `pending` nor a covering leg;
    - the exchange's side and size are the record's: no PositionGone, no size change;
    - every live order is one a leg holds (`others` is empty): no newer order of ours;
    - each leg's order is tracked, not absent, neither filled nor ended, and of the leg's
      side and type (the branches that say LegGone or LegFilled, or wait on a fill; a
      triggered stop's MARKET child is observed in full too); what it still closes (capped at
      the leg's order unless it closes the position) is the leg's order quantity (no
      partial fill), and its trigger (the leg's when the exchange shows none) the leg's
      order's: the one event left is LegSeen(role, the leg's client id, that trigger,
      that quantity), which `confirms` skips (no `replaces`, the recorded id, trigger
      and quantity). Anything else: False, and the caller observes in full."""
    exchange = view.position
    if exchange.side is not position.side or exchange.size != position.quantity:
        return False
    legs = position.legs
    orders = view.orders
    quantity = position.quantity
    exit_side = position.side.opposite
    held = []
    for leg in legs:
        order = leg.order
        if order is None:
            return False          # not settled: the caller's check was skipped
        client_id = order.client_id
        held.append(client_id)
        tracked = orders.get(client_id)
        if tracked is None or tracked.absent_since is not None:
            return False
        known = tracked.order
        if known.status.terminal or known.side is not exit_side \
                or known.type is not LEG_TYPES[leg.role]:
            return False
        remaining = known.closes(quantity)
        if not known.close_position and remaining > order.quantity:
            remaining = order.quantity
        if remaining != order.quantity \
                or (known.trigger_price or leg.trigger_price) != order.trigger_price:
            return False
    for live in view.live:
        if live.client_id not in held:
            return False
    return True


def _leg_events(position: Position, leg: Leg, view: SymbolView,
                others: list[Order]) -> list[Event]:
    if leg.superseded:
        # A stop's lost placements that its backups stand in for (trader/stop_backup.py):
        # what is known of them first, oldest first, so that of those found live the first
        # stepped is the one kept (the others are extra then).
        superseded = [event for client_id in leg.superseded
                      for event in _pending_events(position, leg, view,
                                                   view.orders.get(client_id))]
        if superseded:
            return superseded + _leg_events(position, evolve(leg, superseded=()), view,
                                              others)
    if leg.pending is not None:
        events = _pending_events(position, leg, view, view.orders.get(leg.pending))
        if others and events and type(events[0]) is LegRejected:
            # The placement awaited ended unfilled, and a later one of ours is live: the
            # record missed it (a replacement, an operator's /sl, placed while nothing could
            # be written): it is the last decision, never retried over at the older level.
            newer = _newer_of_ours(position, leg, leg.pending, others, view.at)
            if newer is not None:
                return [newer]
        return events
    order = leg.order
    if order is None:
        foreign = covering_leg(position, leg, view.live, view.at)
        return [foreign] if foreign is not None else []
    if others:
        newer = _newer_of_ours(position, leg, order.client_id, others, view.at)
        if newer is not None:
            return [newer]
    tracked = view.orders.get(order.client_id)
    if tracked is None or tracked.absent_since is not None:
        # Not among the live orders (the view always follows a snapshot, or a tracker kept
        # exact by the stream since one): gone, or the listing lagged. Probe, then debounce.
        return [LegGone(leg.role, order.client_id, confirmed=False)]
    holder = _held_by_another(position, leg, tracked.order)
    if holder:
        # Ours is not open: Binance checks a client id against open orders only, so an
        # order placed under it (by hand, once ours was cancelled) is somebody else's, and
        # so is its fill.
        return [LegGone(leg.role, order.client_id, confirmed=True, status=holder)]
    status = tracked.order.status
    if status is FILLED:
        if _fill_not_shown(position, leg, view, tracked, order.quantity):
            return []
        if _filled_yet_held(leg, view, tracked):
            return [LegGone(leg.role, order.client_id, confirmed=True, status=status.value)]
        return [LegFilled(leg.role, order.client_id, order.quantity, complete=True)]
    if status.terminal:
        # Ours is gone for sure: a stop placed by hand in its place is taken over, not fought.
        foreign = covering_leg(position, leg, view.live, view.at)
        if foreign is not None:
            return [replace(foreign, replaces=order.client_id)]
        return [LegGone(leg.role, order.client_id, confirmed=True, status=status.value,
                        reason=tracked.order.reason)]
    remaining = _remaining(tracked, position.quantity)
    if not tracked.order.close_position:
        # A leg sent rounded up onto the step grid covers the part it was placed for
        # (trader/market_exit.py `covering_quantity`), not more.
        remaining = min(remaining, order.quantity)
    if remaining < order.quantity and order.status is LIVE:
        return [LegFilled(leg.role, order.client_id, order.quantity - remaining, complete=False)]
    return [LegSeen(leg.role, order.client_id, tracked.order.trigger_price or leg.trigger_price,
                    remaining)]


def _held_by_another(position: Position, leg: Leg, order: Order) -> str:
    """"held by a BUY LIMIT" when the order known under the leg's client id cannot be the
    leg's (another side, or a type that is neither the leg's nor MARKET, which a triggered
    conditional order's child could be reported as); "" when it can."""
    if order.side is position.side.opposite and order.type in (LEG_TYPES[leg.role], MARKET):
        return ""
    return f"held by a {order.side.value} {order.type.value}"


def _newer_of_ours(position: Position, leg: Leg, current: str, others: list[Order],
                   at: datetime) -> LegSeen | None:
    """The newest live order of this position's own for the leg's role, when it is newer
    than the leg's order (a higher sequence number) and no placement is awaited: the
    record missed it (placed while nothing could be written, then a restart on that
    database). It is the last decision taken (an operator's /sl, breakeven, trailing): it
    takes the leg over (`replaces`), its trigger the plan; the older order is then one the
    leg does not want (the sweep cancels it). None when the leg's order is the newest."""
    held = ClientId.parse(current)
    if held is None:
        return None                    # a hand-placed order holds the leg: never fought
    newest: Order | None = None
    newest_seq = held.seq
    for order in others:
        parsed = ClientId.parse(order.client_id)
        if (parsed is not None and parsed.seq > newest_seq and parsed.role is leg.role
                and parsed.position_key == position.key and parsed.symbol == position.symbol
                and order.type is LEG_TYPES[leg.role] and order.trigger_price is not None):
            newest, newest_seq = order, parsed.seq
    if newest is None or newest.trigger_price is None:
        return None
    covered = _remaining(TrackedOrder(newest, at), position.quantity)
    return LegSeen(leg.role, newest.client_id, newest.trigger_price, covered, replaces=current)


def _fill_not_shown(position: Position, leg: Leg, view: SymbolView, tracked: TrackedOrder,
                    filled: Decimal) -> bool:
    """A take-profit of the two-TP plan filled but the exchange's position still holds its
    part (for a little while)."""
    return (position.exit_plan is ExitPlan.TWO and leg.role is not OrderRole.STOP_LOSS
            and view.position.size > position.quantity - filled
            and view.at - tracked.learned_at < FILL_REPORT_LAG)


def _filled_yet_held(leg: Leg, view: SymbolView, tracked: TrackedOrder) -> bool:
    """The leg's order filled all it was for, and long after its report the exchange still
    holds the position: no position report is late, the position grew while the order
    filled (an entry's last fills landing as the price reached the stop), so the rest is
    unprotected. Its LegFilled waits for a PositionGone that never comes; it is a leg gone
    (replaced now). TP1 of the two-TP plan leaves the rest open by design."""
    return (leg.role is not OrderRole.TAKE_PROFIT_1 and view.position.size > 0
            and view.at - tracked.learned_at >= FILL_REPORT_LAG)


def _pending_events(position: Position, leg: Leg, view: SymbolView,
                    tracked: TrackedOrder | None) -> list[Event]:
    if tracked is None or tracked.absent_since is not None:
        return []                      # not known yet: the tick's probe decides
    order = tracked.order
    holder = _held_by_another(position, leg, order)
    if holder:                         # not the order sent: placed again under the next id
        return [LegRejected(leg.role, order.client_id, f"its client id is {holder}")]
    if order.status.live:
        return [LegPlaced(leg.role, order.client_id, order.trigger_price or leg.trigger_price,
                          order.closes(position.quantity))]
    if order.status is FILLED:
        # Placed and filled before its answer was known (a TP1 fills without closing the
        # position): a fill, never a refusal to place again; reported as a live leg's fill is.
        if _fill_not_shown(position, leg, view, tracked, order.filled_qty):
            return []
        return [LegFilled(leg.role, order.client_id, order.filled_qty, complete=True)]
    return [LegRejected(leg.role, order.client_id, f"order {order.status.value}")]


def covering_leg(position: Position, leg: Leg, live: list[Order],
                 at: datetime) -> LegSeen | None:
    """A live closing stop / take-profit that covers what the leg should close but is not on
    the record: one of this position's own orders for that role whose record was lost
    (placed, then the agent died before saving it: taken back, never sent again), else one
    placed by somebody else (the app, by hand: adopted instead of placing a second one; as
    the stop or the take-profit at the target, never as TP1)."""
    wanted = LEG_TYPES[leg.role]
    part = position.leg_quantity(leg.role)
    if part <= 0 or not position.has_leg(leg.role):
        return None
    candidates = [o for o in live if o.type is wanted and o.side is position.side.opposite
                  and (o.reduce_only or o.close_position) and o.trigger_price is not None
                  and _unrecorded(position, leg, o.client_id)]
    candidates.sort(key=_ours_newest_first)
    for order in candidates:
        covered = _remaining(TrackedOrder(order, at), position.quantity)
        if covered >= part and order.trigger_price is not None:
            return LegSeen(leg.role, order.client_id, order.trigger_price, covered)
    return None


def _ours_newest_first(order: Order) -> tuple[bool, int]:
    """Ours before anybody else's; of ours, the highest sequence number (the last decision)."""
    parsed = ClientId.parse(order.client_id)
    return (True, 0) if parsed is None else (False, -parsed.seq)


def _unrecorded(position: Position, leg: Leg, client_id: str) -> bool:
    """Somebody else's order, or this position's own for the leg's role (not its current)."""
    parsed = ClientId.parse(client_id)
    if parsed is None:
        return leg.role is not OrderRole.TAKE_PROFIT_1
    current = leg.order.client_id if leg.order is not None else None
    return position.owns(client_id) and parsed.role is leg.role and client_id != current


def _remaining(tracked: TrackedOrder, position_quantity: Decimal) -> Decimal:
    """What an order still closes; a closePosition order closes whatever is open."""
    return tracked.order.closes(position_quantity)

"""Exchange truth at boot and periodically, pure helpers: which position key the exchange
holds (recovered from our own orders or fills), and the record of a position the database
does not know (adopted: protected before anything else happens).

Boot (trader/startup.py `boot`, works on an empty database, e.g. a wiped disk):
  1. snapshot every symbol over REST (positions, open orders) into the order tracker
  2. journal every recent fill on the managed symbols (idempotent)
  3. resolve PENDING/SENT intents by client id
  4. records whose position is gone are finalized (the reason their orders tell)
  5. positions without a record are adopted, their key recovered from our orders or fills
     so ids stay deterministic; our live legs are adopted too (nothing is sent twice); our
     own keeps the exit plan and the progress its orders and fills show, and a market
     close it had begun goes on (CLOSING: `close_unfinished`)
  6. every open position is protected, and our orphan orders cancelled, before any entry
  7. what differed is reported: INFO when only the agent's own position was picked up
     again, RECONCILE_MISMATCH when the exchange held something the agent did not know
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from trader.domain import (
    ZERO,
    ClientId,
    CloseReason,
    Fill,
    Order,
    OrderRole,
    Side,
    exchange_close_reason,
    key_time,
    position_key,
)
from trader.management import breakeven_price, first_target_filled, tighter_stop
from trader.observe import LEG_TYPES, SymbolView
from trader.position import ExitPlan, Leg, LegOrder, Position, PositionState
from trader.position_fills import fills_of
from trader.risk import clamp_stop_pct
from trader.symbol_rules import SymbolRules

FILL_LOOKBACK = timedelta(days=2)
ADOPT_SL_PCT = Decimal("0.01")
ADOPT_TP_PCT = Decimal("0.015")


def recover_key(symbol: str, our_orders: list[Order], fills: list[Fill],
                side: Side | None = None) -> tuple[str | None, dict[str, int]]:
    """The position key our live orders (or the latest entry fill) name, and the highest
    sequence number used per role, so new client ids never repeat old ones. A key from
    the fills alone names the exchange's position (on `side`) only while that trade is
    not finished: a trade whose own exits closed its entries, or whose entry was on the
    other side, is over, and the position is somebody else's (None)."""
    seq: dict[str, int] = {}
    key = None
    for order in our_orders:
        parsed = ClientId.parse(order.client_id)
        if parsed and parsed.symbol == symbol:
            key = key or parsed.position_key
            if parsed.position_key == key:
                seq[parsed.role.value] = max(seq.get(parsed.role.value, 0), parsed.seq)
    if key is None:
        for fill in reversed(fills):
            parsed = ClientId.parse(fill.client_id)
            if parsed and parsed.role is OrderRole.ENTRY and parsed.symbol == symbol:
                if _finished(parsed.position_key, fill.side, side, fills):
                    return None, {}
                key = parsed.position_key
                seq[OrderRole.ENTRY.value] = parsed.seq
                break
    return key, seq


def _finished(key: str, entry_side: Side, side: Side | None, fills: list[Fill]) -> bool:
    """Whether the trade `key` (entered on `entry_side`) is over by its fills: the exits
    with its own client ids closed at least what its entries opened, or the position now
    held is on the other side. A close by hand or by the exchange carries no id of the
    key's, so such a trade is not seen as over here (the database's record tells)."""
    if side is not None and side is not entry_side:
        return True
    opened = closed = Decimal(0)
    for fill in fills:
        parsed = ClientId.parse(fill.client_id)
        if parsed is None or parsed.position_key != key:
            continue
        if fill.side is entry_side:
            opened += fill.quantity
        else:
            closed += fill.quantity
    return closed >= opened > 0


def adopted_position(view: SymbolView, rules: SymbolRules, now: datetime, *, key: str | None,
                     seq: dict[str, int], known: Position | None, leverage: int,
                     time_limit: timedelta, cooldown: timedelta, fills: Sequence[Fill] = (),
                     taker_fee: Decimal = ZERO, last_stop: Decimal | None = None,
                     risk_budget: Decimal | None = None) -> Position:
    """The record of a position the database does not know (or knew under this key): its
    size from the exchange, its legs from our live orders, else planned around the mark
    (1 % stop, 1.5 % take-profit, rounded away from the mark). A known one keeps its plan
    (TP1 included). One of ours the database did not know (`key`: a wiped disk) gets the
    plan and the progress its orders and fills show (`_progress_shown`: `fills` are the
    journaled ones, `taker_fee` prices breakeven, `last_stop` the level of its newest stop
    the exchange knows that is no longer live, `risk_budget` what its entry was sized to
    lose: `sized_stop`); one not of ours, the one-TP plan."""
    exchange = view.position
    side = exchange.side
    assert side is not None, "only an open exchange position can be adopted"
    # Binance's mark now; with none to be had (0), its mark at the position read, then the
    # entry: legs to plan, never a price to judge a stop by
    mark = view.mark or exchange.mark_price or exchange.entry_price
    if known is not None:
        position = known
    else:
        stop = rules.round_price(mark * (1 - ADOPT_SL_PCT * side.sign), up=side.sign < 0)
        take = rules.round_price(mark * (1 + ADOPT_TP_PCT * side.sign), up=side.sign > 0)
        position = Position(
            symbol=view.symbol, key=key or "a" + position_key(now), side=side,
            state=PositionState.ATTACHING, quantity=exchange.size,
            entry_price=exchange.entry_price, leverage=exchange.leverage or leverage,
            opened_at=_entered_at(view.symbol, key, side, fills, now)
            if key is not None or exchange.updated_at is None else exchange.updated_at,
            stop=Leg(OrderRole.STOP_LOSS, stop),
            take_profit=Leg(OrderRole.TAKE_PROFIT, take), initial_quantity=exchange.size,
            initial_stop_price=stop, adopted=key is None, time_limit=time_limit,
            cooldown=cooldown, picked_up=key is not None)
        if key is not None:
            position = _progress_shown(position, view, rules, seq, fills, taker_fee,
                                       last_stop, risk_budget)
    merged = {role: max(position.seq.get(role, 0), n) for role, n in {**position.seq, **seq}.items()}
    position = replace(position, state=PositionState.ATTACHING, quantity=exchange.size,
                       seq=merged)
    if known is None and key is not None and close_unfinished(key, side, seq, fills):
        # The operator's /close (or a rule's close) was decided before the wipe: carried to
        # its end by the first tick (trader/lifecycle_tick.py: CLOSING sends the rest under
        # the next close id), never taken up again as an open trade. Its reason is not
        # known any more: COMMAND, as the state machine's own default for a close.
        position = replace(position, state=PositionState.CLOSING,
                           closing_reason=CloseReason.COMMAND, close_attempts=1)
    for leg in position.legs:
        position = _adopt_leg(position, leg.role, view)
    return position


def close_unfinished(key: str, side: Side, seq: dict[str, int],
                     fills: Sequence[Fill]) -> bool:
    """Whether our own position found on a wiped disk was being closed at market: a close
    id of `key` (`seq`: the ids the pickup found sent) is on the exchange,
    and the key's fills do not show its entries closed in full (`_finished`: a close that
    executed all of it left nothing of this trade to close). A close in parts interrupted
    (part 2 lost, a SIGTERM) leaves the rest open: the close goes on."""
    if not seq.get(OrderRole.FLATTEN.value):
        return False
    return not _finished(key, side, None, list(fills))


def _entered_at(symbol: str, key: str | None, side: Side, fills: Sequence[Fill],
                now: datetime) -> datetime:
    """When our own position found again on a wiped disk was entered, for its time in
    trade: its earliest entry fill of `key`, else the time its key names (the entry
    candle's; an adopted one's, its adoption), never later than `now`; `now` for a position
    none of our ids name (its time counts from its adoption)."""
    if key is None:
        return now
    entries = [fill.time for fill in fills if fill.symbol == symbol and fill.side is side
               and (parsed := ClientId.parse(fill.client_id)) is not None
               and parsed.position_key == key and parsed.role is OrderRole.ENTRY]
    entered = min(entries) if entries else key_time(key)
    return now if entered is None else min(entered, now)


def _progress_shown(position: Position, view: SymbolView, rules: SymbolRules,
                    seq: dict[str, int], fills: Sequence[Fill], taker_fee: Decimal,
                    last_stop: Decimal | None, risk_budget: Decimal | None = None
                    ) -> Position:
    """Our own position on a wiped disk, planned around the mark with one take-profit, given
    the exit plan and the progress its orders and fills show (the plan is fixed when a
    position is planned: a known database keeps it too). A TP1 of its key, live, filled or
    sent (`seq`, its ids asked for by the pickup), means the two-TP plan: a live one is the
    leg again (`_adopt_leg`) for its part; filled, the plan is past TP1. One sent but
    neither live nor filled (cancelled by hand, or filled before the fills read back) is not
    proof of a fill: no TP1, TP2 for everything, and still never the one-TP plan's market
    partial. TP1 filled, or the market partial sent (pt), means the agent had moved the
    stop to breakeven; `last_stop`, the newest stop of its key (cancelled by hand: not
    live, but the level the agent had reached, e.g. by the trail). The stop is planned no
    looser than either, so a stop missing at boot comes back there, never at the 1 % a
    fresh adoption gets first; nor looser than its size allows (`sized_stop`: a stop
    never sent before the wipe comes back within the risk its entry was sized for). (A
    live stop of ours is the leg as it is: `_adopt_leg`; one looser than breakeven is
    moved by the tick, as on a known database.) A level
    the mark has passed since closes the position, as that stop would have (placement
    refused with -2021, then closed at market: the Protection table)."""
    first = _newest_live(position, OrderRole.TAKE_PROFIT_1, view)
    first_filled = sum((fill.quantity for fill in fills if fill.side is position.side.opposite
                        and position.owns(fill.client_id)
                        and _role(fill.client_id) is OrderRole.TAKE_PROFIT_1), ZERO)
    if first is not None or first_filled > 0 or seq.get(OrderRole.TAKE_PROFIT_1.value):
        take_profit_1 = None
        if first is not None:
            assert first.trigger_price is not None
            take_profit_1 = Leg(OrderRole.TAKE_PROFIT_1, first.trigger_price)
        position = replace(
            position, exit_plan=ExitPlan.TWO,
            initial_quantity=position.quantity + first_filled,
            # TP1's part: what its live order still closes plus what TP1 orders filled
            # (a partly filled TP1, or one re-placed after a partial fill, keeps its part)
            tp1_quantity=first_filled if first is None
            else first.closes(position.quantity) + first_filled,
            take_profit_1=take_profit_1,
            partial_taken=first is None and first_filled > 0)
    if seq.get(OrderRole.PARTIAL_TP.value):
        position = replace(position, partial_taken=True)     # taken before the wipe
    level = position.stop.trigger_price
    if risk_budget is not None and risk_budget > 0 and position.entry_price > 0:
        level = tighter_stop(position.side, sized_stop(position, rules, risk_budget,
                                                       taker_fee), level)
    if last_stop is not None:
        level = tighter_stop(position.side, last_stop, level)
    if position.partial_taken:
        level = tighter_stop(position.side, breakeven_price(position, taker_fee, rules), level)
    return position.with_leg(replace(position.stop, trigger_price=level))


def sized_stop(position: Position, rules: SymbolRules, risk_budget: Decimal,
               taker_fee: Decimal) -> Decimal:
    """The stop level at which our own `position` loses `risk_budget` (equity x risk
    fraction: what trader/risk.py `plan_entry` sizes an entry to lose at its stop, taker
    fees on both legs included): its size was budget / loss per unit, so the distance is
    read back from it. Clamped as the planner clamps stop distances (0.4-2 %,
    `clamp_stop_pct`), rounded toward the entry (the loss never exceeds the budget by a
    tick). A plan that was tighter (a regime's or the confidence's smaller size, a
    drawdown's lower fraction) reads as looser here, never tighter than the plan's; a
    size capped (notional, MARKET_LOT_SIZE) reads looser too, up to the 2 % clamp."""
    price, side = position.entry_price, position.side
    per_unit = risk_budget / position.quantity / price
    # loss per unit = d x p + fee x (p + p x (1 - sign x d)): solved for the distance d
    distance = clamp_stop_pct((per_unit - 2 * taker_fee) / (1 - side.sign * taker_fee))
    return rules.round_price(price * (1 - side.sign * distance), up=side is Side.BUY)


def _role(client_id: str) -> OrderRole | None:
    parsed = ClientId.parse(client_id)
    return None if parsed is None else parsed.role


def _newest_live(position: Position, role: OrderRole, view: SymbolView) -> Order | None:
    """Our live order of `role` for this position with the highest sequence number (the
    last decision), None without one."""
    newest: tuple[int, Order] | None = None
    for order in view.live:
        parsed = ClientId.parse(order.client_id)
        if (parsed is not None and position.owns(order.client_id) and parsed.role is role
                and order.type is LEG_TYPES[role] and order.trigger_price is not None
                and (newest is None or parsed.seq > newest[0])):
            newest = parsed.seq, order
    return None if newest is None else newest[1]


def _adopt_leg(position: Position, role: OrderRole, view: SymbolView) -> Position:
    """Our live order for this leg (this key) protects already: take it, do not resend.
    Two of them (a move placed new-first, killed before the old one was cancelled): the
    newest, the highest sequence number, was the last decision (/sl, breakeven, trailing);
    the older one is then cancelled as an order the leg does not want."""
    leg = position.leg(role)
    order = _newest_live(position, role, view)
    if order is not None:
        assert order.trigger_price is not None
        remaining = order.closes(position.quantity)
        return position.with_leg(replace(
            leg, trigger_price=order.trigger_price, pending=None,
            order=LegOrder(order.client_id, order.trigger_price, remaining)))
    if role is OrderRole.TAKE_PROFIT_1 and position.leg_quantity(role) <= 0:
        # TP1's part is gone and so is its order: it filled while the agent was away.
        return first_target_filled(position)
    return position.with_leg(replace(leg, order=None, pending=None))


OUTSIDE = "outside the agent (by hand or another program)"


def reduction_cause(position: Position, fills: list[Fill] | None,
                    executed: frozenset[OrderRole] = frozenset()) -> str:
    """Who made a position smaller, from the client id of its latest closing fill: the
    exchange (ADL, liquidation), a partial fill of its own stop or take-profit, or somebody
    else. "" when it was the agent's own market close (a partial take-profit) or the
    two-TP plan's TP1: no alert (TP1's fill has its own). `executed`: the roles of the
    position's legs whose order executed part, as the stream told (ALGO_UPDATE "aq"):
    what names the reduction when the fills cannot (None: they could not be read; none
    closing yet; or the latest one's order Binance cannot name)."""
    latest = None if fills is None else _latest_closing(position, fills)
    if latest is None:
        return _partial_fill_of(executed) or (OUTSIDE if fills is not None
                                              else "outside the agent")
    by_exchange = exchange_close_reason(latest)
    if by_exchange is not None:
        return f"by the exchange ({by_exchange.value})"
    parsed = ClientId.parse(latest)
    if parsed is None or not position.owns(latest):
        return (_partial_fill_of(executed) if latest == "" else "") or OUTSIDE
    return _partial_fill_of(frozenset({parsed.role}))  # "" for its own market partial, TP1


def _partial_fill_of(roles: frozenset[OrderRole]) -> str:
    if OrderRole.STOP_LOSS in roles:
        return "by a partial fill of its stop-loss"
    if OrderRole.TAKE_PROFIT in roles:
        return "by a partial fill of its take-profit"
    return ""          # its own market partial or TP1: the plan, not news


def reduced_by_exchange(position: Position, fills: list[Fill] | None) -> CloseReason | None:
    """The exchange's order that made a position smaller (its latest closing fill's client
    id: "autoclose-..." a liquidation, "adl_autoclose" an ADL), or None (also when the fills
    could not be read)."""
    latest = None if fills is None else _latest_closing(position, fills)
    return None if latest is None else exchange_close_reason(latest)


def fill_unheard(position: Position, quantity: Decimal, fills: list[Fill] | None) -> bool:
    """Whether the exchange holds less (`quantity`) than the fills known so far leave open:
    the fill that made it smaller is not among them yet. Binance orders one event type on a
    connection, not an ACCOUNT_UPDATE against the ORDER_TRADE_UPDATE of the same fill
    (https://developers.binance.com/docs/derivatives/usds-margined-futures/
    user-data-streams/Event-Balance-and-Position-Update and .../Event-Order-Update describe
    each alone; the user-data streams' "Message Ordering Guarantee" covers "messages of the
    same event type"): the smaller position can come first. False when the fills cannot
    tell (not read; no opening fill among them: adopted, or opened before the read), so
    who reduced it is said from them as before."""
    if not fills:
        return False
    opened = closed = ZERO
    # its own only: a trade list read from its opening (less the clocks' slack) can hold
    # the previous trade's last fills, or another position of ours
    for fill in fills_of(position, fills):
        if fill.side is position.side:
            opened += fill.quantity
        else:
            closed += fill.quantity
    return opened > ZERO and opened - closed > quantity


def cause_unheard(position: Position, quantity: Decimal, fills: list[Fill] | None,
                  executed: frozenset[OrderRole] = frozenset()) -> bool:
    """Whether nothing known yet says who reduced `position` to `quantity`: its fill is
    missing from `fills` (`fill_unheard`), or they could not be read (None) and no leg of
    its own is known to have executed part (`executed`: the stream's ALGO_UPDATE "aq")."""
    if fills is None:
        return not _partial_fill_of(executed)
    return fill_unheard(position, quantity, fills)


def addition_cause(position: Position, quantity: Decimal, fills: list[Fill] | None,
                   entry_working: bool) -> str:
    """Who made a position larger (the exchange now holds `quantity`): "" for its own
    entry (a partial fill of its market order, a maker quote's fill: the plan), else
    OUTSIDE. From its opening fills: the latest one not of its entry's orders, or more
    than they bought in all (a fill the trade list does not show yet). Without them (not
    read; none since it opened: adopted), its entry still working says it is its own."""
    opening = [] if fills is None else [f for f in fills if f.side is position.side]
    if not opening:
        return "" if entry_working else OUTSIDE
    ours = [f for f in opening if _entry_of(position, f.client_id)]
    latest = max(opening, key=lambda f: f.time)
    if not _entry_of(position, latest.client_id) \
            or quantity > sum((f.quantity for f in ours), ZERO):
        return OUTSIDE
    return ""


def _entry_of(position: Position, client_id: str) -> bool:
    parsed = ClientId.parse(client_id)
    return parsed is not None and parsed.role is OrderRole.ENTRY and position.owns(client_id)


def _latest_closing(position: Position, fills: list[Fill]) -> str | None:
    """The client id of the position's latest closing fill, or None."""
    closing = [f for f in fills if f.side is position.side.opposite]
    return max(closing, key=lambda f: f.time).client_id if closing else None

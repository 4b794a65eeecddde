"""Protection, pure: what to place or cancel so that exactly one stop-loss covers the
whole position and the take-profit legs (one, or TP1 and TP2: `Position.leg_quantity`)
close exactly the position, and when a missing or refused leg is repaired.

Called by `trader.lifecycle.step` only. The rules (docs/ARCHITECTURE.md, "Protection"):
- a leg without an order (never placed, or its order confirmed gone: CANCELED, EXPIRED,
  REJECTED for our client id) is placed at once; a stop-loss confirmed gone raises
  SL_MISSING (the agent never cancels the order a leg holds, so it went outside the agent)
  and PROTECTION_RESTORED once its replacement is acknowledged; a take-profit is not
  safety-critical: replaced without an alert (logged at WARNING, trader/telemetry.py);
- an order merely absent from the open orders, with no final status known, is probed by
  client id (again at each observation); only if that stays ambiguous is it replaced,
  after `debounce_seconds` AND `debounce_cycles` observations (a slow exchange never
  causes a second stop);
- a refused placement (-2019 margin, any other refusal) is retried on `retry_schedule`
  (2, 4, 8, 16, 25 s, then every 25 s), one alert at the first refusal and an all-clear
  once the position is protected again; a move a filter refused is given up, the old order
  kept (trader/placement_refusals.py);
- a placement whose answer was lost is never re-sent: it stays `pending` until a probe
  says what happened; a stop-loss with nothing else covering the position gets a backup
  under the next client id at once (a lost backup its own, up to a bound), the extra ones
  retired, and one found never placed is placed again at once (trader/stop_backup.py);
- a leg whose live order no longer matches (size changed, trigger moved) is replaced
  new-first: the new order is placed, the old one cancelled once the new one is live;
- two-TP plan: an order that still covers more than its leg should close (the position
  got smaller: most often TP1 just filled) waits for the tick that follows the
  observation, where TP1's fill has been seen and the stop goes to breakeven, so the stop
  is replaced once, for the rest at breakeven; a TP1 whose part is gone (filled, or the
  position shrank) is cancelled on that tick too (TP2 covers the position) unless its
  fill was reported first. A leg that covers less than its part is replaced at once.
- one-TP plan: while a market partial close is in flight (`hold_live`), a leg whose order
  is live is not replaced: the step of the partial's result replaces it once, at the size
  left (the stop aimed at breakeven on the same tick); a leg without a live order is
  placed at once as always.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from trader import display
from trader.alerts import Alert, AlertName
from trader.domain import ClientId, OrderRole
from trader.events import Action, CancelOrder, LegSeen, PlaceLeg, Policy, ProbeOrder
from trader.evolve import evolve
from trader.position import ExitPlan, Leg, LegOrder, LegStatus, Position, PositionState

PROTECTED = PositionState.PROTECTED
LEG_NAMES = {OrderRole.STOP_LOSS: "stop-loss", OrderRole.TAKE_PROFIT: "take-profit",
             OrderRole.TAKE_PROFIT_1: "first take-profit (TP1)"}


def name(role: OrderRole) -> str:
    return LEG_NAMES.get(role, role.name.lower())


def plan(position: Position, now: datetime, policy: Policy,
         settle: bool = True, hold_live: bool = False) -> tuple[Position, list[Action]]:
    """The placements and cancels that bring every leg to what it should close.
    `settle`: this step is a tick's (the two-TP plan's held changes happen then).
    `hold_live`: a leg whose order is live is not replaced in this step (a market partial
    close is in flight: the step of its result replaces it, at the size left); a leg
    without a live order is planned as always."""
    actions: list[Action] = []
    # Planning a leg changes that leg alone (and the client id sequence), never what the
    # others should close: the legs and quantities read up front stay current.
    for leg, wanted in position.leg_quantities():
        if leg.pending is not None or leg.matches(wanted):
            continue        # the common case, decided here without a call: nothing to do
        if hold_live and leg.order is not None and leg.order.status is LegStatus.LIVE:
            continue
        position, more = _plan_leg(position, leg, wanted, now, policy, settle)
        actions += more
    return position, actions


def _plan_leg(position: Position, leg: Leg, wanted: Decimal, now: datetime, policy: Policy,
              settle: bool) -> tuple[Position, list[Action]]:
    if _adopted_covers(position, leg, wanted):
        return position, []
    if wanted <= 0 or _held(position, leg, wanted, settle):
        if wanted <= 0 and settle and _partner_covers(position, leg.role):
            return _retire_order(position, leg)
        return position, []
    actions: list[Action] = []
    order = leg.order
    if order is not None and order.status is LegStatus.MISSING:
        if not _debounced(order, now, policy):
            return position, []
        # Ambiguous for long enough: replace it; cancel the old id too (a no-op if it is gone).
        actions.append(CancelOrder(order.client_id, leg.role))
        leg = evolve(leg, order=None)
    if leg.retry_at is not None and now < leg.retry_at:
        return position.with_leg(leg), actions
    position, client_id = position.placing(leg)
    return position, [PlaceLeg(leg.role, client_id, leg.trigger_price, wanted), *actions]


def _held(position: Position, leg: Leg, wanted: Decimal, settle: bool) -> bool:
    """Two-TP plan: a live order that still covers its part (more than it should close)
    waits for the tick; so does the stop while a TP1 whose part is gone is being settled,
    and a take-profit while the other one does not cover its own part (shrinking it first
    would leave part of the position without a take-profit)."""
    if position.exit_plan is not ExitPlan.TWO or not leg.covers(wanted) \
            or leg.order is None or leg.order.trigger_price != leg.trigger_price:
        return False
    if not settle:
        return True
    if leg.role is not OrderRole.STOP_LOSS:
        return not _partner_covers(position, leg.role)
    first = position.take_profit_1
    return first is not None and first.order is not None \
        and position.leg_quantity(OrderRole.TAKE_PROFIT_1) <= 0


def _partner_covers(position: Position, role: OrderRole) -> bool:
    """The other take-profit of the two-TP plan covers its part (or has none to cover)."""
    partner = OrderRole.TAKE_PROFIT if role is OrderRole.TAKE_PROFIT_1 \
        else OrderRole.TAKE_PROFIT_1
    part = position.leg_quantity(partner)
    return part <= 0 or position.leg(partner).covers(part)


def _adopted_covers(position: Position, leg: Leg, wanted: Decimal) -> bool:
    """Two-TP plan: a take-profit placed by hand (closing the whole position) stands for
    TP2's part; it is never fought."""
    order = leg.order
    return (position.exit_plan is ExitPlan.TWO and order is not None and not order.ours
            and wanted > 0 and leg.covers(wanted) and order.trigger_price == leg.trigger_price)


def _retire_order(position: Position, leg: Leg) -> tuple[Position, list[Action]]:
    """A leg that should close nothing (TP1 once its part is gone): its order goes (a TP2
    covers the position; a fill that raced the cancel is reported as TP1's fill)."""
    order = leg.order
    if order is None:
        return position, []
    actions: list[Action] = [CancelOrder(order.client_id, leg.role)] if order.ours else []
    return position.with_leg(evolve(leg, order=None, failures=0, retry_at=None)), actions


def _debounced(order: LegOrder, now: datetime, policy: Policy) -> bool:
    since = order.missing_since or now
    return (order.missing_cycles >= policy.debounce_cycles
            and now - since >= timedelta(seconds=policy.debounce_seconds))


# --- what the exchange said -------------------------------------------------------------

def placed(position: Position, role: OrderRole, client_id: str, trigger_price: Decimal,
           quantity: Decimal) -> tuple[Position, list[Action]]:
    """The exchange accepted (or shows) our order: it protects now; the one it replaces goes."""
    leg = position.leg(role)
    if client_id != leg.pending and (leg.order is None or leg.order.client_id != client_id):
        return position, []          # an order this leg no longer wants: the sweep cancels it
    old = leg.order
    leg = evolve(leg, order=LegOrder(client_id, trigger_price, quantity), pending=None,
                 pending_trigger=None, trigger_price=_plan_after(leg, client_id, trigger_price),
                 failures=0, retry_at=None)
    actions: list[Action] = []
    if old is not None and old.client_id != client_id and old.ours:
        actions.append(CancelOrder(old.client_id, role))
    return position.with_leg(leg), actions


def _plan_after(leg: Leg, client_id: str, trigger_price: Decimal) -> Decimal:
    """The leg's plan once `client_id` is live at `trigger_price`. The placement it was
    waiting for, unmoved since it was sent: the exchange's trigger is the plan from now on
    (a placement re-rounded onto a new tick grid after a filter rejection lands a tick away
    from the plan). Moved meanwhile (/sl, trailing, breakeven): the found order is at the
    OLD level; it protects until the plan's level is placed (`plan`, new-first)."""
    if client_id != leg.pending:
        return leg.trigger_price
    sent_at = leg.pending_trigger
    if sent_at is not None and sent_at != leg.trigger_price:
        return leg.trigger_price
    return trigger_price


def seen(position: Position, role: OrderRole, client_id: str, trigger_price: Decimal,
         quantity: Decimal, replaces: str | None = None) -> tuple[Position, list[Action]]:
    """A protective order is live: ours (refresh what it covers), the one we were placing
    (accepted), or one placed by hand while ours is gone (adopted, never fought: its
    trigger is the plan), or an earlier one of ours while the leg has none (it protects
    until the plan's level is live)."""
    if not position.has_leg(role):
        return position, []          # TP1 filled already: the sweep retires what is left
    leg = position.leg(role)
    if client_id == leg.pending:
        return placed(position, role, client_id, trigger_price, quantity)
    if leg.order is not None and leg.order.client_id == client_id:
        order = evolve(leg.order, trigger_price=trigger_price, quantity=quantity,
                       status=LegStatus.LIVE, missing_since=None, missing_cycles=0)
        return position.with_leg(evolve(leg, order=order)), []
    awaited = replaces is not None and replaces == leg.pending
    if leg.order is None or leg.order.status is LegStatus.MISSING \
            or leg.order.client_id == replaces or awaited:
        # Respect a stop moved by hand: its trigger becomes the plan. So does the latest
        # id of ours for the role (a restart finds what the run before it placed). An
        # earlier one (replaced, but its cancel failed) protects, but its level is an old
        # plan: the current one is placed over it (`plan`, new-first).
        plan = leg.trigger_price if _replaced_before(position, client_id) \
            and not _newer_than(leg.order, client_id) else trigger_price
        adopted = evolve(leg, order=LegOrder(client_id, trigger_price, quantity),
                         trigger_price=plan, failures=0, retry_at=None)
        if awaited:     # the placement awaited ended; this later one of ours stands for it
            adopted = evolve(adopted, pending=None, pending_trigger=None)
        return position.with_seq_past(client_id).with_leg(adopted), []
    return position, []


def _replaced_before(position: Position, client_id: str) -> bool:
    """`client_id` is ours and the leg has allocated a later id of its role since: it was
    replaced (its cancel failed or raced). The latest id of the role is not: after a restart
    it is the order the agent placed before it died, at the plan of that time."""
    parsed = ClientId.parse(client_id)
    return parsed is not None and position.owns(client_id) \
        and parsed.seq < position.seq.get(parsed.role.value, 0)


def _newer_than(order: LegOrder | None, client_id: str) -> bool:
    """`client_id` is a later id of ours for the role than the leg's own order: the record
    missed it (trader/observe.py `_newer_of_ours`), so it is no replaced order."""
    if order is None:
        return False
    held, found = ClientId.parse(order.client_id), ClientId.parse(client_id)
    return held is not None and found is not None and found.role is held.role \
        and found.seq > held.seq


def settled(position: Position) -> bool:
    """A PROTECTED position on which nothing is due from its legs: every leg live and
    matching what it should close (`Leg.matches`), nothing pending, superseded, retrying,
    missing or owed an all-clear. For such a record `plan` places and cancels nothing,
    `all_clear` says nothing, `watch` probes nothing and the state stays PROTECTED: what
    `confirms` and the quiet tick (trader/lifecycle_tick.py `quiet`) build on."""
    if position.state is not PROTECTED:
        return False
    for leg, wanted in position.leg_quantities():
        order = leg.order
        if leg.pending is not None or leg.retry_at is not None or leg.alerted \
                or leg.superseded or order is None or not leg.matches(wanted) \
                or order.missing_since is not None or order.missing_cycles != 0:
            return False
    return True


def confirms(position: Position, event: LegSeen, is_settled: bool | None = None) -> bool:
    """`event` says what the record says of a `settled` position: stepping it would change
    nothing and do nothing (`seen` keeps the order as it is, `plan` finds every leg
    matching), so the engine need not step it. Most ticks of a trade see this.
    `is_settled`: `settled(position)`, when the caller knows it already (one reading for
    all the legs' events of a tick)."""
    if event.replaces is not None or not position.has_leg(event.role):
        return False
    if not (settled(position) if is_settled is None else is_settled):
        return False
    order = position.leg(event.role).order
    return (order is not None and order.client_id == event.client_id
            and order.trigger_price == event.trigger_price and order.quantity == event.quantity)


def gone(position: Position, role: OrderRole, client_id: str, confirmed: bool,
         now: datetime, policy: Policy, status: str = "",
         reason: str = "") -> tuple[Position, list[Action]]:
    """The leg's order is not live. Confirmed (the exchange gave a final `status`: CANCELED,
    EXPIRED, REJECTED, and maybe its `reason`): replace it now; for the stop-loss,
    SL_MISSING too (`vanished`).
    Absent only: probe it by client id, at each observation; the debounce (time AND cycles)
    applies while it stays ambiguous, and a stop-loss missing more than `sl_missing_cycles` observations
    raises SL_MISSING. Either way PROTECTION_RESTORED follows once protected (`all_clear`).

    Only the leg's current order gets here: the agent's own cancels never concern it (a
    replaced order is cancelled after its successor took its place, and a debounced or
    retired one after it was dropped), so a confirmed end is an outside one: by hand, or
    by the exchange."""
    leg = position.leg(role)
    if client_id == leg.pending:
        return position, []
    order = leg.order
    if order is None or order.client_id != client_id:
        return position, []
    if confirmed:
        leg = evolve(leg, order=None)
        if role is not OrderRole.STOP_LOSS:
            return position.with_leg(leg), []
        return position.with_leg(evolve(leg, alerted=True, alerted_move=False)), [
            vanished(position, client_id, status, reason)]
    order = evolve(order, status=LegStatus.MISSING, missing_since=order.missing_since or now,
                   missing_cycles=order.missing_cycles + 1)
    leg = evolve(leg, order=order)
    # Asked again at each observation: a probe that could not tell (a failed read, an id
    # not known yet) must not leave a stop really cancelled to the whole debounce.
    actions: list[Action] = [ProbeOrder(client_id, role)]
    if (role is OrderRole.STOP_LOSS and not leg.alerted
            and order.missing_cycles > policy.sl_missing_cycles):
        leg = evolve(leg, alerted=True, alerted_move=False)
        actions.append(Alert(
            AlertName.SL_MISSING, f"{position.symbol}: stop-loss at "
            f"{display.number(order.trigger_price)} missing from the open orders for "
            f"{order.missing_cycles} observations; the {position.side.label} "
            f"{display.number(position.quantity)} may have no stop: replacing it after the "
            f"debounce ({client_id})", position.symbol))
    return position.with_leg(leg), actions


def gone_how(status: str) -> str:
    """How a leg's order went, from the `status` its LegGone carries (trader/observe.py)."""
    if status in ("", "CANCELED"):
        return "cancelled outside the agent (by hand?)"
    if status == "FILLED":
        return "filled, yet the position is still open (it grew while the stop filled)"
    if status.startswith("held by"):
        return f"cancelled outside the agent; its client id is now {status} placed by hand"
    return f"ended on the exchange ({status}), not by the agent"


def vanished(position: Position, client_id: str, status: str, reason: str = "") -> Alert:
    """SL_MISSING for a stop-loss the exchange confirmed gone while the position is open.
    A take-profit that goes the same way is replaced as quietly as it is missed (the stop
    still limits the loss; trader/telemetry.py logs it at WARNING): no alert, no sound.
    CANCELED is somebody's cancel (the Binance app, another API client; the fields of
    ORDER_TRADE_UPDATE / ALGO_UPDATE do not say whose), EXPIRED or REJECTED the exchange's
    own (e.g. a margin check failed at trigger time: usds-margined-futures
    user-data-streams/Event-Algo-Order-Update); "held by a BUY LIMIT" another order placed
    under its id once it was cancelled; FILLED a stop that filled all it was for
    while the position stayed open (trader/observe.py `_filled_yet_held`). `reason`: the
    exchange's own words when it gave them (a trigger rejected: ALGO_UPDATE "rm",
    CONDITIONAL_ORDER_TRIGGER_REJECT "r"): what the operator must fix (margin? reduce-only?)
    before the replacement meets the same end."""
    how = gone_how(status)
    if reason:
        how = f"{how}: Binance said \"{reason}\""
    # Numbers as every alert shows them (trader/display.py); the client id last, for the log.
    text = (f"{position.symbol}: stop-loss {how}; the {position.side.label} "
            f"{display.number(position.quantity)} has no stop until its replacement at "
            f"{display.number(position.stop.trigger_price)} is live: replacing it now "
            f"({client_id})")
    return Alert(AlertName.SL_MISSING, text, position.symbol,
                 dedup_key=f"sl_vanished:{position.symbol}:{client_id}")


def partly_filled(position: Position, role: OrderRole, client_id: str,
                  filled: Decimal) -> tuple[Position, list[Action]]:
    """A protective order filled in part: it now closes less (the position's size change,
    observed with it, carries the alert)."""
    leg = position.leg(role)
    if leg.order is None or leg.order.client_id != client_id:
        return position, []
    remaining = max(leg.order.quantity - filled, Decimal(0))
    return position.with_leg(evolve(leg, order=evolve(leg.order, quantity=remaining))), []


def _any_alerted(position: Position) -> bool:
    for leg in position.legs:
        if leg.alerted:
            return True
    return False


def _still_placing(position: Position) -> bool:
    """A leg still on its way to what it should close. One whose order matches already is
    not, whatever is still unanswered for it: a stop found live while later placements of
    it are out (trader/stop_backup.py) protects now, and the extra ones are retired quietly
    once they show up (the operator told of the gap hears the all-clear now, not when the
    last of them is known, up to recvWindow + 10 s later)."""
    for leg, wanted in position.leg_quantities():
        if (leg.pending is not None or leg.retry_at is not None) and not leg.matches(wanted):
            return True
    return False


def watch(position: Position) -> list[Action]:
    """Per tick: probe the placements whose answer was lost (never resend them), a stop's
    superseded ones first, oldest first (trader/stop_backup.py): one found never placed
    makes room for the backup the pending one's probe may then send in the same tick."""
    stop = position.stop
    probes: list[Action] = [ProbeOrder(client_id, stop.role) for client_id in stop.superseded]
    probes += [ProbeOrder(leg.pending, leg.role) for leg in position.legs
               if leg.pending is not None]
    return probes


def all_clear(position: Position, now: datetime) -> tuple[Position, list[Action]]:
    """Once protected again after an alert (SL_MISSING, a refused placement), say so. A
    refused move (the old order still covers) is not over until its replacement is live:
    the text names the planned levels as on the exchange, and, when the only alerts were
    of such moves, says the move went through (the position was never without its order)."""
    if not _any_alerted(position) or not position.protected or _still_placing(position):
        return position, []
    alerted = [leg for leg in position.legs if leg.alerted]
    for leg in alerted:
        position = position.with_leg(evolve(leg, alerted=False, alerted_move=False,
                                            unanswered_since=None, unanswered_out=()))
    first = position.take_profit_1
    stop = f"SL {display.number(position.stop.trigger_price)}"
    target = display.number(position.take_profit.trigger_price)
    levels = f"{stop} and TP {target}" if first is None else (
        f"{stop}, TP1 {display.number(first.trigger_price)} "
        f"({display.number(position.leg_quantity(first.role))}) and TP2 {target}")
    holding = f"the {position.side.label} {display.number(position.quantity)} has {levels}"
    if all(leg.alerted_move for leg in alerted):
        moved = " and ".join(
            f"{name(leg.role)} moved to {display.number(position.leg(leg.role).trigger_price)}"
            for leg in alerted)
        text = f"{position.symbol}: {moved} after all: {holding} on the exchange"
    else:
        text = f"{position.symbol}: protected again: {holding} on the exchange"
    return position, [Alert(AlertName.PROTECTION_RESTORED, text, position.symbol,
                            dedup_key=f"restored:{position.symbol}:{now}")]

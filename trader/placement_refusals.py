"""A refused leg placement, pure: what protection does when the exchange (or the foresight
of `risk.leg_refusal`) says no. Called by `trader.lifecycle.step` only.

- Most refusals may pass (a rate limit, margin, a matching-engine hiccup): the placement is
  retried on the capped schedule, one alert at the first refusal, an all-clear once the
  position is protected again (`refused`).
- A move (a new level while the old order still protects the whole leg) refused by a
  filter that re-reading the symbol's rules did not cure would be refused again at every
  retry, forever, while the operator believes the move happened: it is given up, the old
  order stays and is the plan again, and one alert says why (`move_refused`). The old
  order is never cancelled for it (a leg's order is cancelled only once its successor is
  live: trader/protection.py `placed`).
- A first placement (nothing else protects the leg) refused by PRICE_FILTER (its trigger
  past minPrice / maxPrice) is planned again at the nearest level the filter allows and
  sent once, with one alert naming both levels (`move_refused` with `allowed`); refused
  there too, it is retried on the schedule (`refused`).
"""

import math
from datetime import datetime, timedelta
from decimal import Decimal

from trader import display, protection
from trader.alerts import Alert, AlertName
from trader.domain import OrderRole
from trader.events import Action, Policy
from trader.evolve import evolve
from trader.position import Leg, Position


def move_refused(position: Position, role: OrderRole, client_id: str, reason: str,
                 now: datetime, policy: Policy,
                 allowed: Decimal | None = None,
                 min_qty: Decimal | None = None) -> tuple[Position, list[Action]]:
    """A filter refused the placement `client_id` for good. A move whose old order still
    covers the leg goes back to that order (no retry; `failures` counts on, so the move to
    breakeven gives up after its bounded attempts instead of aiming there again); with
    nothing that protects the leg, it goes to `allowed` (the nearest trigger the price
    filter allows) if there is one, else retrying is all there is (`refused`). `min_qty`:
    LOT_SIZE's minimum when the size is what was refused: no level can pass, and the
    alert does not send the operator after another one."""
    leg = position.leg(role)
    if client_id != leg.pending:
        return position, []
    old = leg.order
    wanted = position.leg_quantity(role)
    if old is None or not leg.covers(wanted) or old.trigger_price == leg.trigger_price:
        if allowed is not None and allowed != leg.trigger_price:
            return _replanned(position, leg, allowed, reason)
        return refused(position, role, client_id, reason, now, policy)
    kept = evolve(leg, trigger_price=old.trigger_price, pending=None, pending_trigger=None,
                  failures=leg.failures + 1, retry_at=None)
    what = protection.name(role)
    text = (f"{position.symbol}: Binance refused the {what} at "
            f"{display.number(leg.trigger_price)} ({reason}); the {what} stays at "
            f"{display.number(old.trigger_price)}."
            + _advice(position, role, min_qty))
    return position.with_leg(kept), [
        Alert(AlertName.PROTECTION, text, position.symbol,
              dedup_key=f"refused:{position.symbol}:{role}")]


def _advice(position: Position, role: OrderRole, min_qty: Decimal | None) -> str:
    if min_qty is not None:
        return (f" No level can pass: the position's size {display.number(position.quantity)}"
                f" is below Binance's minimum order quantity {display.number(min_qty)}"
                " (LOT_SIZE).")
    return " Send /sl with another level to move it" if role is OrderRole.STOP_LOSS else ""


def _replanned(position: Position, leg: Leg, allowed: Decimal,
               reason: str) -> tuple[Position, list[Action]]:
    """The leg planned again at `allowed`, sent in this step (no wait: nothing protects it).
    Its failure run starts over, so a refusal at the new level is alerted (`refused`)."""
    what = protection.name(leg.role)
    text = (f"{position.symbol}: Binance refused the {what} at "
            f"{display.number(leg.trigger_price)} ({reason}); placing it at "
            f"{display.number(allowed)} instead, the nearest level it allows."
            + (" Send /sl to choose another" if leg.role is OrderRole.STOP_LOSS else ""))
    kept = evolve(leg, trigger_price=allowed, pending=None, pending_trigger=None, failures=0,
                  retry_at=None)
    return position.with_leg(kept), [
        Alert(AlertName.PROTECTION, text, position.symbol,
              dedup_key=f"replanned:{position.symbol}:{leg.role}")]


def refused(position: Position, role: OrderRole, client_id: str, reason: str, now: datetime,
            policy: Policy, retry_after: float | None = None,
            told: bool = False) -> tuple[Position, list[Action]]:
    """A placement was refused: retry on the capped schedule, not before the exchange's
    `retry_after` (seconds) has passed; alert at the first refusal of a run (also after an
    SL_MISSING: "replacing it now" did not happen, and why matters: margin?), not at its
    retries. `told`: the caller says what happens instead (a level already passed is
    closed at market, trader/lifecycle.py): no "retrying" alert, which would be false, yet
    the run counts as alerted, so its all-clear follows if the close fails and the leg is
    placed later."""
    leg = position.leg(role)
    if client_id != leg.pending:
        return position, []
    first = leg.failures == 0 or not leg.alerted
    failures = leg.failures + 1
    scheduled = policy.retry_schedule[min(failures, len(policy.retry_schedule)) - 1]
    waits_for_exchange = retry_after is not None and retry_after > scheduled
    delay = retry_after if waits_for_exchange and retry_after is not None else scheduled
    leg = evolve(leg, pending=None, pending_trigger=None, failures=failures,
                 retry_at=now + timedelta(seconds=delay))
    actions: list[Action] = []
    if first:
        # A run that began with the order gone (SL_MISSING) stays a gap in protection.
        covered = leg.covers(position.leg_quantity(role))
        leg = evolve(leg, alerted=True,
                     alerted_move=covered and (leg.alerted_move or not leg.alerted))
        if not told:
            actions.append(_refusal_alert(position, leg, reason, delay, waits_for_exchange))
    return position.with_leg(leg), actions


def _refusal_alert(position: Position, leg: Leg, reason: str, delay: float,
                   waits_for_exchange: bool) -> Alert:
    symbol = position.symbol
    why = ", when the exchange's Retry-After ends" if waits_for_exchange else ""
    retrying = f"retrying in {math.ceil(delay):.0f} s{why}, then with backoff up to every 25 s"
    wanted = position.leg_quantity(leg.role)
    if leg.covers(wanted):
        current = f" at {display.number(leg.order.trigger_price)}" if leg.order else ""
        text = (f"{symbol}: could not move the {protection.name(leg.role)} to "
                f"{display.number(leg.trigger_price)} ({reason}); the current one{current} "
                f"stays: {retrying}")
        return Alert(AlertName.PROTECTION, text, symbol, dedup_key=f"refused:{symbol}:{leg.role}")
    alert_name = AlertName.POSITION_UNPROTECTED if leg.role is OrderRole.STOP_LOSS \
        else AlertName.PROTECTION
    text = (f"{symbol}: could not place the {protection.name(leg.role)} at "
            f"{display.number(leg.trigger_price)} for {display.number(wanted)} of the "
            f"{position.side.label} {display.number(position.quantity)} ({reason}); {retrying}")
    return Alert(alert_name, text, symbol, dedup_key=f"refused:{symbol}:{leg.role}")

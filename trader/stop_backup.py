"""Stop-loss placements whose answers were lost while nothing covers the position, pure: a
backup at once for each (up to a bound), the operator told once the bound is reached, and
the retirement of whichever are extra. Called by `trader.lifecycle.step` and, for its
predicate `unresolved_uncovered`, by `trader.exchange_actions.ActionRunner.probe`.

Any other placement whose answer is lost is waited for: probed by client id until it shows
up or recvWindow + 10 s have passed since the send, never re-sent, so that it is never
doubled. For the only stop of a position that rule left it without any stop meanwhile (~18 s
in benchmarks/protection_timing.py (d); ~0.1 s with the backup), and a price
running through the level costs the whole move (a chaos run: -1,384 USDT against -170 at
the stop). A duplicate stop is the lesser risk: our stops are reduce-only orders for a
quantity, which Binance accepts side by side, and once one fires the others have nothing to
reduce. So:
- a placement still unanswered after TRADEBOT_STOP_BACKUP_AFTER_SECONDS is lost for this
  rule (trader/slow_answers.py: its request goes on, its late answer is the probe's), so a
  hanging request costs that bound, not the client's 10 s timeout;
- the lost placement joins the leg's `superseded` (oldest first) and the backup, under the
  next client id, is the leg's `pending`, sent in the same step. A backup whose answer is
  lost too gets its own backup, the same way: a gateway's burst of 5xx pages loses the
  first placement and the backup sent right after it alike, and waiting for both to expire
  left the position without a stop for 16-18 s while the next request would have landed
  (review 5). At most MAX_STOPS_IN_FLIGHT placements are unresolved at a time (`pending`
  and `superseded`): past that the exchange is not answering at all, and more requests
  would only add stops to retire; each one found never placed makes room again. Reaching
  the bound raises SL_MISSING at once, once per round (`unanswered_alert`: the position,
  the level, the wait of up to recvWindow + 10 s). After the wait the stop is placed again;
  if all the placements out are again ones sent since it was said, unanswered too, it is
  said again with how long ago it was first said. PROTECTION_RESTORED follows the first
  stop confirmed, not the last answer (trader/protection.py `all_clear`);
- the same rule holds for a placement still unresolved when a probe asks (`lost`): after
  a restart (the boot's probes of the stop placements the run before lost), or once a
  superseded one found never placed made room, a backup goes at once instead of waiting for
  the placement to expire;
- every superseded one is still probed (`protection.watch`) and observed: live, it is
  cancelled if another order covers the position (a later placement landed), else it
  protects and the pending one replaces it new-first once it lands (or, never placed, is
  forgotten quietly: `already_matched`); never placed, or ended, a superseded one is
  forgotten;
- the pending one found never placed while nothing covers the position is placed again at
  once (`never_placed`), not on the refusal schedule: the probe already waited out the
  time it could have landed in;
- a -4130 answer to the backup (a closePosition stop in this direction rests already:
  `LegRejected.covered_already`) means the position is covered: the leg goes back to
  waiting for the placement before it, without a refusal alert, a retry or a market close.
Take-profits keep the waiting rule (a missing take-profit loses no money); so does a stop
move whose old order still covers the position.
"""

import math
from datetime import datetime
from decimal import Decimal

from trader import display
from trader.alerts import Alert, AlertName
from trader.domain import OrderRole
from trader.events import Action, CancelOrder, PlaceLeg, Policy
from trader.evolve import evolve
from trader.position import Leg, LegOrder, Position

# The stop placements unresolved at once, at most: the one awaited and the lost ones before
# it. Each may land, so this is also how many reduce-only stops may rest for a moment; the
# extras are cancelled as soon as one is known to protect.
MAX_STOPS_IN_FLIGHT = 3


def unresolved_uncovered(position: Position, role: OrderRole, client_id: str) -> bool:
    """`client_id` is the stop's pending placement, its outcome unknown, and nothing else
    covers the position: a probe that finds it still unknown reports it (`lost`)."""
    if role is not OrderRole.STOP_LOSS:
        return False
    leg = position.stop
    wanted = position.leg_quantity(role)
    return client_id == leg.pending and wanted > 0 and not leg.covers(wanted)


def backs_up(position: Position, role: OrderRole, client_id: str) -> bool:
    """The placement `client_id`, whose answer is lost, gets a backup now: it is the stop's
    pending placement, nothing else covers the position, and with the backup no more than
    MAX_STOPS_IN_FLIGHT placements are unresolved (it, the backup, the superseded ones)."""
    return unresolved_uncovered(position, role, client_id) \
        and len(position.stop.superseded) + 2 <= MAX_STOPS_IN_FLIGHT


def lost(position: Position, role: OrderRole, client_id: str, now: datetime,
         policy: Policy) -> tuple[Position, list[Action]]:
    """The placement `client_id`'s answer was lost (or is still unknown when probed): a
    backup stop now if `backs_up`; else it is probed on the next ticks, never re-sent. A
    stop without room for a backup leaves the position with no confirmed stop until the
    oldest placement is known never placed (up to recvWindow + 10 s): the operator is told
    now, once for this round of placements (`unanswered_alert`), not when that wait is
    over, nor on every probe."""
    if not backs_up(position, role, client_id):
        if unresolved_uncovered(position, role, client_id) and _new_round(position.stop):
            return unanswered_alert(position, now, policy)
        return position, []
    leg = position.leg(role)
    position, backup = position.placing(evolve(leg, superseded=(*leg.superseded, client_id)))
    return position, [PlaceLeg(role, backup, leg.trigger_price, position.leg_quantity(role))]


def _new_round(leg: Leg) -> bool:
    """None of the placements out was out when SL_MISSING was last said: each was sent
    since (after the wait, or as a backup once an older one was known never placed)."""
    return not any(client_id in leg.unanswered_out
                   for client_id in (*leg.superseded, leg.pending))


def unanswered_alert(position: Position, now: datetime,
                     policy: Policy) -> tuple[Position, list[Action]]:
    """SL_MISSING (the documented alert for a position without a stop) once every stop
    placement allowed is out unanswered: a new entry's first stop had no alert at all until
    the wait ended, and "replacing it now" after a stop cancelled by hand was not what
    happened. The all-clear (PROTECTION_RESTORED) follows once a stop is confirmed; the
    placement that follows the wait is not alerted (`never_placed`), but a new round of
    placements all unanswered is: one alert promising a placement in 15 s was all a
    position without a stop for minutes had (review9)."""
    leg = position.stop
    waiting = math.ceil(policy.placement_expiry_seconds)
    since = leg.unanswered_since
    has = "has no confirmed stop-loss" if since is None else (
        f"still has no confirmed stop-loss ({display.duration(now - since)} since it was "
        "first said)")
    more = "" if since is None else " more"
    text = (f"{position.symbol}: the {position.side.label} {display.number(position.quantity)} "
            f"{has}: {len(leg.superseded) + 1}{more} stop placements at "
            f"{display.number(leg.trigger_price)} unanswered (Binance errors or timeouts); "
            f"waiting up to {waiting} s for Binance before placing again, as one may still "
            f"land. /close {position.symbol} closes it at market")
    told = evolve(leg, alerted=True, alerted_move=False, unanswered_since=since or now,
                  unanswered_out=tuple(cid for cid in (*leg.superseded, leg.pending) if cid))
    return position.with_leg(told), [Alert(
        AlertName.SL_MISSING, text, position.symbol,
        dedup_key=f"sl_unanswered:{position.symbol}:{leg.pending}")]


def is_superseded(position: Position, role: OrderRole, client_id: str) -> bool:
    return position.has_leg(role) and client_id in position.leg(role).superseded


def _without(leg: Leg, client_id: str) -> Leg:
    return evolve(leg, superseded=tuple(cid for cid in leg.superseded if cid != client_id))


def superseded_live(position: Position, role: OrderRole, client_id: str,
                    trigger_price: Decimal, quantity: Decimal) -> tuple[Position, list[Action]]:
    """A superseded placement is live: extra if another order covers the position (a later
    placement landed first), cancelled; else it protects until the pending one lands
    (`placed` cancels it then, new-first). Its level is an older plan if the plan moved
    since: the leg's plan stays. The other superseded ones are still probed."""
    leg = _without(position.leg(role), client_id)
    if leg.covers(position.leg_quantity(role)):
        return position.with_leg(leg), [CancelOrder(client_id, role)]
    old = leg.order
    actions: list[Action] = []
    if old is not None and old.ours and old.client_id != client_id:
        actions.append(CancelOrder(old.client_id, role))     # it did not cover: replaced
    leg = evolve(leg, order=LegOrder(client_id, trigger_price, quantity), failures=0,
                 retry_at=None)
    return position.with_leg(leg), actions


def superseded_over(position: Position, role: OrderRole,
                    client_id: str) -> tuple[Position, list[Action]]:
    """The superseded placement `client_id` never landed, or ended: nothing of it to retire."""
    return position.with_leg(_without(position.leg(role), client_id)), []


def covered_already(position: Position, role: OrderRole,
                    client_id: str) -> tuple[Position, list[Action]] | None:
    """The backup `client_id` was refused because a closePosition order in its direction
    rests already: the leg waits for the placement before it again (probed until it is
    found; if it never landed after all, its refusal is handled as any). None: not a
    backup."""
    leg = position.leg(role)
    if client_id != leg.pending or not leg.superseded:
        return None
    *earlier, last = leg.superseded
    return position.with_leg(evolve(leg, pending=last, superseded=tuple(earlier))), []


def already_matched(position: Position, role: OrderRole, client_id: str) -> Position | None:
    """The pending placement `client_id` was refused, or never landed, while the leg's live
    order matches the plan already (the first of a stop's two placements, found live while
    its backup was out): nothing is missing, so no refusal alert and no retry. None: the
    refusal matters."""
    leg = position.leg(role)
    if client_id != leg.pending or not leg.matches(position.leg_quantity(role)):
        return None
    return position.with_leg(evolve(leg, pending=None, pending_trigger=None))


def never_placed(position: Position, role: OrderRole, client_id: str,
                 reason: str) -> tuple[Position, list[Action]] | None:
    """The stop's pending placement `client_id` never landed (its probe ran out) while
    nothing covers the position: the leg is free to be placed again in this very step
    (`protection.plan`), not after the refusal schedule's first 2 s, since the probe has
    waited out the time it could have landed in already. Alerted once for the run, as a
    refusal is (POSITION_UNPROTECTED: the position has been without a stop all along).
    None: any other case, which the refusal schedule handles (a take-profit; a move whose
    old order still covers the position)."""
    leg = position.leg(role)
    wanted = position.leg_quantity(role)
    if role is not OrderRole.STOP_LOSS or client_id != leg.pending or wanted <= 0 \
            or leg.covers(wanted):
        return None
    if leg.unanswered_told:
        # The operator heard of the wait and of the placement after it (`unanswered_alert`):
        # no second alert. Not counted as a refusal: a refusal of the placement that
        # follows is alerted as the run's first (trader/placement_refusals.py `refused`).
        return position.with_leg(evolve(leg, pending=None, pending_trigger=None,
                                        retry_at=None)), []
    first = leg.failures == 0 or not leg.alerted
    leg = evolve(leg, pending=None, pending_trigger=None, failures=leg.failures + 1,
                 retry_at=None, alerted=True, alerted_move=False)
    if not first:
        return position.with_leg(leg), []
    text = (f"{position.symbol}: the stop-loss at {display.number(leg.trigger_price)} for "
            f"the {position.side.label} {display.number(position.quantity)} did not reach "
            f"Binance ({reason}); the position has no stop: placing it again now")
    return position.with_leg(leg), [Alert(AlertName.POSITION_UNPROTECTED, text, position.symbol,
                                          dedup_key=f"refused:{position.symbol}:{role}")]

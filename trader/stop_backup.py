"""A stop-loss placement whose answer was lost while nothing covers the position, pure: a
second stop at once (the backup), and the retirement of whichever of the two is extra.
Called by `trader.lifecycle.step` only.

Any other placement whose answer is lost is waited for: probed by client id until it shows
up or recvWindow + 10 s have passed since the send, never re-sent, so that it is never
doubled. For the only stop of a position that rule left it without any stop meanwhile (~18 s
in benchmarks/protection_timing.py (d); ~0.1 s with the backup), and a price
running through the level costs the whole move (a chaos run: -1,384 USDT against -170 at
the stop). A duplicate stop is the lesser risk: our stops are reduce-only orders for a
quantity, which Binance accepts side by side, and once one fires the other has nothing to
reduce. So:
- a placement still unanswered after TRADEBOT_STOP_BACKUP_AFTER_SECONDS is lost for this
  rule (trader/slow_answers.py: its request goes on, its late answer is the probe's), so a
  hanging request costs that bound, not the client's 10 s timeout;
- the lost placement is `superseded` and the backup, under the next client id, is the leg's
  `pending`, sent in the same step; never more than one backup (a backup whose answer is
  lost too is waited for);
- the superseded one is still probed (`protection.watch`) and observed: live, it is
  cancelled if another order covers the position (the backup landed), else it protects and
  the backup replaces it new-first once it lands (or, never placed, is forgotten quietly:
  `already_matched`); never placed, or ended, the superseded one is forgotten;
- a -4130 answer to the backup (a closePosition stop in this direction rests already:
  `LegRejected.covered_already`) means the position is covered: the leg goes back to
  waiting for the first placement, without a refusal alert, a retry or a market close.
Take-profits keep the waiting rule (a missing take-profit loses no money); so does a stop
move whose old order still covers the position.
"""

from decimal import Decimal

from trader.domain import OrderRole
from trader.events import Action, CancelOrder, PlaceLeg
from trader.evolve import evolve
from trader.position import LegOrder, Position


def lost(position: Position, role: OrderRole, client_id: str) -> tuple[Position, list[Action]]:
    """The placement `client_id`'s answer was lost: a backup stop now, when it is the stop's
    pending placement, nothing else covers the position and no backup was sent already."""
    leg = position.leg(role)
    wanted = position.leg_quantity(role)
    if role is not OrderRole.STOP_LOSS or client_id != leg.pending \
            or leg.superseded is not None or wanted <= 0 or leg.covers(wanted):
        return position, []          # probed on the next ticks, never re-sent
    position, backup = position.placing(evolve(leg, superseded=client_id))
    return position, [PlaceLeg(role, backup, leg.trigger_price, wanted)]


def is_superseded(position: Position, role: OrderRole, client_id: str) -> bool:
    return position.has_leg(role) and client_id == position.leg(role).superseded


def superseded_live(position: Position, role: OrderRole, client_id: str,
                    trigger_price: Decimal, quantity: Decimal) -> tuple[Position, list[Action]]:
    """The superseded placement is live: extra if another order covers the position (the
    backup landed first), cancelled; else it protects until the backup lands (`placed`
    cancels it then, new-first). Its level is an older plan if the plan moved since: the
    leg's plan stays."""
    leg = evolve(position.leg(role), superseded=None)
    if leg.covers(position.leg_quantity(role)):
        return position.with_leg(leg), [CancelOrder(client_id, role)]
    old = leg.order
    actions: list[Action] = []
    if old is not None and old.ours and old.client_id != client_id:
        actions.append(CancelOrder(old.client_id, role))     # it did not cover: replaced
    leg = evolve(leg, order=LegOrder(client_id, trigger_price, quantity), failures=0,
                 retry_at=None)
    return position.with_leg(leg), actions


def superseded_over(position: Position, role: OrderRole) -> tuple[Position, list[Action]]:
    """The superseded placement never landed, or ended: nothing of it to retire."""
    return position.with_leg(evolve(position.leg(role), superseded=None)), []


def covered_already(position: Position, role: OrderRole,
                    client_id: str) -> tuple[Position, list[Action]] | None:
    """The backup `client_id` was refused because a closePosition order in its direction
    rests already: the leg waits for the first placement again (probed until it is found;
    if it never landed after all, its refusal is handled as any). None: not a backup."""
    leg = position.leg(role)
    if client_id != leg.pending or leg.superseded is None:
        return None
    first = leg.superseded
    return position.with_leg(evolve(leg, pending=first, superseded=None)), []


def already_matched(position: Position, role: OrderRole, client_id: str) -> Position | None:
    """The pending placement `client_id` was refused, or never landed, while the leg's live
    order matches the plan already (the first of a stop's two placements, found live while
    its backup was out): nothing is missing, so no refusal alert and no retry. None: the
    refusal matters."""
    leg = position.leg(role)
    if client_id != leg.pending or not leg.matches(position.leg_quantity(role)):
        return None
    return position.with_leg(evolve(leg, pending=None, pending_trigger=None))

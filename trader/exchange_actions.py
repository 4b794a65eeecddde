"""Performing the state machine's exchange actions, and turning their results into events.

`ActionRunner.run(position, action)` performs one PlaceLeg, CancelOrder, ProbeOrder or
Flatten through the executor (write-ahead intents, the error policy; it feeds every answer
to the order tracker), and returns the events that report the result (built from the
tracker's merged order the executor returns, never from a REST answer alone), plus notes
for the operator ("market close 0.1 -> done"). It decides nothing: what to do next is
`trader.lifecycle.step`'s job when the engine feeds it these events. One estimate is made
here, before a leg is sent: a placement Binance would refuse (trader/risk.py `leg_refusal`:
LOT_SIZE, and margin or min notional for a leg that is not reduce-only) is not sent and
reported as refused, so the operator hears of it before the exchange says no.
"""

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from loguru import logger

from trader import display, stop_backup
from trader.clock import Clock
from trader.domain import (
    ZERO,
    IntentStatus,
    Order,
    OrderRole,
    OrderStatus,
)
from trader.events import (
    CancelOrder,
    Event,
    Flatten,
    LegFilled,
    LegGone,
    LegPlaced,
    LegPlacementUnknown,
    LegRejected,
    LegSeen,
    PlaceLeg,
    ProbeOrder,
)
from trader.exchange.base import Exchange
from trader.exchange.errors import Outcome, Retry, Verdict
from trader.executor import ActionResult, Executor
from trader.intents import exit_intent
from trader.market_exit import MarketExit, covering_quantity
from trader.observe import covering_leg
from trader.order_tracker import OrderTracker
from trader.performed import Performed
from trader.position import Position
from trader.risk import leg_refusal
from trader.symbol_rules import SymbolRules

# The members read on every order, read once here: on Python 3.11 a read through the class
# (`OrderStatus.FILLED`) goes through `EnumType.__getattr__` (~850 instructions, see
# trader/exchange/sim_members.py), a module global is a dict read. The very same objects.
_STOP_LOSS = OrderRole.STOP_LOSS
_FILLED = OrderStatus.FILLED
_DONE = Outcome.DONE
_NOT_ANSWERED = frozenset({Outcome.UNKNOWN, Outcome.NOOP})
AvailableMargin = Callable[[], Decimal | None]


def rejection_at_bound(rules: SymbolRules, role: OrderRole, trigger_price: Decimal,
                       verdict: Verdict | None, covered: bool) -> str:
    """Why a stop at PRICE_FILTER's bound that would trigger at once (-2021 after its retry)
    is a refusal to retry, not a passed level ("" otherwise). The bound is the nearest level
    the filter allows (a refused first placement is planned there: trader/placement_refusals.py);
    behind the market, no allowed level protects. Closing at market for a filter is the
    operator's call (/close): the stop is retried at the bound, the alert says why. A move
    (`covered`: the old stop still covers the position) passed is a passed level as ever."""
    if role is not OrderRole.STOP_LOSS or verdict is None or covered \
            or verdict.retry is not Retry.ONCE_AFTER_PAUSE or not rules.at_price_bound(trigger_price):
        return ""
    return (f"{display.number(trigger_price)} is the furthest level Binance allows "
            f"({rules.symbol}'s price filter) and it is already passed: no allowed stop "
            "protects now; /close closes at market")


def _not_read() -> Decimal | None:
    return None


class ActionRunner:
    """Performs exchange actions for the engine (see the module docstring)."""

    def __init__(self, exchange: Exchange, executor: Executor, tracker: OrderTracker,
                 clock: Clock, available_margin: AvailableMargin | None = None,
                 stop_backup_after: float | None = None) -> None:
        self.exchange = exchange
        self.executor = executor
        self.tracker = tracker
        self.clock = clock
        # A stop placement for a position nothing covers, unanswered this long (seconds),
        # is an unknown outcome: its backup goes out (TRADEBOT_STOP_BACKUP_AFTER_SECONDS).
        self.stop_backup_after = stop_backup_after
        # the account's available balance as last read (None: not read yet)
        self.available_margin: AvailableMargin = available_margin or _not_read
        self.market_exit = MarketExit(exchange, executor, tracker, clock)

    async def run(self, position: Position, action: PlaceLeg | CancelOrder | ProbeOrder
                  | Flatten) -> Performed:
        if isinstance(action, PlaceLeg):
            return await self.place_leg(position, action)
        if isinstance(action, CancelOrder):
            return await self.cancel(position, action)
        if isinstance(action, ProbeOrder):
            return await self.probe(position, action)
        return await self.flatten(position, action)

    # --- protective legs ----------------------------------------------------------------
    async def place_leg(self, position: Position, action: PlaceLeg) -> Performed:
        rules = self.exchange.rules(position.symbol)
        intent = exit_intent(position, action.role, action.client_id,
                             covering_quantity(action.quantity, rules), self.clock.now(),
                             trigger_price=action.trigger_price, sending=True)
        refusal = leg_refusal(intent.quantity, action.trigger_price, intent.reduce_only,
                              rules, position.leverage, self.available_margin())
        if refusal:
            # Not sent: the state machine alerts once with the reason and retries on its
            # schedule (trader/protection.py), as it does when the exchange refuses.
            logger.warning("leg not sent, the exchange would refuse it symbol={} client_id={} "
                           "reason={}", position.symbol, action.client_id, refusal)
            return Performed([LegRejected(action.role, action.client_id,
                                          f"not sent: {refusal}")])
        covered = position.leg(action.role).covers(position.leg_quantity(action.role))
        # Nothing covers the position: a hanging request must not hold its backup back
        # (trader/stop_backup.py); anything else waits for its answer as before.
        bound = self.stop_backup_after if action.role is _STOP_LOSS \
            and not covered else None
        result = await self.executor.submit(intent, bound)
        return Performed([self._placement_event(action, result, result.order,
                                                position.symbol, covered, position.quantity)])

    def _placement_event(self, action: PlaceLeg, result: ActionResult, order: Order | None,
                         symbol: str, covered: bool, held: Decimal) -> Event:
        """`order`: what is known of the placed order (the answer merged into the tracker,
        or read back after a code that means "covered already"); `held`: the position's
        size, all of which a closePosition order found there covers (`Order.closes`)."""
        role, client_id = action.role, action.client_id
        if result.outcome is _DONE and order is not None:
            if order.status is _FILLED:
                return LegFilled(role, client_id, order.filled_qty, complete=True)
            if order.status.live:
                # What it covers of the leg: an order rounded up onto the step grid
                # (`covering_quantity`) covers the leg's part, not more.
                return LegPlaced(role, client_id, order.trigger_price or action.trigger_price,
                                 min(order.closes(held), action.quantity))
            return LegRejected(role, client_id, f"order {order.status.value}")
        if result.outcome in _NOT_ANSWERED:
            return LegPlacementUnknown(role, client_id)      # probe it, never resend
        verdict = result.verdict
        if verdict is not None and verdict.closing_order_exists and order is None:
            return LegRejected(role, client_id, result.reason, covered_already=True)
        # the rules as the placement left them (a filter rejection re-read them)
        rules = self.exchange.rules(symbol)
        no_level_protects = rejection_at_bound(rules, role, action.trigger_price, verdict,
                                               covered)
        if no_level_protects:
            logger.warning("stop at the price filter's bound would trigger at once symbol={} "
                           "client_id={} trigger={}", rules.symbol, client_id,
                           action.trigger_price)
            return LegRejected(role, client_id, no_level_protects)
        passed = verdict is not None and verdict.retry is Retry.ONCE_AFTER_PAUSE
        wait = verdict.retry_after if verdict is not None else None
        refused = verdict is not None and verdict.filter_refused
        allowed = rules.nearest_allowed_price(action.trigger_price) if refused else None
        too_small = refused and 0 < action.quantity < rules.min_qty
        return LegRejected(role, client_id, result.reason, level_passed=passed, retry_after=wait,
                           filter_refused=refused, allowed_trigger=allowed,
                           min_qty=rules.min_qty if too_small else None)

    async def cancel(self, position: Position, action: CancelOrder) -> Performed:
        """Cancel -> verify -> act: a fill that raced the cancel is reported as a fill."""
        final = await self.executor.cancel_and_verify(position.symbol, action.client_id)
        if final is None:
            return Performed()
        if final.status is _FILLED and position.owns(action.client_id):
            logger.warning("order filled before its cancel symbol={} client_id={}",
                           position.symbol, action.client_id)
            return Performed([LegFilled(action.role, action.client_id, final.filled_qty,
                                        complete=True)])
        return Performed()

    async def probe(self, position: Position, action: ProbeOrder) -> Performed:
        """One order by client id: placed, still live, gone, or not known (yet)."""
        leg = position.leg(action.role)
        if action.client_id == leg.pending or action.client_id in leg.superseded:
            return await self._probe_pending(position, action)
        order = await self.executor.refresh(position.symbol, action.client_id)
        if order is None:
            return Performed()          # ambiguous: the debounce decides
        if order.status.terminal and order.status is not OrderStatus.FILLED:
            # Gone for sure: a stop placed by hand in its place is taken over, not fought.
            foreign = covering_leg(position, leg, self.tracker.live(position.symbol),
                                   self.clock.now())
            if foreign is not None:
                return Performed([replace(foreign, replaces=action.client_id)])
        return Performed([_leg_event(action.role, order, position.quantity)])

    async def _probe_pending(self, position: Position, action: ProbeOrder) -> Performed:
        intent = self.executor.store.intent(action.client_id)
        if intent is None:
            return Performed([LegRejected(action.role, action.client_id, "no record of it")])
        resolved = await self.executor.probe(intent)
        if resolved.status is IntentStatus.SENT:
            # May still land: never resent. A stop placement nothing else covers gets its
            # backup now (after a restart: the run before lost its answer), as when the
            # answer was lost, or, with no room for one, the operator is told of the wait
            # (at boot too: trader/stop_backup.py `lost`).
            if stop_backup.unresolved_uncovered(position, action.role, action.client_id):
                return Performed([LegPlacementUnknown(action.role, action.client_id)])
            return Performed()
        order = await self.executor.refresh(position.symbol, action.client_id) \
            if resolved.status in (IntentStatus.ACKED, IntentStatus.FILLED) else None
        if order is None:
            return Performed([LegRejected(action.role, action.client_id,
                                          f"never placed ({resolved.detail})",
                                          never_placed=True)])
        if order.status.live:
            return Performed([LegPlaced(action.role, order.client_id,
                                        order.trigger_price or position.leg(action.role).trigger_price,
                                        order.closes(position.quantity))])
        return Performed([_leg_event(action.role, order, position.quantity)])

    # --- market closes ------------------------------------------------------------------
    async def flatten(self, position: Position, action: Flatten) -> Performed:
        """A market close (trader/market_exit.py `MarketExit.flatten`)."""
        return await self.market_exit.flatten(position, action)


def _leg_event(role: OrderRole, order: Order, held: Decimal) -> Event:
    """A leg's order as a read found it; `held`: the position's size (`Order.closes`)."""
    if order.status is _FILLED:
        return LegFilled(role, order.client_id, order.filled_qty, complete=True)
    if order.status.terminal:
        return LegGone(role, order.client_id, confirmed=True, status=order.status.value,
                       reason=order.reason)
    return LegSeen(role, order.client_id, order.trigger_price or ZERO, order.closes(held))

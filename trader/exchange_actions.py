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
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, Decimal

from loguru import logger

from storage import SaveStateFailure
from trader import display, stop_backup
from trader.clock import Clock
from trader.domain import (
    ZERO,
    ClientId,
    ExchangePosition,
    Intent,
    IntentStatus,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
)
from trader.events import (
    CancelOrder,
    Event,
    Flatten,
    FlattenResult,
    LegFilled,
    LegGone,
    LegPlaced,
    LegPlacementUnknown,
    LegRejected,
    LegSeen,
    PlaceLeg,
    PositionGone,
    ProbeOrder,
)
from trader.exchange.base import Exchange
from trader.exchange.errors import Outcome, Retry, Verdict
from trader.executor import ActionResult, Executor
from trader.intent_records import IntentRecords
from trader.intents import exit_intent, part_client_id
from trader.observe import covering_leg
from trader.order_tracker import OrderTracker
from trader.position import Position
from trader.risk import leg_refusal
from trader.symbol_rules import SymbolRules

REBALANCE_ATTEMPTS = 3
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


@dataclass
class Performed:
    """What one action did: events for the state machine, notes for the operator."""
    events: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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
        return LegRejected(role, client_id, result.reason, level_passed=passed, retry_after=wait,
                           filter_refused=refused, allowed_trigger=allowed)

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
        """Market reduce-only close, then post-market verify: what is left on our side; a
        late fill that flipped the position is rebalanced reduce-only and reported."""
        in_flight = await self._exit_in_flight(position, action.client_id)
        if in_flight is not None:
            return await self._waiting_for(position, in_flight, [
                f"{position.symbol}: market close {in_flight} sent, its outcome not known yet: "
                "probed, not sent again"])
        await self._after_the_close_before(action)
        rules = self.exchange.rules(position.symbol)
        parts = rules.market_parts(covering_quantity(action.quantity, rules))
        close = f"{position.symbol}: market close {action.quantity}"
        if len(parts) > 1:
            close += (f" in {len(parts)} orders (Binance takes at most "
                      f"{display.number(rules.largest_market_qty)} at market: MARKET_LOT_SIZE)")
        sent = await self._send_parts(position, action, parts)
        if sent is None:
            return Performed([FlattenResult(position.quantity, not_sent=True)], [
                f"{position.symbol}: partial take-profit not sent (the database refuses writes)"])
        client_id, result = sent
        if result.outcome is Outcome.UNKNOWN:
            lost = f"the answer of {client_id}" if len(parts) > 1 else "its answer"
            return await self._waiting_for(position, client_id, [
                f"{close} sent; {lost} was lost (Binance: execution status unknown), so "
                "the position is read back"])
        held = await self._read_position(position)
        # (`_value_`: `value` without the enum property's call)
        notes = [f"{close} -> {result.outcome._value_}" if result.ok
                 else f"{close} not needed: the position was already closed on Binance "
                 f"(Binance: {result.reason})" if held.side is None
                 else f"{close} refused by Binance ({result.reason})"]
        for attempt in range(1, REBALANCE_ATTEMPTS + 1):
            if held.side is None or held.side is position.side:
                break
            notes.append(f"{position.symbol}: a late fill flipped the position "
                         f"({held.side.label} {held.size}); rebalancing reduce-only")
            rebalance = exit_intent(position, OrderRole.FLATTEN, _rebalance_id(position, attempt),
                                    # at most one market order's worth: the next
                                    # attempt sends what is left
                                    min(covering_quantity(held.size, rules),
                                        rules.largest_market_qty), self.clock.now(),
                                    side=position.side, sending=True)
            await self.executor.submit(rebalance)
            held = await self._read_position(position)
        remaining = held.size if held.side is position.side else ZERO
        events: list[Event] = [FlattenResult(remaining)]
        if held.side is None:
            events.append(PositionGone())
        return Performed(events, notes)

    async def _send_parts(self, position: Position, action: Flatten, parts: list[Decimal]
                          ) -> tuple[str, ActionResult] | None:
        """Send a market exit as `parts` (trader/symbol_rules.py `market_parts`: one, unless
        it is larger than the largest MARKET order Binance takes), one reduce-only order
        each, each journaled with its own client id (the action's for the first,
        `part_client_id` for the others); the client id and result of the last one sent.
        A part refused, or whose answer was lost, ends it: the position read back says what
        is left, and the state machine's next close sends the rest. None: a partial
        take-profit whose intent the database refused (executor.JOURNAL_REQUIRED)."""
        sent: tuple[str, ActionResult] | None = None
        for number_, part in enumerate(parts):
            client_id = part_client_id(action.client_id, number_)
            intent = exit_intent(position, action.role, client_id, part, self.clock.now(),
                                 sending=True)
            try:
                result = await self.executor.submit(intent)
            except SaveStateFailure as exc:
                logger.error("market exit not sent: its intent is not saved symbol={} "
                             "client_id={} error={}", position.symbol, client_id, exc)
                if sent is None:
                    return None
                break
            sent = client_id, result
            if not result.ok or result.outcome is Outcome.UNKNOWN:
                break
        return sent

    async def _after_the_close_before(self, action: Flatten) -> None:
        """A close that follows a refused (or partly filled) one of the same request is sent
        `close_retry_pause` after it, not at once: three closes 10 ms apart all met the same
        book (-4131 three times). One that follows a tick later is sent at once."""
        pause = close_retry_pause(action.attempt)
        before = _previous_close(action.client_id)
        intent = self.executor.store.intent(before) if pause > 0 and before else None
        if intent is None:
            return
        sent_at = intent.sent_at or intent.created_at
        wait = pause - (self.clock.now() - sent_at).total_seconds()
        if wait > 0:
            logger.info("market close again in {:.1f} s client_id={} after={}", wait,
                        action.client_id, before)
            await self.clock.sleep(wait)

    async def _exit_in_flight(self, position: Position, sending: str) -> str | None:
        """The client id of a market exit of this position (a close, a partial take) whose
        answer was lost and which may still land, probed now (trader/executor.py `probe`);
        None when there is none. `sending`: the id about to be sent (not in flight yet)."""
        for intent in exits_unanswered(self.executor.store, position):
            if intent.client_id == sending:
                continue
            probed = await self.executor.probe(intent)
            if probed.status is IntentStatus.SENT and self.tracker.get(intent.client_id) is None:
                return intent.client_id
        return None

    async def _waiting_for(self, position: Position, client_id: str,
                           notes: list[str]) -> Performed:
        """A market exit in flight (`client_id`): the position as read now; flat, it is gone
        (the exit landed after all); else nothing more is sent until its outcome is known."""
        held = await self._read_position(position)
        if held.side is None:
            return Performed([FlattenResult(ZERO), PositionGone()],
                             [*notes, f"{position.symbol}: the position read back is closed"])
        remaining = held.size if held.side is position.side else position.quantity
        return Performed([FlattenResult(remaining, in_flight=client_id)], notes)

    async def _read_position(self, position: Position) -> ExchangePosition:
        """The position read back, as the tracker keeps it with this read
        (OrderTracker.on_read_position): a read older than the ACCOUNT_UPDATE of the close's
        fill still says what was there before the close."""
        asked_at = self.clock.now()
        held: ExchangePosition = await self.executor.read(self.exchange.position,
                                                          position.symbol)
        self.tracker.on_read_position(held, asked_at)
        return self.tracker.position(position.symbol) or held


def exits_unanswered(store: IntentRecords, position: Position) -> list[Intent]:
    """The position's market exits (closes, partial takes) sent whose answer was lost: SENT,
    so they may still land (until `Executor.probe` says otherwise); none is sent again
    while one is (`ActionRunner.flatten`)."""
    return [intent for intent in store.unresolved_intents_for(position.symbol, position.key)
            if intent.status is IntentStatus.SENT and intent.type is OrderType.MARKET
            and intent.reduce_only]


# The pauses before the 2nd and the 3rd market close of one request (the last repeats for
# more attempts). A refusal for the book's state (-4131 PERCENT_PRICE: the best price too
# far from the mark price, which Binance updates every second; a partial fill of a thin
# book) may pass once the book or the mark moved: 0.5 s then 1 s puts the third close 1.5 s
# after the first, across a mark price update, and a /close still answers within a few
# seconds (its reply waits 60 s: bot/handlers.py `result_timeout`). The engine's tick
# waits meanwhile (the single writer): longer pauses would hold the other symbols back.
CLOSE_RETRY_PAUSES = (0.5, 1.0)


def close_retry_pause(attempt: int) -> float:
    """Seconds between the close before and the `attempt`-th close of one request."""
    if attempt <= 1:
        return 0.0
    return CLOSE_RETRY_PAUSES[min(attempt - 2, len(CLOSE_RETRY_PAUSES) - 1)]


def _previous_close(client_id: str) -> str | None:
    """The client id of the close sent before `client_id` (its sequence number less one)."""
    parsed = ClientId.parse(client_id)
    if parsed is None or parsed.seq <= 1:
        return None
    return str(replace(parsed, seq=parsed.seq - 1))


def _rebalance_id(position: Position, attempt: int) -> str:
    """Rebalance orders take flatten ids far beyond the state machine's own sequence."""
    seq = position.seq.get(OrderRole.FLATTEN.value, 0) + 100 + attempt
    return str(ClientId(position.symbol, position.key, OrderRole.FLATTEN, seq))


def _leg_event(role: OrderRole, order: Order, held: Decimal) -> Event:
    """A leg's order as a read found it; `held`: the position's size (`Order.closes`)."""
    if order.status is _FILLED:
        return LegFilled(role, order.client_id, order.filled_qty, complete=True)
    if order.status.terminal:
        return LegGone(role, order.client_id, confirmed=True, status=order.status.value,
                       reason=order.reason)
    return LegSeen(role, order.client_id, order.trigger_price or ZERO, order.closes(held))


def covering_quantity(quantity: Decimal, rules: SymbolRules) -> Decimal:
    """A reduce-only order's quantity on the step grid, rounded UP: the order closes at
    most the position, so it still covers (a leg) or closes (a market close) all of a
    position whose size is off the grid (the step grew since it was opened). Rounded
    down, the rest stays open: a leg never covered its part and was placed again at every
    step (refused -1111, resent rounded down, not covering, ...); a close left a rest that
    no order could close (-4003 for less than a step)."""
    step = rules.step_size
    if quantity % step == ZERO:         # on the grid (every leg planned on it): as it is
        return quantity
    # (the rounding by position: the same call without _decimal's keyword parsing)
    rounded = (quantity / step).to_integral_value(ROUND_CEILING) * step
    return quantity if rounded == quantity else rounded

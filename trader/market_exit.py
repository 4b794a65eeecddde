"""Market exits of a position (a /close, a time exit, a flatten, a partial take-profit):
sent reduce-only through the executor (write-ahead intents; a part per MARKET_LOT_SIZE), never
two in flight (one whose answer was lost is probed, not sent again), then verified against the
position read back; a late fill that flipped the position is rebalanced reduce-only. A probe
or a read-back the exchange does not answer (a 503 outage of every route) leaves the close
waiting, never failed: nothing more is sent and no attempt is spent until a later tick
knows (`FlattenResult.in_flight`, `unread`), however long that takes. A close Binance refuses
for a reason that waiting cures (503 "Service Unavailable.", -1008, -1001, -4131) is sent
again on a backoff for as long as it lasts (`FlattenResult.refused_for_now`,
trader/close_retry.py); only the other refusals count towards the give-up.

    exit = MarketExit(exchange, executor, tracker, clock)
    performed = await exit.flatten(position, action)   # events + notes for the operator

Called by `trader.exchange_actions.ActionRunner.flatten`; what to do next is the state
machine's (`trader.lifecycle.step`).
"""

from dataclasses import replace
from decimal import ROUND_CEILING, Decimal

from loguru import logger

from storage import SaveStateFailure
from trader import display
from trader.clock import Clock
from trader.close_retry import close_retry_pause
from trader.containment import readable
from trader.domain import (
    ZERO,
    ClientId,
    ExchangePosition,
    Intent,
    IntentStatus,
    OrderRole,
    OrderType,
)
from trader.events import Event, Flatten, FlattenResult, PositionGone
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.exchange.errors import Outcome
from trader.executor import ActionResult, Executor
from trader.intent_records import IntentRecords
from trader.intents import exit_intent, part_client_id
from trader.order_tracker import OrderTracker
from trader.performed import Performed
from trader.position import Position
from trader.symbol_rules import SymbolRules

REBALANCE_ATTEMPTS = 3
NOT_READ_BACK = "the position could not be read back"   # a close's result not known
REBALANCE_SEQ_STRIDE = 100   # rebalance ids: the close's number + 100 x attempt


class MarketExit:
    """Sends and verifies market exits (see the module docstring)."""

    def __init__(self, exchange: Exchange, executor: Executor, tracker: OrderTracker,
                 clock: Clock) -> None:
        self.exchange = exchange
        self.executor = executor
        self.tracker = tracker
        self.clock = clock

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
        if result.outcome is Outcome.CIRCUIT_OPEN:
            # Not sent: inside a Retry-After the read raises too, and the command's answer
            # says when the close goes (trader/control_close.py `_held_back`)
            return await self._verified(position, close, result,
                                        await self._read_position(position))
        held, unread = await self._read_back(position)
        verdict = result.verdict
        if not result.ok and verdict is not None and verdict.refused_for_now \
                and (held is None or held.side is position.side):
            # Nothing executed, and the same close may pass later: sent again on a backoff,
            # counted for nothing (trader/close_retry.py); the size is the one read back,
            # else the one before (nothing executed)
            return Performed([FlattenResult(held.size if held else position.quantity,
                                            refused_for_now=verdict.label)],
                             [f"{close} refused by Binance for now ({result.reason})"])
        if held is None and result.ok:
            # Taken by Binance, but what is left is not known: a later tick's view says
            # (flat: closed; else the rest is sent then), nothing is sent blind now
            return Performed([FlattenResult(position.quantity, unread=True)],
                             [f"{close} -> {result.outcome._value_}", unread])
        if held is None:
            # A definite refusal (nothing executed): the next close follows as for any
            # refusal (the schedule's attempts), for the quantity last known
            return Performed([FlattenResult(position.quantity)],
                             [f"{close} refused by Binance ({result.reason})", unread])
        return await self._verified(position, close, result, held)

    async def _verified(self, position: Position, close: str, result: ActionResult,
                        held: ExchangePosition) -> Performed:
        """A close answered (taken or refused) and the position read back after it: what is
        left of it, a late fill that flipped it rebalanced reduce-only."""
        rules = self.exchange.rules(position.symbol)
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
            read, unread = await self._read_back(position)
            if read is None:
                return Performed([FlattenResult(position.quantity, unread=True)],
                                 [*notes, unread])
            held = read
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
        book (-4131 three times). One that follows a tick later is sent at once. The engine's
        tick waits meanwhile (the single writer): longer pauses would hold the other symbols
        back, so a close refused for now is sent again by later ticks (trader/close_retry.py)."""
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
        answer was lost and which may still land, probed now (trader/executor.py `probe`;
        a probe the exchange does not answer leaves it in flight); None when there is none.
        `sending`: the id about to be sent (not in flight yet)."""
        for intent in exits_unanswered(self.executor.store, position):
            if intent.client_id == sending:
                continue
            try:
                probed = await self.executor.probe(intent)
            except (ExchangeError, UnknownOutcome) as exc:
                # Not answered (a 503 outage): it may still land, so nothing is sent now;
                # what the stream told of it, if anything, settles it for a later tick
                logger.warning("market exit in flight not probed symbol={} client_id={} "
                               "error={}", position.symbol, intent.client_id, exc)
                self.executor.settle_known(intent.client_id)
                return intent.client_id
            if probed.status is IntentStatus.SENT and self.tracker.get(intent.client_id) is None:
                return intent.client_id
        return None

    async def _waiting_for(self, position: Position, client_id: str,
                           notes: list[str]) -> Performed:
        """A market exit in flight (`client_id`): the position as read now; flat, it is gone
        (the exit landed after all); else, or unread, nothing more is sent until its outcome
        is known."""
        held, unread = await self._read_back(position)
        if held is None:
            return Performed([FlattenResult(position.quantity, in_flight=client_id)],
                             [*notes, unread])
        if held.side is None:
            return Performed([FlattenResult(ZERO), PositionGone()],
                             [*notes, f"{position.symbol}: the position read back is closed"])
        remaining = held.size if held.side is position.side else position.quantity
        return Performed([FlattenResult(remaining, in_flight=client_id)], notes)

    async def _read_back(self, position: Position) -> tuple[ExchangePosition | None, str]:
        """`_read_position`, or None and the note saying why when the exchange did not
        answer the read (its gate retried already): a close's result is then not known."""
        try:
            return await self._read_position(position), ""
        except (ExchangeError, UnknownOutcome) as exc:
            logger.warning("position not read back after a market exit symbol={} error={}",
                           position.symbol, exc)
            return None, (f"{position.symbol}: {NOT_READ_BACK} ({readable(exc)}), so what "
                          "it holds now is not known yet")

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


def _previous_close(client_id: str) -> str | None:
    """The client id of the close sent before `client_id` (its sequence number less one)."""
    parsed = ClientId.parse(client_id)
    if parsed is None or parsed.seq <= 1:
        return None
    return str(replace(parsed, seq=parsed.seq - 1))


def _rebalance_id(position: Position, attempt: int) -> str:
    """Rebalance orders take flatten ids far beyond the state machine's own sequence: the
    close's number + REBALANCE_SEQ_STRIDE x attempt, so the rebalances of two closes of one
    position never share an id (with + 100 + attempt, close 1's third and close 2's second
    were both fl104) until 100 closes apart, nor meet a part's (+ 1000 x part)."""
    seq = position.seq.get(OrderRole.FLATTEN.value, 0) + REBALANCE_SEQ_STRIDE * attempt
    return str(ClientId(position.symbol, position.key, OrderRole.FLATTEN, seq))


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

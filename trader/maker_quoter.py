"""Working a maker-first entry on the exchange, one step per tick (trader/maker_entry.py
decides what; this does it; trader/maker_progress.py reads what the orders did).

Every order goes through the executor: a write-ahead intent under the position's next
deterministic client id (-en1, -en2, ...: one intent per id, never resent). A quote is
replaced only once the old one is cancelled and read back (cancel -> verify: a fill that
raced the cancel counts), so at most one quote is ever live. What each quote did is read
from the order tracker (the user-data stream), else the journal, else the exchange; a
restart at any point, between a cancel and the next quote included, carries on from what
the journal and the exchange say, and the next quote takes the next id.

While the position is ENTERING a step reports an event for the state machine: EntryFilled
with what filled over every quote (the position exists from the first fill; its legs are
placed for that size), EntryFailed when the entry is over and nothing filled (late: the
operator hears it as ENTRY_NOT_FILLED, trader/lifecycle.py). Once the
position is open its size follows the exchange's position (PositionSizeChanged: the legs
follow the size), so a step only moves the quotes; a rest given up at the timeout leaves
the position at its filled size.

A close asked for while the entry works (the operator's /close of an ENTERING position: its
record keeps the `closing_reason`, trader/lifecycle.py) gives the quotes up as a CLOSING
position does: the live quote cancelled and verified, nothing more quoted nor bought at
the timeout, after a restart too; what filled is closed at market by the state machine.
Held (`held`: whatever refuses a new entry on its symbol, trader/guards.py `entries_held`:
the sleep of a /shutdown, a /pause, a tripped breaker, a failed save, a cooldown, stale
candles) the quotes give up the same way, and the position keeps what filled; the hold's
end does not revive them.
A give-up, whatever its reason, is kept the moment it is decided (`Position.giving_up`,
journaled before the cancel leaves): while that cancel is unanswered or reads back live,
every later tick cancels and reads back again, whatever holds by then (a /resume, a pause's
or a breaker's end, a restart in between), and nothing is quoted nor bought meanwhile.
Once its quoting is over, for whatever reason, the record says so (`Position.quoting_over`,
journaled): a restart, awake and past the timeout, never buys the rest of a given-up entry.
"""

from collections.abc import Callable, Iterable
from decimal import Decimal

from loguru import logger

from storage import SaveStateFailure
from trader.clock import Clock
from trader.domain import (
    ZERO,
    ClientId,
    Intent,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.events import EntryFailed, EntryFilled, Event
from trader.evolve import evolve
from trader.exchange.errors import Outcome
from trader.exchange_view import ExchangeView
from trader.executor import ActionResult, Executor
from trader.intents import entry_intent, quote_intent
from trader.interpreter import Interpreter
from trader.maker_entry import (
    Complete,
    EntryRisk,
    FallBack,
    GiveUp,
    Hold,
    MakerDecision,
    MakerPolicy,
    Quote,
    QuoteState,
    decide,
    fall_back,
    placeable,
    rest_of,
    sized,
    touch_price,
)
from trader.maker_progress import Progress, QuoteReader
from trader.observe import SymbolView
from trader.position import Position, PositionState
from trader.trade_store import TradeStore


def quote_event(result: ActionResult) -> Event | None:
    """A quote's answer as an event. None while it rests, when it was refused because it
    would have taken liquidity (-5022: the next step re-quotes), when it ended at once
    without a fill (a GTX that Binance accepts and expires) and while its answer is lost;
    EntryFilled once something filled; EntryFailed for any other refusal (margin, ...)."""
    if result.outcome in (Outcome.UNKNOWN, Outcome.NOOP):
        return None
    if result.verdict is not None and result.verdict.post_only_rejected:
        return None
    if not result.ok or result.order is None:
        return EntryFailed(result.reason)
    order = result.order
    if order.filled_qty > 0:
        return EntryFilled(order.filled_qty, order.avg_price,
                           complete=order.status is OrderStatus.FILLED)
    return None


FINISHED_KEPT = 1000
_ENTRY_MARK = f"-{OrderRole.ENTRY.value}"      # in every entry order's client id


def _quote_live(position: Position, live: Iterable[Order]) -> bool:
    """Whether an entry order of `position` is among `live`: each client id parsed once
    (`o.role is ENTRY and position.owns(o.client_id)` parsed it twice, every tick).

    Asked on every tick of an open position (`working`), whose live orders are most often
    its stop and target only: an id is parsed only when it holds "-en", which every entry
    id holds. That skips no entry order of it: `ClientId.parse` gives a ClientId only for
    the exact text `str()` of it makes (trader/domain.py), "tb-{symbol}-{key}-en{seq}" for
    role ENTRY; an id without "-en" would have parsed to None or to another role. An id
    with it is still parsed (a key starting with "en" has it in every id), so the answer is
    the full check's."""
    for order in live:
        if _ENTRY_MARK not in order.client_id:
            continue
        parsed = ClientId.parse(order.client_id)
        if parsed is not None and parsed.role is OrderRole.ENTRY \
                and parsed.symbol == position.symbol and parsed.position_key == position.key:
            return True
    return False


def _not_held(symbol: str) -> str:
    return ""


def _seq(intent: Intent) -> int:
    parsed = ClientId.parse(intent.client_id)
    return parsed.seq if parsed is not None else 0


class MakerQuoter:
    """Quotes, re-quotes and the fallback of maker-first entries (see the module docstring)."""

    def __init__(self, policy: MakerPolicy, executor: Executor, store: TradeStore,
                 interpreter: Interpreter, clock: Clock, view: ExchangeView) -> None:
        self.policy = policy
        self.executor = executor
        self.exchange = executor.exchange
        self.store = store
        self.interpreter = interpreter
        self.clock = clock
        self.view = view
        self.reader = QuoteReader(executor, store, clock, view)
        self._finished: set[tuple[str, str]] = set()   # (symbol, key) whose quoting is over
        # (symbol, key) -> why its quoting is being given up, its quote not known ended yet
        # (as on the record, `Position.giving_up`; kept here too when that save failed)
        self._giving_up: dict[tuple[str, str], str] = {}
        # Why entries on a symbol are held ("" when nothing holds them): the sleep of a
        # /shutdown, a /pause, a breaker, ... (kept in the database: a restart holds them
        # too); set by the engine to its guard book's word (`guards.entries_held`) and its
        # market data's (stale candles, a symbol no longer trading).
        self.held: Callable[[str], str] = _not_held

    # --- which positions --------------------------------------------------------------
    def entry_intents(self, position: Position) -> list[Intent]:
        """The position's entry intents (its quotes, then a market rest), in id order."""
        return sorted((i for i in self.store.intents_for(position.symbol, position.key)
                       if i.role is OrderRole.ENTRY), key=_seq)

    def handles(self, position: Position) -> bool:
        """Its latest entry order is a quote: the maker entry decides what comes next."""
        intents = self.entry_intents(position)
        return bool(intents) and intents[-1].type is OrderType.LIMIT

    def working(self, position: Position, view: SymbolView) -> bool:
        """An open position whose maker entry may still act: a quote of its own is live,
        or its latest entry order is a quote and its quoting did not finish yet."""
        if _quote_live(position, view.live):
            return True
        if self.quoting_over(position):
            return False
        if not self.handles(position):
            self._remember(position)         # a market entry: nothing to work, ever
            return False
        return True

    def may_hold(self, position: Position) -> Position:
        """`position` at the most it may hold, for the heat (trader/entry_sender.py
        `account`): an open one short of its planned size whose maker entry may still fill
        the rest counts the rest too (at its stop); any other as it is (ENTERING: its
        quantity is the planned one until the first fill)."""
        if position.state.open and position.quantity < position.initial_quantity \
                and self.may_add(position):
            return evolve(position, quantity=position.initial_quantity)
        return position

    def may_add(self, position: Position) -> bool:
        """Whether its maker entry may still add to an open position, without a view
        (`may_hold`): its latest entry order is a quote and its quoting is not over, or it
        is the market rest and its answer was lost."""
        # the latest entry id is on the record before its order leaves (`_send`): one
        # lookup, not a scan of every intent (asked again for each entry planned)
        latest = self.store.intent(str(ClientId(position.symbol, position.key, OrderRole.ENTRY,
                                                position.seq.get(OrderRole.ENTRY.value, 1))))
        if latest is None:
            return False
        if latest.type is not OrderType.LIMIT:
            return not latest.status.resolved     # the market rest, until it is known
        return not self.quoting_over(position)

    def quoting_over(self, position: Position) -> bool:
        """Whether its quoting is known over: the last quote cancelled and read back (or
        filled), nothing more to quote. False while a cancel is unanswered or reads back
        live (a /close's reply must not say "cancelled" then). Kept on the record
        (`Position.quoting_over`): a restart knows an entry given up, however long ago."""
        return position.quoting_over or (position.symbol, position.key) in self._finished

    def _finish(self, position: Position) -> Position:
        """Its quoting is over: said on the record, journaled before anything else is
        decided on it (a restart that found only the latest entry order a quote would
        quote again, or buy the rest at market past the timeout), and remembered."""
        self._remember(position)
        if position.quoting_over:
            return position
        return self.interpreter.adopt(evolve(position, quoting_over=True))

    def _remember(self, position: Position) -> None:
        """Remember that this position's quoting is over, or that it never had any (a market
        entry; bounded: closed ones are dropped now and then)."""
        if len(self._finished) >= FINISHED_KEPT:
            open_now = {(p.symbol, p.key) for p in self.interpreter.positions.values()}
            self._finished &= open_now
            self._giving_up = {k: why for k, why in self._giving_up.items() if k in open_now}
        self._finished.add((position.symbol, position.key))
        self._giving_up.pop((position.symbol, position.key), None)

    def _give_up(self, position: Position, why: str) -> Position:
        """The give-up is decided (`why`): kept before the quote's cancel leaves, in memory
        and on the record, so that neither a later tick (the hold ended) nor a restart takes
        the entry for a live one while that cancel is unanswered."""
        self._giving_up[(position.symbol, position.key)] = why
        if position.giving_up:
            return position
        try:
            return self.interpreter.adopt(evolve(position, giving_up=why))
        except SaveStateFailure:
            # the cancel goes anyway: a failed save holds entries; kept in memory meanwhile
            logger.error("maker entry give-up not saved symbol={} key={} why={}",
                         position.symbol, position.key, why)
            return position

    async def touch(self, symbol: str, side: Side) -> Decimal | None:
        """Where a quote goes now: the best bid (buy) or ask (sell), None without a book."""
        return touch_price(side, await self.view.book(symbol), self.exchange.rules(symbol))

    # --- one step -----------------------------------------------------------------------
    async def advance(self, position: Position,
                      view: SymbolView) -> tuple[Position, Event | None]:
        """Read what the quotes did, decide, act; the position (its entry id sequence may
        have moved) and the event to apply, if any. Raises ExchangeError / UnknownOutcome
        when a cancel or a read fails (the tick's boundary logs it; the next tick retries)."""
        progress = await self.reader.progress(self.entry_intents(position), view)
        rules = self.exchange.rules(position.symbol)
        state = self._state(position, progress, view.mark)
        decision = decide(state, await self.touch(position.symbol, position.side), rules,
                          self.policy)
        if isinstance(decision, GiveUp):
            position = self._give_up(position, decision.reason)
        if isinstance(decision, Hold):
            logger.debug("maker entry holds symbol={} key={} reason={}", position.symbol,
                         position.key, decision.reason)
            return position, self._event(position, progress, over=False)
        logger.info("maker entry symbol={} key={} filled={} quotes={} decision={}",
                    position.symbol, position.key, progress.filled, progress.quotes_sent,
                    decision)
        if progress.live is not None and not await self._cancel_live(position, progress):
            return position, self._event(position, progress, over=False)   # next tick
        # what the cancel's read-back found filled counts: the rest and its budget again
        after = self._state(position, progress, view.mark)
        position, over = await self._act(position, decision, progress, after)
        if over:
            position = self._finish(position)
            if state.giving_up and not progress.given_up:
                progress.given_up = state.giving_up    # decided on an earlier tick: told
        return position, self._event(position, progress, over)

    def _state(self, position: Position, progress: Progress, mark: Decimal) -> QuoteState:
        """What is known of the entry now, its risk budget included (`EntryRisk`)."""
        planned = position.initial_quantity or position.quantity
        return QuoteState(
            side=position.side, planned=planned, filled=progress.filled,
            quote_price=progress.live.price if progress.live else None,
            unknown=progress.unknown, quotes_sent=progress.quotes_sent,
            elapsed=self.clock.now() - position.opened_at,
            # CLOSING, or a close asked for while it is ENTERING (trader/lifecycle.py)
            closing=position.closing_reason is not None
            or position.state is PositionState.CLOSING, held=self.held(position.symbol),
            managed=position.partial_taken or position.breakeven_done
            or position.trailing_active,
            giving_up=position.giving_up
            or self._giving_up.get((position.symbol, position.key), ""),
            risk=self._risk(position, planned).filled(position.side, progress.filled,
                                                      progress.notional),
            mark=mark if mark > 0 else None)

    def _risk(self, position: Position, planned: Decimal) -> EntryRisk:
        """The plan's budget at the position's stop now. A record without one (kept since
        this version) is an ENTERING one's plan at its planned price, or an open one's at
        the price it filled at so far."""
        stop = position.stop.trigger_price
        if position.risk_budget > 0:
            return EntryRisk(stop, position.risk_budget)
        unknown = EntryRisk(stop, ZERO)
        return EntryRisk(stop, planned * unknown.loss_per_unit(position.side,
                                                               position.entry_price))

    async def _act(self, position: Position, decision: MakerDecision, progress: Progress,
                   state: QuoteState) -> tuple[Position, bool]:
        """After the live quote (if any) is gone: the next quote, the market rest, or the
        end, sized again with what the cancel found filled (`state`). Whether the entry's
        quoting is over."""
        rules = self.exchange.rules(position.symbol)
        rest = rest_of(state, rules)
        # the price MIN_NOTIONAL is checked at: the quote's, else what filled so far
        price = decision.price if isinstance(decision, Quote) else progress.average_price or None
        now = self.clock.now()
        if isinstance(decision, Quote | FallBack) and not placeable(rest, price, rules):
            decision = Complete(f"the rest {rest} cannot be placed (a fill raced the cancel)")
        elif isinstance(decision, FallBack):
            decision = fall_back(state, rest, rules)
        if isinstance(decision, Quote):
            at = decision.price
            quantity, why_not = sized(state, at, rest, rules)
            if why_not:
                logger.info("maker entry waits symbol={} key={}: no re-quote: {}",
                            position.symbol, position.key, why_not)
                return position, False
            position, result = await self._send(position, progress, lambda cid: quote_intent(
                position, cid, at, quantity, now))
            if result is not None and result.order is not None:
                progress.add(result.order)
            return position, False
        if isinstance(decision, FallBack):
            market = decision.quantity
            position, result = await self._send(position, progress, lambda cid: entry_intent(
                position, cid, now, market))
            if result is None or result.outcome in (Outcome.UNKNOWN, Outcome.NOOP):
                return position, False       # probed later as a market entry, never resent
            if result.order is not None:
                progress.add(result.order)
            elif not result.ok:
                progress.refused = result.reason
        if isinstance(decision, GiveUp) and decision.chase:
            progress.given_up = decision.reason
        logger.info("maker entry over symbol={} key={} filled={} of {} why={}",
                    position.symbol, position.key, progress.filled, state.planned, decision)
        return position, True

    def _event(self, position: Position, progress: Progress, over: bool) -> Event | None:
        if position.state is not PositionState.ENTERING:
            return None                      # open: its size follows the exchange's position
        if progress.filled > 0:
            return EntryFilled(progress.filled, progress.average_price, complete=over)
        if over and position.closing_reason is not None:
            return EntryFailed("its quote was cancelled: a close was asked for", late=True)
        held = self.held(position.symbol) if over else ""
        if held:
            return EntryFailed(f"its quote was cancelled: {held}", late=True)
        if over:
            # Later than any reply (a /long's said "quoting"), so ENTRY_NOT_FILLED tells it.
            refused = f"; the market rest was refused: {progress.refused}" \
                if progress.refused else f"; {progress.given_up}" if progress.given_up else ""
            return EntryFailed(f"the maker quotes were not filled{refused}", late=True)
        return None

    # --- reading what the quotes did ------------------------------------------------------
    # --- acting -------------------------------------------------------------------------
    async def _cancel_live(self, position: Position, progress: Progress) -> bool:
        """Cancel the live quote and read it back; False while it is still live."""
        live = progress.live
        assert live is not None
        final = await self.executor.cancel_and_verify(position.symbol, live.client_id)
        if final is not None:
            if final.status.live:
                logger.warning("maker quote still live after its cancel symbol={} "
                               "client_id={} status={}", position.symbol, live.client_id,
                               final.status)
                return False
        progress.settle(live, final)
        return True

    async def _send(self, position: Position, progress: Progress,
                    build: Callable[[str], Intent]) -> tuple[Position, ActionResult | None]:
        """The next entry order under the next client id (past every journaled one)."""
        if progress.last_id is not None:
            position = position.with_seq_past(progress.last_id)
        position, client_id = position.next_client_id(OrderRole.ENTRY)
        self.interpreter.adopt(position)     # the id is on the record before the order leaves
        try:
            result = await self.executor.submit(build(client_id))
        except SaveStateFailure:
            # Write-ahead: an order whose intent cannot be journaled is never sent.
            logger.error("maker entry order not sent: its intent could not be saved "
                         "symbol={} client_id={}", position.symbol, client_id)
            return position, None
        if result.verdict is not None and result.verdict.post_only_rejected:
            logger.info("maker quote refused: it would have taken liquidity symbol={} "
                        "client_id={}; re-quoting at the next touch", position.symbol,
                        client_id)
        return position, result

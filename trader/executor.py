"""Sending orders: write-ahead intents, the error policy, cancel -> verify, unknown outcomes.

Every exchange action goes through here. An intent is recorded (PENDING) before the
request, marked SENT just before it leaves, and resolved from the exchange's answer.
A timeout or 5xx leaves it SENT (outcome UNKNOWN): it is probed by client id and never
re-sent blind. Every answer about one of our orders (a placement's, a cancel's, a read by
client id) goes into the order tracker here and comes back merged with what the
user-data stream said and what the database knew (`_learned`): the order records and the
intents' settlements are taken from that merge, never from an answer alone, and no caller
can forget to feed it. Placement retries follow the error table (trader/exchange/errors.py) on
tenacity, each kind at most once (trader/placement_retry.py). Transport-level retries,
the rate-limit circuit and pacing live in the exchange adapter's request gate
(trader/exchange/gate.py).
"""

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from loguru import logger

from storage import SaveStateFailure
from trader.clock import Clock
from trader.domain import Intent, IntentStatus, Order, OrderRequest, OrderRole, OrderStatus
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.exchange.errors import THROTTLE_SECONDS, Outcome, Verdict, classify
from trader.fast_init import fast_init
from trader.order_tracker import OrderTracker
from trader.placement_retry import PlacementRetry, PlacementUnderWay, placement_retrying
from trader.sent_ids import SentIds
from trader.slow_answers import SlowAnswers
from trader.trade_store import TradeStore

T = TypeVar("T")

# On top of recvWindow before a lost order not found is taken as never placed. Not clock
# skew alone: Binance checks the timestamp when its API server receives a request (USD-M
# "General Info", timing security: serverTime - timestamp <= recvWindow), but a 5xx whose
# "execution status is UNKNOWN" (same page, HTTP return codes) is a request received and
# passed on, and no document bounds when the matching engine acts on it; our timestamp is
# also the host's clock plus an offset measured at start. Declared never placed too early,
# an order that lands after all is journaled "not found" though it rests on the exchange:
# an entry opens a position the agent believes it never opened; a stop is sent again beside
# it, the late one then cancelled as a leftover by the orphan sweep
# (tests/test_stop_gap_told_to_the_operator.py `..._landing_late_...`).
PROBE_GRACE = timedelta(seconds=10)
# The detail of a SENT intent whose placement raised an unexpected exception (not an
# exchange error): answered or never sent, so not found means never placed, at once.
NOT_IN_FLIGHT = "unexpected error, not in flight:"


# Orders not sent unless their SENT intent is durable (SaveStateFailure instead). Protection
# is sent anyway: its deterministic client id makes a resend after a restart a duplicate
# the exchange refuses while the order rests (-4116 "ClientOrderId is duplicated": among
# open orders only, as trader/exchange/sim.py and the fake Binance model it). A partial
# take-profit is a MARKET order, filled at once: a restart that lost its record would send
# the same id again and the exchange would take it, closing a second part.
JOURNAL_REQUIRED = frozenset({OrderRole.ENTRY, OrderRole.PARTIAL_TP})

# The members read on every order, read once here: on Python 3.11 a read through the class
# (`IntentStatus.SENT`) goes through `EnumType.__getattr__` (~850 instructions, see
# trader/exchange/sim_members.py), a module global is a dict read. The very same objects.
_PENDING, _SENT, _ACKED = IntentStatus.PENDING, IntentStatus.SENT, IntentStatus.ACKED
_INTENT_FILLED = IntentStatus.FILLED
_ORDER_FILLED = OrderStatus.FILLED
_DONE = Outcome.DONE
_FAILED_UNLESS_FILLED = frozenset({OrderStatus.REJECTED, OrderStatus.EXPIRED,
                                   OrderStatus.CANCELED})


@fast_init       # one per order sent
@dataclass(frozen=True, slots=True)
class ActionResult:
    outcome: Outcome
    intent: Intent
    order: Order | None = None
    verdict: Verdict | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is _DONE

    @property
    def reason(self) -> str:
        if self.verdict is None:
            return self.outcome.value
        meaning = self.verdict.meaning.partition(": ")[2]
        if self.verdict.label and meaning:   # "503 Service Unavailable: ...", not "-1000 ..."
            return f"{self.verdict.label}: {meaning}"
        return f"{self.verdict.code} {self.verdict.meaning}"


class Executor:
    """Places and cancels orders for the engine, keeping the intent journal exact."""

    def __init__(self, exchange: Exchange, store: TradeStore, clock: Clock,
                 tracker: OrderTracker, *,
                 recv_window: timedelta = timedelta(milliseconds=5000)) -> None:
        self.exchange = exchange
        self.store = store
        self.clock = clock
        self.tracker = tracker
        self.recv_window = recv_window
        self.throttled_until: dict[str, datetime] = {}
        self.sent_count = 0
        self.cancels_sent = 0
        self.sent_ids = SentIds(store)   # for the second-instance check (`placed`)
        self.rules_changes: list[str] = []   # found by filter rejections; the engine alerts
        self._under_way = PlacementUnderWay()
        self._retrying = placement_retrying(self._under_way, clock.sleep)
        self.slow_answers = SlowAnswers()    # placements left in flight past their bound
        # Client ids whose last cancel the exchange answered (acknowledged, or "unknown
        # order": Outcome.NOOP) rather than failed (5xx, timeout): one still read live after
        # such an answer is stuck (an algo order in TRIGGERING answers -2011 and stays
        # listed); the orphan sweep stops after a few (trader/position_keeper.py).
        self.cancel_answered: set[str] = set()

    # --- journal ------------------------------------------------------------------
    @property
    def actions_sent(self) -> int:
        """Orders placed and cancels sent so far: a view of the exchange taken before this
        last changed is older than an order (trader/position_keeper.py `_resolve_entry`)."""
        return self.sent_count + self.cancels_sent

    def _journal(self, intent: Intent, *, required: bool) -> bool:
        """Save an intent. Entries and partial take-profits require the journal
        (JOURNAL_REQUIRED); protection goes on without it.
        A failure is counted by the store's write health (SAVE_STATE_FAILURE)."""
        try:
            self.store.save_intent(intent, self.clock.now())
        except SaveStateFailure as exc:
            if required:
                raise
            logger.error("intent not journaled, sending anyway (deterministic id) "
                         "client_id={} role={} error={}", intent.client_id, intent.role, exc)
            return False
        return True

    def _required(self, intent: Intent) -> bool:
        return intent.role in JOURNAL_REQUIRED

    @property
    def placed(self) -> set[str]:
        """The client ids this process sent and still remembers (trader/sent_ids.py)."""
        return self.sent_ids.ids

    def circuit_open(self) -> bool:
        circuit = self.exchange.circuit()     # closed (most ticks): no clock read, no call
        return circuit.open_until is not None and circuit.is_open(self.clock.now())

    def symbol_throttled(self, symbol: str) -> bool:
        until = self.throttled_until.get(symbol)
        return until is not None and self.clock.now() < until

    # --- placing ------------------------------------------------------------------
    async def submit(self, intent: Intent, answer_within: float | None = None) -> ActionResult:
        """Record, send and resolve one intent. Never sends an intent twice.
        `answer_within` (seconds): past it, the outcome is UNKNOWN for now and the request
        goes on in flight (trader/slow_answers.py); its answer is the probe's."""
        known = self.store.intent(intent.client_id)
        if known is not None and known.status is not _PENDING:
            logger.warning("intent already sent, not re-sending client_id={} status={}",
                           intent.client_id, known.status)
            return ActionResult(Outcome.NOOP, known)
        if self.circuit_open():
            return ActionResult(Outcome.CIRCUIT_OPEN, intent)
        # One write before the send, as SENT: a PENDING row superseded at once adds a commit
        # and tells a restart nothing more (a SENT intent nobody saw land is probed by its
        # client id and expires: trader/housekeeping.py, trader/startup.py). An intent
        # built as it leaves (SENT with its sending time: trader/intents.py `sending`) is
        # journaled as it is; a PENDING one is copied to SENT now.
        if intent.status is _SENT and intent.sent_at is not None:
            sent = intent
        else:
            sent = intent.with_status(_SENT, sent_at=self.clock.now())
        required = intent.role in JOURNAL_REQUIRED
        self._journal(sent, required=required)
        try:
            try:
                order = await self._send(sent, sent.request(), answer_within)   # usually once
            except ExchangeError as refused:
                order = await self._send_again(sent, refused, answer_within)
        except (ExchangeError, UnknownOutcome) as error:
            return await self._resolve_error(sent, error)
        except SaveStateFailure:
            raise
        except Exception as error:
            # Our own bug, before the request left or in reading its answer: nothing is in
            # flight, so the next probe settles it at once (`probe`); the tick's boundary
            # logs and alerts it (trader/containment.py). Whatever the HTTP client raises
            # once a request may have left (a timeout, a dropped connection, a body cut
            # short or unreadable) comes as UnknownOutcome (trader/exchange/binance_rest.py):
            # in flight, probed until it may no longer land.
            logger.error("placement raised an unexpected error, read back by its client id "
                         "at the next probe client_id={} symbol={} role={} error={!r}",
                         intent.client_id, intent.symbol, intent.role, error)
            self._journal(sent.with_status(IntentStatus.SENT, detail=f"{NOT_IN_FLIGHT} "
                                           f"{type(error).__name__}: {error}"), required=False)
            raise
        # A new client id: the database has no record of it to merge.
        return self._resolve_order(sent, self.tracker.learned(order, self.clock.now()) or order)

    async def _send_again(self, intent: Intent, refused: ExchangeError,
                          answer_within: float | None) -> Order:
        """The placement `refused` answered, sent again as the error table asks (each kind
        at most once: trader/placement_retry.py), or `refused` raised. The retry policy is
        built only here: the usual placement, answered at once, needs none of it (its
        request is made afresh from the same intent: the same request)."""
        policy = PlacementRetry(intent, self.exchange)
        if not policy.should_retry(refused):
            raise refused
        # The error table asks for a retry: tenacity runs the placement from the refused
        # attempt on (its answer is replayed, not sent again), as if it had run from the
        # start; the usual case (`submit`) skips the retrying object's bookkeeping.
        # The engine places one order at a time; should two ever overlap, the second
        # gets a retrying object of its own (tenacity keeps a run's state in it).
        shared = self._under_way.policy is None
        if shared:
            self._under_way.policy = policy
        retrying = self._retrying if shared else placement_retrying(policy, self.clock.sleep)
        replayed = False
        try:
            async for attempt in retrying:
                with attempt:
                    if not replayed:
                        replayed = True
                        raise refused
                    return await self._send(policy.intent, policy.request, answer_within)
        finally:
            if shared:
                self._under_way.policy = None
            self.rules_changes += policy.rules_changes
        raise AssertionError("unreachable")

    async def _send(self, intent: Intent, request: OrderRequest,
                    answer_within: float | None) -> Order:
        client_id = request.client_id
        self._commit_before_send(intent, f"intent {client_id} sent")
        self.sent_count += 1
        self.sent_ids.remember(client_id)
        if answer_within is None:
            return await self.exchange.place(request)
        return await self.slow_answers.within(client_id, self.exchange.place(request),
                                              answer_within)

    def _commit_before_send(self, intent: Intent | None, what: str) -> None:
        """The write-ahead commit point (storage/unit_of_work.py): what the tick wrote so
        far, the SENT intent included, is durable before the request leaves. Not
        committed (rolled back, counted: SAVE_STATE_FAILURE), an entry is not sent
        (SaveStateFailure); protection and cancels are sent anyway, like `_journal`."""
        try:
            self.store.commit_point(what)
        except SaveStateFailure as exc:
            if intent is not None and self._required(intent):
                raise
            logger.error("not committed before the request, sending anyway what={} error={}",
                         what, exc)

    def _resolve_order(self, intent: Intent, order: Order) -> ActionResult:
        status = _INTENT_FILLED if order.status is _ORDER_FILLED else _ACKED
        if order.status in _FAILED_UNLESS_FILLED:
            status = IntentStatus.FAILED if order.filled_qty == 0 else IntentStatus.FILLED
        answered = intent.with_status(status)
        self._record_answer(answered, order)
        self.sent_ids.saw(order)
        # A reconciliation's re-read of a live order is no placement: DEBUG.
        log = logger.debug if status is intent.status else logger.info
        log("order placed client_id={} symbol={} role={} status={} filled={}",
            order.client_id, order.symbol, intent.role, order.status, order.filled_qty)
        return ActionResult(_DONE, answered, order)

    async def _resolve_error(self, intent: Intent, error: Exception) -> ActionResult:
        verdict = classify(error, intent.role)
        logger.warning("order error client_id={} symbol={} role={} code={} http={} outcome={} "
                       "meaning={}", intent.client_id, intent.symbol, intent.role, verdict.code,
                       verdict.http_status, verdict.outcome, verdict.meaning)
        if verdict.outcome is Outcome.UNKNOWN:
            return ActionResult(Outcome.UNKNOWN, intent, verdict=verdict)
        if verdict.outcome is Outcome.THROTTLED:
            self.throttled_until[intent.symbol] = self.clock.now() + timedelta(seconds=THROTTLE_SECONDS)
        if verdict.outcome is Outcome.DONE and verdict.verify:
            order = await self.read_order(intent.symbol, intent.client_id)
            if order is not None and (order.side is not intent.side
                                      or order.type is not intent.type):
                # The id is held, but not by the order sent (a -4116 whose holder was
                # placed by hand under our id): it protects nothing of this one.
                logger.error("client id held by another order client_id={} symbol={} "
                             "sent={} {} held_by={} {}", intent.client_id, intent.symbol,
                             intent.side, intent.type, order.side, order.type)
                failed = intent.with_status(IntentStatus.FAILED, detail=(
                    f"{verdict.code} {verdict.meaning}: held by a {order.side.value} "
                    f"{order.type.value}, not this {intent.side.value} {intent.type.value}"))
                self._journal(failed, required=False)
                return ActionResult(Outcome.FAILED, failed, verdict=verdict)
            resolved = intent.with_status(IntentStatus.ACKED if order else IntentStatus.FAILED,
                                          detail=verdict.meaning)
            self._journal(resolved, required=False)
            return ActionResult(Outcome.DONE, resolved, order, verdict)
        failed = intent.with_status(IntentStatus.FAILED, detail=f"{verdict.code} {verdict.meaning}")
        self._journal(failed, required=False)
        return ActionResult(verdict.outcome, failed, verdict=verdict)

    def _record_answer(self, intent: Intent, order: Order) -> None:
        """The exchange's answer, the intent's status and the order, in one transaction (one
        commit, both or neither). Not saved (counted: SAVE_STATE_FAILURE), or rolled back
        with the unit of work, the agent goes on and the next tick writes it again while
        the intent is still SENT on the disk (Rewrites, storage/unit_of_work.py)."""
        key = ("answer", order.client_id)
        again = partial(self._record_answer_again, intent, order)
        try:
            with self.store.transaction(f"order {order.client_id} answered"):
                self.store.save_intent(intent, self.clock.now())
                self.store.save_order(order)
        except SaveStateFailure as exc:
            logger.error("order answer not journaled client_id={} status={} error={}",
                         order.client_id, order.status, exc)
            self.store.unit.rewrites.failed(key, again)
        else:
            self.store.unit.rewrites.written(key, again)

    def _record_answer_again(self, intent: Intent, order: Order) -> None:
        saved = self.store.intent(intent.client_id)
        if saved is None or saved.status is _SENT:   # else resolved since: newer
            self._record_answer(intent, order)

    def _save_order(self, order: Order) -> None:
        try:
            self.store.save_order(order)
        except SaveStateFailure as exc:
            logger.error("order not saved client_id={} error={}", order.client_id, exc)

    # --- cancel -> verify -----------------------------------------------------------
    async def cancel_and_verify(self, symbol: str, client_id: str) -> Order | None:
        """Cancel, then read the order back. A FILLED result means a fill raced the cancel."""
        self._commit_before_send(None, f"before cancelling {client_id}")
        self.cancel_answered.discard(client_id)
        self.cancels_sent += 1
        try:
            # DELETE /fapi/v1/order answers the order as the cancel left it: an answer
            # like any other (older than a fill the stream reported meanwhile, it is
            # merged under it, never taken as is).
            self._learned(await self.exchange.cancel(symbol, client_id))
            self.cancel_answered.add(client_id)
        except UnknownOutcome as error:     # cancelled or not: the read-back tells
            logger.warning("cancel outcome unknown, reading back client_id={} error={}",
                           client_id, error)
        except ExchangeError as error:
            verdict = classify(error, sending=False)
            if verdict.outcome is Outcome.SKIPPED:
                # 5xx / -1007 "execution status unknown", or -4117 "stop order is
                # triggering", after the gate's retries: the read-back tells; a stop still
                # live is cancelled again (the orphan sweep).
                logger.warning("cancel outcome unknown, reading back client_id={} code={} "
                               "http={}", client_id, error.code, error.http_status)
            elif verdict.outcome is Outcome.NOOP:
                logger.info("cancel: order already gone client_id={} code={}", client_id,
                            error.code)
                self.cancel_answered.add(client_id)
            else:
                raise
        order = await self.refresh(symbol, client_id)
        if order is not None:
            logger.info("cancel verified client_id={} status={}", client_id, order.status)
        return order

    async def refresh(self, symbol: str, client_id: str) -> Order | None:
        """Read one order that was placed and bring its intent and order records up to
        date, from what is known of it with this read (`read_order`). Not found: the
        tracker takes it as not live (a cancel's read-back, a probe of a leg)."""
        order = await self.read_order(symbol, client_id)
        if order is None:
            self.tracker.on_missing(client_id, self.clock.now())
            return None
        self._save_order(order)
        self._settle(order)
        self.sent_ids.saw(order)
        return order

    def settle_known(self, client_id: str) -> Order | None:
        """`refresh` without the read: what the tracker knows of one of our orders now (the
        user-data stream's word merged with the last answers), its record saved and its
        intent settled; None when it knows nothing of it. For a close recorded inside a
        Retry-After, when no read may be sent (trader/closing.py)."""
        tracked = self.tracker.get(client_id)
        if tracked is None:
            return None
        order = tracked.order
        self._save_order(order)
        self._settle(order)
        return order

    async def read_order(self, symbol: str, client_id: str) -> Order | None:
        """One of our orders read by client id, as known with this answer (`_learned`);
        None when the exchange knows no such order (not fed: a placement whose answer was
        lost may not have landed yet)."""
        return self._learned(await self.exchange.order_by_client_id(symbol, client_id))

    def _learned(self, answer: Order | None) -> Order | None:
        """An answer about one of our orders, fed to the tracker; what it knows now
        (OrderTracker.learned: merged with what the stream said). One the tracker does not
        know (a restart empties it, finished orders are forgotten after hours) is first
        seeded with its record: a read older than what the database knew (a quote's
        fill) otherwise took it back, journaled EXPIRED with nothing filled."""
        if answer is None:
            return None
        now = self.clock.now()
        if self.tracker.get(answer.client_id) is None:
            recorded = self._recorded(answer.client_id)
            if recorded is not None:
                self.tracker.on_order(recorded, now)
        return self.tracker.learned(answer, now)

    def _recorded(self, client_id: str) -> Order | None:
        """The order's record, None when there is none or the database cannot be read
        right now (a failing disk: the answer is taken with what the stream said)."""
        try:
            return self.store.order(client_id)
        except sqlite3.Error as exc:
            logger.warning("order record not read, the answer merged without it "
                           "client_id={} error={}", client_id, exc)
            return None

    def _settle(self, order: Order) -> None:
        intent = self.store.intent(order.client_id)
        if intent is None or intent.status.resolved:
            return
        if order.status is _ORDER_FILLED:
            status = _INTENT_FILLED
        elif order.status.terminal:
            status = _INTENT_FILLED if order.filled_qty > 0 else IntentStatus.EXPIRED
        else:
            status = _ACKED
        if status is not intent.status:
            self._journal(intent.with_status(status, detail=order.status.value), required=False)

    async def read(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """A read-only exchange call (the adapter's gate retries transient errors)."""
        return await call(*args)

    # --- unknown outcomes -----------------------------------------------------------
    async def probe(self, intent: Intent) -> Intent:
        """Resolve a SENT intent: by the late answer of its request if it was left in
        flight and has answered since (trader/slow_answers.py), else by asking the exchange
        for its client id. Not found, it stays SENT while it may still land (recvWindow +
        PROBE_GRACE after it was sent: longer than a request left in flight can last, the
        HTTP client's timeout), unless it was not in flight (`NOT_IN_FLIGHT`): then it is
        EXPIRED at once."""
        late = self.slow_answers.answered(intent.client_id)
        if late is not None and late.order is not None:
            return self._resolve_order(intent, self._learned(late.order) or late.order).intent
        if late is not None and isinstance(late.error, ExchangeError):
            return (await self._resolve_error(intent, late.error)).intent
        order = await self.read_order(intent.symbol, intent.client_id)
        if order is not None:
            return self._resolve_order(intent, order).intent
        sent_at = intent.sent_at or intent.created_at
        if self.clock.now() - sent_at < self.recv_window + PROBE_GRACE \
                and not intent.detail.startswith(NOT_IN_FLIGHT):
            return intent   # may still land: stays SENT, nothing is re-sent
        expired = intent.with_status(IntentStatus.EXPIRED, detail="not found on the exchange")
        self._journal(expired, required=False)
        logger.info("unknown outcome resolved: never placed client_id={}", intent.client_id)
        return expired

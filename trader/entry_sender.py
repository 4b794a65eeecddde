"""Sending entries: from a closed candle's signal to the entry order and its fill.

The desk (trader/entry.py) decides; this sends: the ENTERING record is saved before the
order leaves (write-ahead: the executor journals the intent, SENT, before the request),
the leverage is set only now, while the symbol is flat (a restart never changes the
leverage of an open position), and the order's answer becomes EntryFilled / EntryFailed
for the state machine, which then places both legs. An entry whose answer was lost is
probed by client id on the next ticks, never re-sent.

TRADEBOT_ENTRY_MODE=maker sends a post-only quote at the touch instead of a MARKET order;
its re-quotes and fallback run on the next ticks (`resolve`, trader/maker_quoter.py).
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta

from loguru import logger

from storage import SaveStateFailure
from trader.clock import Clock
from trader.config import Settings
from trader.domain import (
    Balance,
    Candle,
    ClientId,
    Intent,
    IntentStatus,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    position_key,
)
from trader.entry import Account, EntryDesk, EntryLimits, manual_signal
from trader.events import EntryFailed, EntryFilled, Event
from trader.exchange.base import (
    Exchange,
    ExchangeEvent,
    LeverageChanged,
)
from trader.exchange.errors import Outcome
from trader.exchange_view import ExchangeView
from trader.executor import ActionResult, Executor
from trader.intents import entry_intent, quote_intent
from trader.interpreter import Interpreter
from trader.maker_entry import EntryMode, MakerFallback, MakerPolicy
from trader.maker_quoter import MakerQuoter, quote_event
from trader.management import FirstTarget
from trader.margin_watch import MarginWatch
from trader.market.history import CandleHistory
from trader.observe import SymbolView
from trader.order_tracker import OrderTracker
from trader.position import Position, PositionState
from trader.risk import total_open_risk
from trader.risk_state import RiskState
from trader.strategy.base import Strategy
from trader.telemetry import Counters
from trader.trade_store import TradeStore

# read once (every entry): a member read through its class costs ~850 instructions on
# Python 3.11 (trader/exchange/sim_members.py)
_ENTRY, _LIMIT, _FILLED = OrderRole.ENTRY, OrderType.LIMIT, OrderStatus.FILLED
_NOT_ANSWERED = frozenset({Outcome.UNKNOWN, Outcome.NOOP})


class EntrySender:
    def __init__(self, settings: Settings, exchange: Exchange, executor: Executor, store: TradeStore,
                 interpreter: Interpreter, counters: Counters, clock: Clock,
                 strategy: Strategy, margin: MarginWatch, risk: RiskState,
                 view: ExchangeView | None = None) -> None:
        """`view`: the engine's view of the exchange (its order tracker and book), which
        maker-first entries read and keep up to date; `margin`: ISOLATED set before each
        entry (trader/margin_watch.py); `risk`: the risk fraction entries are sized with
        (trader/risk_state.py)."""
        self.settings = settings
        self.exchange = exchange
        self.executor = executor
        self.store = store
        self.interpreter = interpreter
        self.counters = counters
        self.clock = clock
        self.margin = margin
        self.desk = EntryDesk(strategy)
        # symbol -> the exchange's refusal of its last entry, none when it was not refused
        # (a /long's reply tells a refused entry from one that filled and closed at once)
        self.refused: dict[str, str] = {}
        self.leverage_set: dict[str, int] = {}
        self.limits = EntryLimits(
            leverage=settings.leverage, max_heat=settings.max_heat,
            max_position_pct=settings.max_position_pct,
            time_in_trade=timedelta(minutes=settings.time_in_trade_minutes),
            cooldown=timedelta(minutes=settings.cooldown_minutes),
            first_target=FirstTarget(settings.tp1_fraction, settings.tp1_r)
            if settings.exit_plan == "two" else None,
            correlation_threshold=settings.correlation_threshold,
            correlation_window=settings.correlation_window,
            confidence_floor=settings.confidence_min_scale if settings.confidence_sizing
            else None)
        view = view or ExchangeView(exchange, executor, OrderTracker(), clock)
        self.tracker = view.tracker
        self.maker = MakerQuoter(
            MakerPolicy(settings.maker_requotes, timedelta(seconds=settings.maker_timeout_seconds),
                        MakerFallback(settings.maker_fallback)),
            executor, store, interpreter, clock, view)
        self.risk = risk

    @property
    def strategy(self) -> Strategy:
        return self.desk.strategy

    @strategy.setter
    def strategy(self, strategy: Strategy) -> None:
        self.desk.strategy = strategy

    # --- deciding ---------------------------------------------------------------------
    def candle_signal(self, symbol: str, history: CandleHistory) -> Signal | None:
        """The strategy's signal on the symbol's new closed candle, None for none; asked
        once `desk.would_ask(symbol, history)` said it would ask, nothing changed since:
        the candle is taken (`new_candle` would take it: the same tests on the same
        candles) and the strategy asked. Not a coroutine: most candles give no signal, and
        nothing is awaited for them (`enter_on_signal` is, for a signal)."""
        desk = self.desk
        desk.take(symbol, history)
        return desk.signal(history.closed(), history.higher)

    async def enter_on_signal(self, symbol: str, signal: Signal, view: SymbolView,
                              candles: Sequence[Candle],
                              account: Callable[[], Account | None]) -> Position | None:
        """Plan and send the entry of `candle_signal`'s signal. `account` is read only for
        a signal to plan; the caller asks only once the balance is known."""
        funds = account()
        if funds is None:
            return None
        planned = self.desk.plan(symbol, signal, candles, view.mark, funds,
                                 self.exchange.rules(symbol), self.limits, self.clock.now())
        if symbol in self.desk.last_regime:
            self.counters.set(symbol, "regime_state", self.desk.last_regime[symbol])
        if isinstance(planned, str):
            logger.info("entry skipped symbol={} reason={}", symbol, planned)
            self.desk.refusals.record(symbol, planned)
            return None
        return await self.send(planned, signal.reason)

    async def enter_by_hand(self, symbol: str, side: Side, view: SymbolView,
                            candles: Sequence[Candle], account: Account | None,
                            reason: str) -> Position | str:
        """An operator's /long or /short: a manual signal (trader.entry.manual_signal)
        planned like a strategy's (regime, sizing, heat, margin, both legs) and sent now.
        The position (ENTERING while its answer is unknown), or why there is none. Its key
        starts with "m" so it never shares client ids with a candle's signal entry."""
        if account is None:
            return "the balance was not read from the exchange yet; try again in a minute"
        planned = self.desk.plan(symbol, manual_signal(side, candles, reason), candles,
                                 view.mark, account, self.exchange.rules(symbol), self.limits,
                                 self.clock.now())
        if isinstance(planned, str):
            return planned
        sent = await self.send(self._with_free_manual_key(planned), reason)
        return sent if sent is not None else self.refused.get(symbol) or "the entry was " \
            "not sent: its record could not be saved, an order with its id exists already, " \
            "or (maker entries with TRADEBOT_MAKER_FALLBACK=cancel) there was no book to " \
            "quote at"

    def _with_free_manual_key(self, planned: Position) -> Position:
        """`planned` keyed "m" + this second, or the next second whose entry id has no
        intent yet: a /long, a close and a /long again within one second would otherwise
        find the first entry's id taken. A manual entry is no replayed candle signal: the
        confirmation button (used once) is what makes it happen once."""
        moment = self.clock.now()
        while True:
            keyed = replace(planned, key="m" + position_key(moment))
            if self.store.intent(keyed.next_client_id(OrderRole.ENTRY)[1]) is None:
                return keyed
            moment += timedelta(seconds=1)

    def says_close(self, position: Position, candles: Sequence[Candle]) -> bool:
        """An opposite signal on this closed candle closes the position (never flips it)."""
        return self.desk.new_candle(position.symbol, candles) and \
            self.desk.says_close(position, candles)

    # --- sending ----------------------------------------------------------------------
    async def send(self, planned: Position, reason: str = "") -> Position | None:
        position, client_id = planned.next_client_id(_ENTRY)
        self.refused.pop(position.symbol, None)
        if await self._already_sent(position.symbol, client_id):
            return None
        margin_refusal = await self.margin.before_entry(position.symbol)
        if margin_refusal:          # never an entry on cross margin
            logger.info("entry skipped symbol={} reason={}", position.symbol, margin_refusal)
            self.refused[position.symbol] = margin_refusal
            return None
        intent = await self._entry_order(position, client_id)
        if intent is None:
            return None
        await self._ensure_leverage(position.symbol)
        self.interpreter.adopt(position)          # the record exists before the order leaves
        logger.info("entry symbol={} side={} qty={} type={} price={} sl={} tp={} reason={}",
                    position.symbol, position.side, position.quantity, intent.type,
                    intent.price, position.stop.trigger_price,
                    position.take_profit.trigger_price, reason)
        try:
            result = await self.executor.submit(intent)
        except SaveStateFailure:
            # Write-ahead: an entry whose intent cannot be journaled is never sent.
            logger.error("entry not sent: its intent could not be saved symbol={}",
                         position.symbol)
            self.interpreter.positions.pop(position.symbol, None)
            return None
        if intent.type is _LIMIT:
            event = quote_event(result)
        else:
            event = entry_event(result)
        if event is None:
            return position          # resting, refused for crossing or unknown: next ticks
        if isinstance(event, EntryFailed):
            self.refused[position.symbol] = event.reason      # a /long's reply says it
        return await self.interpreter.apply(position, event)

    async def _entry_order(self, position: Position, client_id: str) -> Intent | None:
        """The MARKET entry, or with TRADEBOT_ENTRY_MODE=maker the first quote at the
        touch; without a book to quote at, the fallback decides (market, or no entry)."""
        now = self.clock.now()
        if self.settings.entry_mode != EntryMode.MAKER:
            return entry_intent(position, client_id, now)
        touch = await self.maker.touch(position.symbol, position.side)
        if touch is not None:
            return quote_intent(position, client_id, touch, position.quantity, now)
        if self.maker.policy.fallback is MakerFallback.CANCEL:
            logger.info("entry skipped: no book to quote at symbol={}", position.symbol)
            self.desk.refusals.record(position.symbol, "no book to quote at")
            return None
        logger.info("no book to quote at: entry at market symbol={}", position.symbol)
        return entry_intent(position, client_id, now)

    def entry_working(self, position: Position, view: SymbolView) -> bool:
        """An open position whose maker-first entry still has quotes to mind."""
        return self.maker.working(position, view)

    async def resolve(self, position: Position,
                      view: SymbolView) -> tuple[Position, Event | None]:
        """The entry's next step on a later tick: a maker-first entry's quotes move on
        (trader/maker_quoter.py); an ENTERING market entry whose answer was lost is
        probed (`outcome`). The position (its entry ids may have moved) and the event to
        apply, if any."""
        if self.maker.handles(position):
            return await self.maker.advance(position, view)
        if position.state is not PositionState.ENTERING:
            return position, None
        return position, await self.outcome(position)

    async def outcome(self, position: Position) -> Event | None:
        """ENTERING on a later tick: what happened to the entry whose answer was lost, as
        the event to apply (EntryFilled, EntryFailed), or None while it may still land."""
        client_id = entry_client_id(position)
        intent = self.store.intent(client_id)
        if intent is None or intent.status.resolved or intent.status is IntentStatus.ACKED:
            order = await self._entry_order_known(position.symbol, client_id)
            event = order_event(order, late=True) if order is not None else (
                EntryFailed("no entry order on the exchange", late=True) if intent is None
                or intent.status in (IntentStatus.FAILED, IntentStatus.EXPIRED) else None)
        else:
            probed = await self.executor.probe(intent)
            if probed.status is IntentStatus.SENT and self.tracker.get(client_id) is None:
                return None                       # may still land: wait, never resend
            order = await self._entry_order_known(position.symbol, client_id)
            event = order_event(order, late=True) if order is not None \
                else EntryFailed(_not_landed(probed), late=True)
        return event

    def answer_lost(self, position: Position) -> bool:
        """An ENTERING position whose entry order was sent and not answered (a 503, a
        timeout): whether it landed is not known until the exchange is asked by its id
        (`outcome`, on the next ticks)."""
        if position.state is not PositionState.ENTERING or self.maker.handles(position):
            return False
        intent = self.store.intent(entry_client_id(position))
        return intent is not None and intent.status is IntentStatus.SENT

    async def _entry_order_known(self, symbol: str, client_id: str) -> Order | None:
        """The entry order read by client id, merged with what the user-data stream said of
        it (OrderTracker.learned): a read served from before its ORDER_TRADE_UPDATE says
        NEW, nothing executed, of an entry the stream reported filled (or expired). What the
        stream said when the read finds nothing (yet); None when neither knows it."""
        read = await self.executor.read_order(symbol, client_id)
        if read is not None:
            return read
        streamed = self.tracker.get(client_id)
        return streamed.order if streamed is not None else None

    async def _already_sent(self, symbol: str, client_id: str) -> bool:
        """A MARKET entry fills at once, so Binance's duplicate-id check cannot help: ask for
        the deterministic id before sending (fresh disk, replayed signal)."""
        if self.store.intent(client_id) is not None:
            return True
        existing = await self.executor.read_order(symbol, client_id)
        if existing is not None:
            logger.warning("entry already on the exchange, not re-sending client_id={}",
                           client_id)
            return True
        return False

    async def _ensure_leverage(self, symbol: str) -> None:
        """Set the configured leverage while the symbol is flat: it applies to this position
        and, because nothing else sets it, stays for its whole life. Set once, it is trusted
        while the user-data stream would tell a change (ACCOUNT_CONFIG_UPDATE,
        `on_leverage_changes`); while the stream is down nothing would: set it again."""
        if self.leverage_set.get(symbol) == self.settings.leverage and self.exchange.streaming:
            return
        await self.executor.read(self.exchange.set_leverage, symbol, self.settings.leverage)
        self.leverage_set[symbol] = self.settings.leverage

    def on_leverage_changes(self, events: Iterable[ExchangeEvent]) -> None:
        """A leverage changed on the exchange (by hand: ACCOUNT_CONFIG_UPDATE) to another
        than the configured one: the next entry on that symbol sets the configured one
        again. An open position keeps the changed one (and its liquidation price): said."""
        for event in events:
            if isinstance(event, LeverageChanged) and event.leverage != self.settings.leverage:
                self.leverage_set.pop(event.symbol, None)
                logger.warning("leverage changed on the exchange symbol={} leverage={} "
                               "configured={}; the next entry sets the configured one, an "
                               "open position keeps it", event.symbol, event.leverage,
                               self.settings.leverage)

    # --- the account ------------------------------------------------------------------
    def account(self, balance: Balance | None, positions: Iterable[Position]) -> Account | None:
        """What sizing needs of the account. The heat and the correlated cluster count
        every position at what it may hold: an ENTERING one (a quote resting, a market
        entry whose answer was lost) at its planned size and stop, an open one whose maker
        entry still works on the rest at its planned size (MakerQuoter.may_hold)."""
        if balance is None:
            return None
        maker = self.maker
        held = tuple(maker.may_hold(p) for p in positions if p.state.at_stake)
        return Account(balance.equity, balance.available,
                       self.risk.fraction(),
                       total_open_risk(held), held)


def entry_client_id(position: Position) -> str:
    """The client id of the position's (last) entry order."""
    return str(ClientId(position.symbol, position.key, OrderRole.ENTRY,
                        position.seq.get(OrderRole.ENTRY.value, 1)))


def _not_landed(probed: Intent) -> str:
    """Why a probed entry with no order on the exchange did not land, for the operator:
    EXPIRED, it was not found once it could no longer land (trader/executor.py `probe`);
    FAILED, its late answer was a refusal (the code and Binance's meaning)."""
    if probed.status is IntentStatus.EXPIRED:
        return "Binance has no order with its id: never placed"
    return probed.detail


def entry_event(result: ActionResult) -> Event | None:
    """The entry order's answer as an event; None while its outcome is unknown."""
    if result.outcome in _NOT_ANSWERED:
        return None          # unknown, or sent before (a restart): resolved by probing
    if not result.ok or result.order is None:
        return EntryFailed(result.reason)
    return order_event(result.order)


def order_event(order: Order, *, late: bool = False) -> Event | None:
    """The entry order as the exchange has it, as an event (None while it rests unfilled).
    `late`: read on a later tick, not its own answer (EntryFailed.late)."""
    if order.filled_qty > 0:
        return EntryFilled(order.filled_qty, order.avg_price,
                           complete=order.status is _FILLED)
    if order.status.terminal:
        return EntryFailed(f"entry {order.status.value} without a fill", late=late)
    return None

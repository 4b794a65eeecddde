"""One symbol's position brought up to date with the exchange's view, terminal detection first:
observe -> step -> manage (`protect`), a position the agent has no record of adopted and
protected (`adopt`; its record built by trader/adoption.py), and orders of ours that outlived
their reason cancelled (`orphans`: trader/orphan_sweep.py)."""

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from loguru import logger

from trader import protection
from trader.adoption import Adoption, adoption_alert
from trader.alerter import Alerter
from trader.balance_keeper import BalanceKeeper
from trader.breakers import Breakers
from trader.clock import Clock
from trader.close_hold import CloseHold
from trader.config import Settings
from trader.domain import CloseReason, ExchangePosition, Fill, Order, OrderRole
from trader.entry_sender import EntrySender
from trader.events import (
    CloseRequested,
    EntryFailed,
    EntryFilled,
    LegSeen,
    PositionGone,
    PositionSizeChanged,
    Tick,
)
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome, clock_offset
from trader.exchange_view import ExchangeView
from trader.executor import Executor
from trader.interpreter import Interpreter
from trader.late_entry_fill import late_fill_alert
from trader.management import trail_atr
from trader.market.history import CandleHistory
from trader.observe import SymbolView, observe, steady
from trader.order_tracker import OrderTracker, TrackedOrder
from trader.orphan_sweep import OrphanSweep
from trader.position import Position, PositionState
from trader.position_fills import fills_of, read_from
from trader.reconcile import addition_cause, cause_unheard, reduced_by_exchange, reduction_cause
from trader.reduction_news import UnsaidReductions
from trader.trade_store import TradeStore

# Read once: a member read on its class goes through 3.11's `EnumType.__getattr__` (~900
# instructions), and every in-position candle compares with them
_ENTERING, _CLOSED = PositionState.ENTERING, PositionState.CLOSED


class PositionKeeper:
    """Feeds the interpreter (the engine's) with what the exchange shows for one symbol."""

    def __init__(self, settings: Settings, exchange: Exchange, executor: Executor,
                 tracker: OrderTracker, store: TradeStore, view: ExchangeView,
                 interpreter: Interpreter, entries: EntrySender, breakers: Breakers,
                 candles: dict[str, CandleHistory], alerter: Alerter, clock: Clock,
                 balances: BalanceKeeper) -> None:
        self.exchange = exchange
        self.executor = executor
        self.tracker = tracker
        self.store = store
        self.view = view
        self.interpreter = interpreter
        self.entries = entries
        self.breakers = breakers
        self.candles = candles
        self.alerter = alerter
        self.clock = clock
        # symbol -> (record, exchange position, orders, live orders) of the last tick that
        # found the record settled and steady: a position record and an ExchangePosition
        # are frozen, and the tracker's `for_symbol` snapshot is the same object only while
        # none of the symbol's orders changed (it copies before a change: a snapshot handed
        # out never changes), so the very same four give the very same answer.
        self._steady: dict[str, tuple[Position, ExchangePosition, Mapping[str, TrackedOrder],
                                      list[Order]]] = {}
        # Orders of ours no leg references any more, cancelled (trader/orphan_sweep.py)
        self.orphans = OrphanSweep(executor, tracker, alerter, clock)
        # Reductions taken without a word yet: no fill known explains them (`tell_cause`)
        self.unexplained = UnsaidReductions()
        # Closes that wait for their maker quote to be known cancelled (trader/close_hold.py)
        self.close_hold = CloseHold()
        # A position found without a record, taken over (trader/adoption.py)
        self.adoption = Adoption(settings, exchange, executor, tracker, store, entries, clock,
                                 balances)

    async def protect(self, position: Position, view: SymbolView,
                      notes: list[str] | None = None,
                      entry_in_reply: bool = False) -> Position | None:
        """Observe, step, manage: terminal detection first. None once it is closed.
        `entry_in_reply`: the operator's command reply tells what the entry did (/close)."""
        if position.state is _ENTERING or self.entries.entry_working(position, view):
            position, view = await self._resolve_entry(position, view, notes,  # + quotes
                                                       entry_in_reply)
            if position.state is _CLOSED:
                return None
        unsaid = self.unexplained.pending      # a dict's own test: every candle passes here
        if unsaid and position.symbol in unsaid:
            await self.tell_cause(position)
        # A settled position the exchange shows as recorded (most ticks of a trade): the
        # observation's events would all be skipped below (trader/observe.py `steady`).
        # Both readings depend only on the record, the exchange's position and the
        # symbol's orders (`view.orders` and `view.live`, both from the tracker): when all
        # are the very ones the last tick found steady, so is this tick.
        kept = self._steady.get(position.symbol)
        if kept is not None and kept[0] is position and kept[1] is view.position \
                and kept[2] is view.orders and kept[3] == view.live:
            settled = quiet = True
        else:
            settled = protection.settled(position)     # read again after a step changed it
            quiet = settled and steady(position, view)
            if quiet:
                self._steady[position.symbol] = (position, view.position, view.orders,
                                                 view.live)
        for event in () if quiet else observe(position, view):
            if type(event) is LegSeen and protection.confirms(position, event, settled):
                continue        # nothing new about a steady leg: its step would be a no-op
            if isinstance(event, PositionSizeChanged):
                event = await self._explained(position, event, view)
            position = await self.interpreter.apply(position, event, notes)
            if position.state is _CLOSED:
                return None
            settled = protection.settled(position)
        if self.close_hold.waits_for_quote(position) and self._close_held(position, view):
            return position
        # by position (now, mark, rules, regime, atr): every in-position candle builds one,
        # and a keyword argument to a class costs a dict (~3,500 instructions here)
        tick = Tick(self.clock.now(), view.mark or None, self.exchange.rules(position.symbol),
                    self.breakers.regime(position.symbol, self.candles[position.symbol]),
                    self._trail_atr(position.symbol))
        # `settled` is `protection.settled` of this very record: read after the entry's
        # step and again after every event applied above (a record is immutable), so the
        # quiet tick need not read it a second time.
        before = position
        # The quiet Tick without a coroutine (most in-position candles), else in full
        interpreter = self.interpreter
        moved = interpreter.quiet_tick(position, tick, settled)
        position = moved if moved is not None else await interpreter.steps(position, tick,
                                                                           notes)
        if quiet and position is not before:
            # The quiet tick's result differs from the steady record by its best price
            # alone, which neither `settled` nor `steady` reads: steady as well, with the
            # same view (a quiet tick sends nothing, so the tracker did not change).
            last_quiet = self.interpreter.last_quiet
            if last_quiet is not None and last_quiet[0] is before \
                    and last_quiet[1] is position:
                self._steady[position.symbol] = (position, view.position, view.orders,
                                                 view.live)
        return None if position.state is _CLOSED else position

    def _close_held(self, position: Position, view: SymbolView) -> bool:
        """A close waiting for its maker quote (trader/close_hold.py) while the quote is
        live or its cancel unanswered: the Tick that would send it is not stepped."""
        now = self.clock.now()
        held, alert = self.close_hold.holds(position, self.entries.entry_working(position, view),
                                            now)
        if alert is not None:
            self.alerter.publish(alert, now)
        return held

    async def follow_heard(self, position: Position, view: SymbolView) -> Position | None:
        """Terminal detection and the size, for a tick that may send nothing (inside a
        Retry-After: trader/engine.py). A position `view` shows gone is closed now (its
        finalize reads nothing then: trader/closing.py); one whose size changed (a partial
        fill of its stop, reduced or added by hand, a partial liquidation) takes the size
        the stream told, who changed it told from the fills the stream told (once one
        does: Binance may push the smaller position before its fill, `tell_cause`), its legs
        following once requests resume (`PositionSizeChanged.heard`), and its position is
        read over REST first thing then (`ExchangeView.heard_size`). Any other difference,
        and every action that needs a request, waits for the window's end. None once
        closed."""
        events = observe(position, view)
        if not events:
            return position
        event = events[0]
        if isinstance(event, PositionSizeChanged):
            event = replace(await self._explained(position, event, view), heard=True)
        elif type(event) is not PositionGone:
            return position
        position = await self.interpreter.apply(position, event)
        if isinstance(event, PositionSizeChanged):
            self.view.heard_size(position.symbol)
        return None if position.state is _CLOSED else position

    async def _explained(self, position: Position, event: PositionSizeChanged,
                         view: SymbolView) -> PositionSizeChanged:
        """`event` with who changed the size, in words (and Binance's reason when its own
        order made it smaller)."""
        if event.quantity < position.quantity:
            fills = await self._fills_since_open(position)
            executed = self._legs_executed(position)
            if self.unexplained.hold(position, event.quantity,
                                     cause_unheard(position, event.quantity, fills, executed),
                                     self.clock.now()):
                return event        # taken without a word: said by `tell_cause`
            return replace(event, cause=reduction_cause(position, fills, executed),
                           by_exchange=reduced_by_exchange(position, fills))
        return replace(event, cause=await self._who_added(position, event.quantity, view))

    async def tell_cause(self, position: Position) -> None:
        """Who made a reduction taken without a word (`_explained`): said once the fills
        known explain the size (the stream's ORDER_TRADE_UPDATE came; over REST, the trade
        list), else past WAIT_FOR_FILL with its cause not known yet, the cause after
        (trader/reduction_news.py `UnsaidReductions.settle`)."""
        if not self.unexplained.awaits(position):
            return
        fills = await self._fills_since_open(position)
        executed = self._legs_executed(position)
        alert = self.unexplained.settle(
            position, cause_unheard(position, position.quantity, fills, executed),
            reduction_cause(position, fills, executed), reduced_by_exchange(position, fills),
            self.clock.now(), keep_waiting=fills is None or self.executor.circuit_open())
        if alert is not None:
            self.alerter.publish(alert, self.clock.now())

    def _trail_atr(self, symbol: str) -> Decimal | None:
        """ATR(14) for an ATR trailing distance (TRADEBOT_TRAILING_DISTANCE=1.5atr), else None."""
        if not self.interpreter.policy.trailing_distance.in_atr:
            return None
        return trail_atr(self.candles[symbol].closed())

    async def _resolve_entry(self, position: Position, view: SymbolView,
                             notes: list[str] | None, in_reply: bool = False
                             ) -> tuple[Position, SymbolView]:
        """The entry whose answer was lost: filled, failed or still unknown. Filled while the
        exchange holds nothing on our side means it was opened and closed while nobody
        watched (a restart): confirmed by a fresh read, it is finalized, never protected
        (protecting it would send its legs again). A maker-first entry's quotes move on
        here too, open or not (trader/maker_quoter.py).

        And the view the tick's observation must use: `view` when this step sent nothing,
        else one read afresh after it. `view` was taken before the step's orders (a maker
        entry's market rest, a quote cancelled, the legs of the entry's fill): observed
        with it, a position just filled reads as flat (closed "by hand", then adopted as
        somebody else's) and a size just grown as the older one. A fresh read, because
        the user-data stream's word on those orders is read only at the next tick."""
        actions = self.executor.actions_sent
        position, event = await self.entries.resolve(position, view)
        if in_reply and isinstance(event, EntryFailed):
            event = replace(event, answered=True)    # said once: by the reply
        read_after = actions
        if isinstance(event, EntryFilled) and view.position.side is not position.side:
            view = await self.view.view(position.symbol, fresh=True)
            read_after = self.executor.actions_sent
            if view.position.side is not position.side:
                event = PositionGone(entry=event)
        if event is not None:
            position = await self.interpreter.apply(position, event, notes)
        if self.executor.actions_sent != read_after and position.state is not _CLOSED:
            view = await self.view.view(position.symbol, fresh=True)
        return position, view

    async def adopt(self, symbol: str, view: SymbolView, to_close: bool = False
                    ) -> Position | None:
        """A position the agent holds no record of (a lost database, or opened by hand):
        adopted (when TRADEBOT_ADOPT_POSITIONS) and protected. None when left alone.
        `to_close`: the operator's /close asked for it (adopted whatever the setting, which
        is about the agent taking positions over by itself; the alert says why)."""
        adopted = await self.adoption.adopted(symbol, view, to_close,
                                              self.interpreter.policy.taker_fee)
        if adopted is None:
            return None
        position = adopted.position
        self.interpreter.adopt(position)
        if adopted.late is not None and not to_close:     # a /close closes it itself
            return await self._close_late_fill(position, view, *adopted.late)
        self.alerter.publish(adoption_alert(symbol, position, ours=adopted.ours,
                                            to_close=to_close,
                                            legs=self.adoption.legs_text(position, view)),
                             self.clock.now())
        return await self.protect(position, view)

    async def _close_late_fill(self, position: Position, view: SymbolView, closed: Position,
                               fill: Fill) -> Position | None:
        """A closed record's quote that filled after its close: protected, then closed at
        market (the operator had asked to be out), whatever TRADEBOT_ADOPT_POSITIONS says."""
        self.alerter.publish(late_fill_alert(closed, fill, position), self.clock.now())
        protected = await self.protect(position, view)
        if protected is None:
            return None
        closing = await self.interpreter.apply(protected, CloseRequested(CloseReason.COMMAND))
        return None if closing.state is _CLOSED else closing

    async def _who_added(self, position: Position, quantity: Decimal,
                         view: SymbolView) -> str:
        """Who made the position larger, in words (`reconcile.addition_cause`); "" for its
        own entry still filling."""
        fills = await self._fills_since_open(position)
        return addition_cause(position, quantity, fills,
                              self.entries.entry_working(position, view))

    async def _fills_since_open(self, position: Position) -> list[Fill] | None:
        """The symbol's trades since the position opened (from `read_from`: a host clock
        ahead of Binance's would cut its entry fill), to tell who changed its size; None when
        the read failed (the cause is then told without them). Inside a Retry-After nothing
        may be read: the position's fills the user-data stream told (journaled) instead."""
        offset = clock_offset(self.exchange)
        if self.executor.circuit_open():
            return fills_of(position, self.store.fills(position.symbol,
                                                       read_from(position, offset)),
                            offset=offset)
        try:
            return await self.executor.read(self.exchange.fills, position.symbol,
                                            read_from(position, offset))
        except (ExchangeError, UnknownOutcome) as exc:
            logger.warning("fills unavailable to explain a size change error={}", exc)
            return None

    def _legs_executed(self, position: Position) -> frozenset[OrderRole]:
        """The roles of the position's legs whose order executed part, as the tracker knows
        it (the stream's ALGO_UPDATE "aq" of a stop whose MARKET child filled in part)."""
        roles = set()
        for leg in position.legs:
            tracked = self.tracker.get(leg.order.client_id if leg.order else None)
            if tracked is not None and tracked.order.filled_qty > 0:
                roles.add(leg.role)
        return frozenset(roles)

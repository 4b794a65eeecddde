"""Orders of ours that outlive their reason, cancelled: on a flat symbol every one is a
leftover (a take-profit would act on the next position); on an open one, anything its legs no
longer reference (a superseded stop whose cancel failed). A leftover the exchange keeps
listing after its cancels were answered (a stop stuck in TRIGGERING answers -2011 and stays:
trader/stuck_trigger.py) is given up on after LEFTOVER_CANCELS, said once, and blocks entries
on its symbol while it is listed (`leftover_refusal`).

    orphans = OrphanSweep(executor, tracker, alerter, clock)
    if not orphans.nothing_to_sweep(symbol, position):      # most ticks: nothing to look at
        lines = await orphans.sweep(symbol, position)        # one line per order cancelled
"""

from collections.abc import Mapping

from loguru import logger

from trader import display
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.domain import Order, OrderRole
from trader.executor import Executor
from trader.order_tracker import OrderTracker, TrackedOrder
from trader.position import Leg, Position, PositionState

_ENTERING = PositionState.ENTERING
LEFTOVER_CANCELS = 3      # cancels of a leftover order that still reads live, then left alone


class OrphanSweep:
    """See the module docstring."""

    def __init__(self, executor: Executor, tracker: OrderTracker, alerter: Alerter,
                 clock: Clock) -> None:
        self.executor = executor
        self.tracker = tracker
        self.alerter = alerter
        self.clock = clock
        # symbol -> (tracker snapshot, position key, stop, take-profit, TP1) of the last
        # sweep that found nothing to cancel: what it looked at is the symbol's live orders
        # (the tracker's `for_symbol` snapshot is the same object only while none of them changed) and
        # the client ids the legs hold (legs are frozen: the very same legs hold the very
        # same ids), so the very same five give the very same answer: nothing.
        self._swept: dict[str, tuple[Mapping[str, TrackedOrder], str, Leg, Leg,
                                     Leg | None]] = {}
        # client id -> cancels of a leftover the exchange answered (-2011 "unknown order",
        # or acknowledged) that still read live after them: one stuck TRIGGERING does so
        # (trader/stuck_trigger.py); past LEFTOVER_CANCELS it is left alone, said once, not
        # cancelled every tick. A cancel that failed (5xx, a timeout) counts for nothing:
        # tried again on every sweep.
        self._uncancelled: dict[str, int] = {}

    def nothing_to_sweep(self, symbol: str, position: Position | None) -> bool:
        """True when `sweep(symbol, position)` would cancel nothing, told without
        its coroutine or a look at the orders: no live order on the symbol (most flat
        ticks), an entry still working, or an open position's ticks (a trade's most) whose
        legs and live orders are the very ones the last sweep found clean (see `_swept`).
        False: the sweep is to run (it may still find nothing)."""
        if not self.tracker.has_live(symbol):
            return True
        if position is None:
            return False
        if position.state is _ENTERING:
            return True
        kept = self._swept.get(symbol)
        return kept is not None and kept[0] is self.tracker.for_symbol(symbol) \
            and kept[1] == position.key and kept[2] is position.stop \
            and kept[3] is position.take_profit and kept[4] is position.take_profit_1

    async def sweep(self, symbol: str, position: Position | None) -> list[str]:
        """No order of ours outlives its reason: on a flat symbol every one is a leftover (a
        take-profit would act on the next position); on an open one, anything its legs no
        longer reference (a superseded stop whose cancel failed). One line per order
        cancelled."""
        if self.nothing_to_sweep(symbol, position):
            return []
        snapshot = self.tracker.for_symbol(symbol)
        clean = None if position is None else (snapshot, position.key, position.stop,
                                                position.take_profit, position.take_profit_1)
        wanted: set[str | None] = set()
        if position is not None:
            for leg in position.legs:
                wanted |= {leg.pending, *leg.superseded,
                           leg.order.client_id if leg.order else None}
        lines = []
        for order in self.tracker.ours_live(symbol):
            if order.client_id in wanted or (position is not None and order.role is
                                             OrderRole.ENTRY and position.owns(order.client_id)):
                continue   # a leg, or the rest of this position's own entry
            if self._uncancelled.get(order.client_id, 0) >= LEFTOVER_CANCELS:
                continue   # said once already (`_still_live`)
            final = await self.executor.cancel_and_verify(symbol, order.client_id)
            if final is not None and final.status.live \
                    and order.client_id in self.executor.cancel_answered:
                self._still_live(order, final)
                continue
            outcome = f"the exchange says {final.status.value}" if final \
                else "the exchange no longer lists it"
            line = f"{symbol}: leftover order cancelled, {outcome} ({order.client_id})"
            # The other leg of a position that just closed is routine; anything else is not.
            routine = position is None and order.role in (
                OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1)
            logger.log("INFO" if routine else "WARNING", "{}", line)
            lines.append(line)
        if clean is not None and not lines:
            self._swept[symbol] = clean
        return lines

    def leftover_refusal(self, symbol: str) -> str:
        """Why no entry on `symbol` now: a leftover of ours given up on (`_still_live`) that
        the exchange still lists could fill or reduce the new position; "" when none."""
        if not self._uncancelled:          # nearly always: no cancel was ever answered so
            return ""
        stuck = sorted(order.client_id for order in self.tracker.ours_live(symbol)
                       if self._uncancelled.get(order.client_id, 0) >= LEFTOVER_CANCELS)
        if not stuck:
            return ""
        return (f"{symbol}: an old order of ours that cannot be cancelled is still listed "
                f"({', '.join(stuck)}); cancel it in the Binance app first")

    def _still_live(self, order: Order, final: Order) -> None:
        """A leftover read back live after the exchange answered its cancel:
        tried again on the next sweeps, at most LEFTOVER_CANCELS times; then one alert, and
        it is left alone."""
        tries = self._uncancelled[order.client_id] = self._uncancelled.get(order.client_id, 0) + 1
        logger.warning("{}: leftover order still {} after its cancel ({}), try {} of {}",
                       order.symbol, final.status.value, order.client_id, tries,
                       LEFTOVER_CANCELS)
        if tries < LEFTOVER_CANCELS:
            return
        level = f" at {display.number(final.trigger_price)}" if final.trigger_price else ""
        risk = "reduce-only, it cannot open a position but could still reduce the next one" \
            if final.reduce_only or final.close_position else "it could still fill"
        self.alerter.publish(Alert(AlertName.PROTECTION, (
            f"{order.symbol}: a leftover order of ours cannot be cancelled: {order.client_id} "
            f"({final.type.value} {final.side.value} {display.number(final.quantity)}{level}) "
            f"still reads {final.status.value} after {tries} cancels (an algo order stuck in "
            f"TRIGGERING answers a cancel -2011 and stays listed); no more cancels are sent. "
            f"{risk.capitalize()}: cancel it in the Binance app. No new entry on "
            f"{order.symbol} while it is listed"), order.symbol),
            self.clock.now())

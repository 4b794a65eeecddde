"""The sentinel: the only code that attaches and re-attaches protection (TP and SL).

Every open position must have a reduce-only stop-loss and take-profit on the exchange
covering its quantity. A leg that was never placed is attached at once. A leg that was
placed and is now missing is repaired only after it has been missing for the debounce
time AND the debounce cycles, so a slow exchange acknowledgement never causes a second
order. A stop-loss missing for more than 2 cycles raises SL_MISSING (CRITICAL).
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from loguru import logger

from trader.alerts import Alert, Alerter, AlertName
from trader.clock import Clock
from trader.domain import CloseReason, Order, OrderRole, OrderStatus, Position
from trader.exchange.errors import Outcome
from trader.executor import ActionResult, Executor
from trader.intents import exit_intent
from trader.lifecycle import Snapshot, adopt_leg_prices, covers, find_legs, protected
from trader.telemetry import Counters

SL_MISSING_AFTER_CYCLES = 2


@dataclass
class LegWatch:
    """How long one leg of one position has been missing, and when we last tried."""
    missing_cycles: int = 0
    alerted: bool = False
    wait_from: datetime | None = None
    wait_cycles: int = 0

    def reset(self) -> None:
        self.missing_cycles, self.alerted, self.wait_from, self.wait_cycles = 0, False, None, 0


@dataclass(frozen=True, slots=True)
class ProtectResult:
    position: Position
    flatten: CloseReason | None = None   # a protective level is already passed: close now
    detail: str = ""
    verified: bool = False


@dataclass
class Sentinel:
    executor: Executor
    alerter: Alerter
    clock: Clock
    counters: Counters
    debounce: timedelta = timedelta(seconds=60)
    debounce_cycles: int = 3
    watches: dict[tuple[str, str, OrderRole], LegWatch] = field(default_factory=dict)

    async def protect(self, position: Position, snap: Snapshot) -> ProtectResult:
        """Make sure both legs exist; repair after the debounce; report what is missing."""
        legs = find_legs(position, snap)
        position = adopt_leg_prices(position, legs)
        verified = 0
        for role, leg in ((OrderRole.STOP_LOSS, legs.stop), (OrderRole.TAKE_PROFIT, legs.take_profit)):
            result = await self._guard_leg(position, role, leg, snap)
            if result.flatten is not None:
                return result
            position = result.position
            verified += result.verified
        if verified == 2:
            position = protected(position)
        return ProtectResult(position, verified=verified == 2)

    async def _guard_leg(self, position: Position, role: OrderRole, leg: Order | None,
                         snap: Snapshot) -> ProtectResult:
        watch = self.watches.setdefault((position.symbol, position.key, role), LegWatch())
        if leg is not None and covers(leg, position):
            watch.reset()
            return ProtectResult(position, verified=True)
        now = self.clock.now()
        never_placed = _leg_id(position, role) is None and watch.wait_from is None
        if not never_placed:
            watch.missing_cycles += 1
            watch.wait_cycles += 1
            watch.wait_from = watch.wait_from or now
            self._alert_if_stop_missing(position, role, watch, now)
            if watch.wait_cycles < self.debounce_cycles or now - watch.wait_from < self.debounce:
                logger.info("leg missing, debouncing symbol={} role={} cycles={}",
                            position.symbol, role, watch.wait_cycles)
                return ProtectResult(position)
            self.counters.incr(position.symbol, "reattach_attempts")
        result = await self.attach(position, role, snap)
        if result.verified:
            if not never_placed:
                self.counters.incr(position.symbol, "reattach_success")
            watch.reset()
        else:
            # failed: wait a full debounce (time and cycles) before the next try, no storm
            watch.wait_from, watch.wait_cycles = now, 0
        return result

    def _alert_if_stop_missing(self, position: Position, role: OrderRole, watch: LegWatch,
                               now: datetime) -> None:
        if role is not OrderRole.STOP_LOSS or watch.alerted:
            return
        if watch.missing_cycles > SL_MISSING_AFTER_CYCLES:
            watch.alerted = True
            self.alerter.publish(Alert(
                AlertName.SL_MISSING, f"{position.symbol}: stop-loss missing for "
                f"{watch.missing_cycles} cycles on a {position.side.label} {position.quantity}; "
                "re-attaching after the debounce", position.symbol), now)

    async def attach(self, position: Position, role: OrderRole, snap: Snapshot) -> ProtectResult:
        """Place one protective leg for the position's full quantity and verify it."""
        price = position.sl_price if role is OrderRole.STOP_LOSS else position.tp_price
        if price is None:
            logger.error("no price for leg symbol={} role={}", position.symbol, role)
            return ProtectResult(position, detail="no price")
        position, intent = exit_intent(position, role, position.quantity, self.clock.now(), price)
        result = await self.executor.submit(intent)
        if result.ok and await self._verified(position, intent.client_id):
            self.counters.incr(position.symbol, "sl_attached" if role is OrderRole.STOP_LOSS
                               else "tp_attached")
            key = "sl_client_id" if role is OrderRole.STOP_LOSS else "tp_client_id"
            return ProtectResult(replace(position, **{key: intent.client_id}), verified=True)
        return self._attach_failed(position, role, result, price, snap.mark)

    async def _verified(self, position: Position, client_id: str) -> bool:
        order = await self.executor.read(self.executor.exchange.order_by_client_id,
                                         position.symbol, client_id)
        ok = order is not None and order.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
        if not ok:
            logger.warning("leg not verified symbol={} client_id={} status={}", position.symbol,
                           client_id, order.status if order else None)
        return ok

    def _attach_failed(self, position: Position, role: OrderRole, result: ActionResult,
                       price: Decimal, mark: Decimal) -> ProtectResult:
        now = self.clock.now()
        code = result.verdict.code if result.verdict else 0
        if code == -2021:
            # Still "would immediately trigger" after the retry: the level is already passed.
            reason = CloseReason.STOP_LOSS if role is OrderRole.STOP_LOSS else CloseReason.TAKE_PROFIT
            self.alerter.publish(Alert(
                AlertName.POSITION_UNPROTECTED, f"{position.symbol}: {role.name} level {price} "
                f"already passed (mark {mark}); closing at market", position.symbol), now)
            return ProtectResult(position, flatten=reason, detail="level passed")
        if result.outcome is Outcome.UNKNOWN:
            return ProtectResult(position, detail="outcome unknown; probing")
        name = AlertName.POSITION_UNPROTECTED if role is OrderRole.STOP_LOSS else AlertName.PROTECTION
        self.alerter.publish(Alert(
            name, f"{position.symbol}: could not attach {role.name}: {result.reason}",
            position.symbol, dedup_key=f"attach:{position.symbol}:{role}"), now)
        return ProtectResult(position, detail=result.reason)

    def attached(self, position: Position, role: OrderRole) -> bool:
        """As of the last check: the leg exists on the exchange (not missing, not failed)."""
        watch = self.watches.get((position.symbol, position.key, role))
        return _leg_id(position, role) is not None and (watch is None or watch.missing_cycles == 0)

    def forget(self, position: Position) -> None:
        for role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT):
            self.watches.pop((position.symbol, position.key, role), None)


def _leg_id(position: Position, role: OrderRole) -> str | None:
    return position.sl_client_id if role is OrderRole.STOP_LOSS else position.tp_client_id

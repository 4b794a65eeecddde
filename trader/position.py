"""The agent's record of one position, and of the two protective legs that guard it.

A `Position` is changed by one function only, `trader.lifecycle.step`; everything here is a
frozen value. Each protective `Leg` (stop-loss, take-profit) says where its order should
be (`trigger_price`, rounded onto the tick grid when it was planned) and what is known of
the order that protects now (`order`), of a placement whose answer is not known yet
(`pending`) and of refused placements (`failures`, `retry_at`). The leg should always
cover the position's whole quantity; `trader.protection` decides what to place or cancel.

Glossary (one name per concept, from strategy to wire; see docs/ARCHITECTURE.md):
- trigger price: where a stop-loss or take-profit fires (Binance `triggerPrice`);
- quantity: unsigned size of the position or an order (Binance `quantity`, `positionAmt`);
- client id: the id the agent gives an order (`newClientOrderId` / `clientAlgoId`).
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from trader.domain import ZERO, ClientId, CloseReason, OrderRole, Side


class PositionState(StrEnum):
    """Lifecycle of one position; the transitions are in trader/lifecycle.py."""
    ENTERING = "ENTERING"          # entry sent, no fill seen yet
    ATTACHING = "ATTACHING"        # open; a leg is missing or does not cover the quantity yet
    PROTECTED = "PROTECTED"        # open; both legs live for the whole quantity
    CLOSING = "CLOSING"            # a market close is in flight
    CLOSED = "CLOSED"              # final: nothing changes it any more

    @property
    def open(self) -> bool:
        return self in (PositionState.ATTACHING, PositionState.PROTECTED, PositionState.CLOSING)


class LegStatus(StrEnum):
    LIVE = "LIVE"          # seen live on the exchange (or accepted by it)
    MISSING = "MISSING"    # absent from the open orders, and no final status known yet


@dataclass(frozen=True, slots=True)
class LegOrder:
    """The exchange order that protects a leg now."""
    client_id: str
    trigger_price: Decimal
    quantity: Decimal                      # what it still closes (as placed, minus fills)
    status: LegStatus = LegStatus.LIVE
    missing_since: datetime | None = None
    missing_cycles: int = 0

    @property
    def ours(self) -> bool:
        """False for an order placed by hand (adopted as protection, never fought)."""
        return ClientId.parse(self.client_id) is not None


@dataclass(frozen=True, slots=True)
class Leg:
    """One protective leg: where it should be and what is on the exchange for it."""
    role: OrderRole                        # STOP_LOSS or TAKE_PROFIT
    trigger_price: Decimal                 # where it should be, on the tick grid
    order: LegOrder | None = None          # the order protecting now
    pending: str | None = None             # client id sent, answer unknown: probe, never resend
    failures: int = 0                      # consecutive refused placements
    retry_at: datetime | None = None       # no placement before this (capped backoff)
    alerted: bool = False                  # an alert went out for this episode (all-clear owed)

    def covers(self, quantity: Decimal) -> bool:
        order = self.order
        return order is not None and order.status is LegStatus.LIVE and order.quantity >= quantity

    def matches(self, quantity: Decimal) -> bool:
        """Live, for exactly the quantity, at the planned trigger price: nothing to change."""
        order = self.order
        return (order is not None and order.status is LegStatus.LIVE
                and order.quantity == quantity and order.trigger_price == self.trigger_price)


@dataclass(frozen=True, slots=True)
class Position:
    """The agent's record of one position from entry to close."""
    symbol: str
    key: str
    side: Side
    state: PositionState
    quantity: Decimal                      # open size now (unsigned)
    entry_price: Decimal
    leverage: int
    opened_at: datetime
    stop: Leg
    take_profit: Leg
    initial_quantity: Decimal = ZERO       # what the entry asked for
    initial_stop_price: Decimal | None = None
    partial_taken: bool = False
    breakeven_done: bool = False
    trailing_active: bool = False
    best_price: Decimal | None = None
    time_limit: timedelta = timedelta(minutes=40)
    cooldown: timedelta = timedelta(minutes=5)
    trail_activation: Decimal = Decimal("0.006")
    seq: dict[str, int] = field(default_factory=dict)
    closing_reason: CloseReason | None = None   # why a close is in flight (CLOSING)
    close_attempts: int = 0
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    adopted: bool = False
    closed_at: datetime | None = None
    close_reason: CloseReason | None = None
    exit_price: Decimal | None = None

    @property
    def legs(self) -> tuple[Leg, Leg]:
        return self.stop, self.take_profit

    def leg(self, role: OrderRole) -> Leg:
        return self.stop if role is OrderRole.STOP_LOSS else self.take_profit

    def with_leg(self, leg: Leg) -> "Position":
        if leg.role is OrderRole.STOP_LOSS:
            return replace(self, stop=leg)
        return replace(self, take_profit=leg)

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity * self.side.sign

    @property
    def protected(self) -> bool:
        return self.stop.covers(self.quantity) and self.take_profit.covers(self.quantity)

    def next_client_id(self, role: OrderRole) -> tuple["Position", str]:
        """Allocate the next deterministic client id for `role` on this position."""
        seq = self.seq.get(role.value, 0) + 1
        client_id = str(ClientId(self.symbol, self.key, role, seq))
        return replace(self, seq={**self.seq, role.value: seq}), client_id

    def owns(self, client_id: str) -> bool:
        parsed = ClientId.parse(client_id)
        return parsed is not None and parsed.symbol == self.symbol \
            and parsed.position_key == self.key

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return (mark - self.entry_price) * self.signed_quantity

    def risk_amount(self) -> Decimal:
        """Money lost if the stop fills now (0 once the stop is at or past breakeven)."""
        loss = (self.entry_price - self.stop.trigger_price) * self.signed_quantity
        return max(loss, ZERO)

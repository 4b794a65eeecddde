"""The agent's record of one position, and of the protective legs that guard it.

A `Position` is changed by one function only, `trader.lifecycle.step`; everything here is a
frozen value. Each protective `Leg` (stop-loss, take-profit) says where its order should
be (`trigger_price`, rounded onto the tick grid when it was planned) and what is known of
the order that protects now (`order`), of a placement whose answer is not known yet
(`pending`, sent at `pending_trigger`; a stop's lost ones it no longer waits for,
`superseded`) and of refused placements (`failures`, `retry_at`). `Position.leg_quantity` says what each leg's order should close: the stop
always the whole quantity; the take-profit the whole quantity too under the one-TP plan,
and under the two-TP plan (`ExitPlan.TWO`, trader/management.py) TP1 (`take_profit_1`,
role `t1`) closes its part and TP2 (`take_profit`, role `tp`, at the strategy's target)
the rest, so that together they close exactly the position. `trader.protection` decides
what to place or cancel.

Glossary (one name per concept, from strategy to wire; see docs/ARCHITECTURE.md):
- trigger price: where a stop-loss or take-profit fires (Binance `triggerPrice`);
- quantity: unsigned size of the position or an order (Binance `quantity`, `positionAmt`);
- client id: the id the agent gives an order (`newClientOrderId` / `clientAlgoId`).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from trader.domain import ZERO, ClientId, CloseReason, FeeInKind, OrderRole, Side
from trader.evolve import evolve
from trader.fast_init import fast_init

# Read on every tick: module names, not enum members through their class (~0.1 us each).
STOP_LOSS, TAKE_PROFIT_1 = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT_1
LEG_FIELDS = {STOP_LOSS: "stop", OrderRole.TAKE_PROFIT: "take_profit",
              TAKE_PROFIT_1: "take_profit_1"}       # the Position field of each leg's role


class PositionState(StrEnum):
    """Lifecycle of one position; the transitions are in trader/lifecycle.py."""
    ENTERING = "ENTERING"          # entry sent, no fill seen yet
    ATTACHING = "ATTACHING"        # open; a leg is missing or does not cover the quantity yet
    PROTECTED = "PROTECTED"        # open; both legs live for the whole quantity
    CLOSING = "CLOSING"            # a market close is in flight
    CLOSED = "CLOSED"              # final: nothing changes it any more

    @property
    def open(self) -> bool:
        return self in _OPEN_STATES

    @property
    def at_stake(self) -> bool:
        """Held, or may be held any moment: open, or ENTERING (a maker quote resting, a
        market entry whose answer was lost). What portfolio heat counts: a limit meant to
        bound what can be lost counts what may fill."""
        return self is not PositionState.CLOSED


_OPEN_STATES = frozenset({PositionState.ATTACHING, PositionState.PROTECTED,
                          PositionState.CLOSING})


class ExitPlan(StrEnum):
    """How the position takes profit (TRADEBOT_EXIT_PLAN, fixed when it is planned)."""
    ONE = "one"        # one take-profit for everything (+ the market partial close)
    TWO = "two"        # TP1 for part of it, then the stop to breakeven; TP2 for the rest


class LegStatus(StrEnum):
    LIVE = "LIVE"          # seen live on the exchange (or accepted by it)
    MISSING = "MISSING"    # absent from the open orders, and no final status known yet


LIVE = LegStatus.LIVE      # a module name: read for every leg on every tick


@fast_init          # one per leg placed
@dataclass(frozen=True, slots=True)
class LegOrder:
    """The exchange order that protects a leg now."""
    __json_text_kept__ = True      # never changes, all the way down (storage/json_writer.py)
    client_id: str
    trigger_price: Decimal
    quantity: Decimal                      # what it still closes (as placed, minus fills)
    status: LegStatus = LegStatus.LIVE
    missing_since: datetime | None = None
    missing_cycles: int = 0
    # Since when the mark has been at or past its trigger with the position still open
    # (trader/stuck_trigger.py), None while it is not; `stuck`: that lasted past the grace,
    # so Binance triggered it and it did not execute: not working protection any more.
    passed_since: datetime | None = None
    stuck: bool = False

    @property
    def ours(self) -> bool:
        """False for an order placed by hand (adopted as protection, never fought)."""
        return ClientId.parse(self.client_id) is not None


@fast_init          # two per position, more copies by evolve
@dataclass(frozen=True, slots=True)
class Leg:
    """One protective leg: where it should be and what is on the exchange for it."""
    __json_text_kept__ = True      # never changes, all the way down (storage/json_writer.py)
    role: OrderRole                        # STOP_LOSS, TAKE_PROFIT or TAKE_PROFIT_1
    trigger_price: Decimal                 # where it should be, on the tick grid
    order: LegOrder | None = None          # the order protecting now
    pending: str | None = None             # client id sent, answer unknown: probe, never resend
    # The trigger `pending` was sent at: the plan may move while its answer is unknown (/sl,
    # trailing, breakeven), and the order found then is at this level, not the plan's.
    pending_trigger: Decimal | None = None
    # The stop-loss placements whose answers were lost while nothing covered the position,
    # oldest first: not waited for, `pending` is the backup of the last (trader/stop_backup.py,
    # at most `MAX_STOPS_IN_FLIGHT` with `pending`). Each is probed until its outcome is
    # known; one that shows up live is cancelled, unless it is all that protects. A record
    # written when there could be one only (a client id or null) is read as this tuple
    # (trader/position_body.py).
    superseded: tuple[str, ...] = ()
    failures: int = 0                      # consecutive refused placements
    retry_at: datetime | None = None       # no placement before this (capped backoff)
    alerted: bool = False                  # an alert went out for this episode (all-clear owed)
    # The operator was told the stop's placements are all unanswered while nothing covers
    # the position (trader/stop_backup.py `unanswered_alert`), once per round of them: first
    # at `unanswered_since`, last while `unanswered_out` were out. The all-clear
    # (trader/protection.py `all_clear`) ends the episode.
    unanswered_since: datetime | None = None
    unanswered_out: tuple[str, ...] = ()
    # That alert was of a move refused while the old order still covered the leg: the
    # position was never without it, so the all-clear says the move went through.
    alerted_move: bool = False

    @property
    def unanswered_told(self) -> bool:
        """SL_MISSING said of this episode's unanswered placements (`unanswered_since`)."""
        return self.unanswered_since is not None

    def covers(self, quantity: Decimal) -> bool:
        order = self.order
        return order is not None and order.status is LIVE and order.quantity >= quantity

    def matches(self, quantity: Decimal) -> bool:
        """Live, for exactly the quantity, at the planned trigger price: nothing to change."""
        order = self.order
        return (order is not None and order.status is LIVE
                and order.quantity == quantity and order.trigger_price == self.trigger_price)


@fast_init          # one per position
@dataclass(frozen=True, slots=True)
class RegimeAnchor:
    """Where the legs were planned and under which volatility regimes (names of
    `trader.strategy.regime.Regime`); trader/regime_adjust.py moves them from these."""
    __json_text_kept__ = True      # never changes, all the way down (storage/json_writer.py)
    planned: str                           # the regime at entry
    applied: str                           # the regime the legs follow now
    stop: Decimal                          # the stop-loss trigger as planned at entry
    take_profit: Decimal                   # the take-profit trigger as planned at entry
    take_profit_1: Decimal | None = None   # TP1's trigger as planned (two-TP plan), else None


@dataclass(frozen=True, slots=True)
class CloseRefusedForNow:
    """A market close Binance refused for a reason that waiting cures (a 503 "Service
    Unavailable.", -1008, -1001, -4131: `Verdict.refused_for_now`): sent again at
    `next_at` (trader/close_retry.py's backoff), never counted towards the give-up.
    `since`: the first refusal of this spell; `told`: its one alert (over a minute) sent."""
    reason: str                            # "503 Service Unavailable", "-1008 REQUEST_THROTTLED"
    since: datetime
    refusals: int
    next_at: datetime
    told: bool = False


@fast_init          # one per entry (copies: evolve)
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
    take_profit: Leg                       # the strategy's target (TP2 of the two-TP plan)
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
    close_attempts: int = 0                # closes of this request counted towards the give-up
    close_refused: CloseRefusedForNow | None = None   # waiting out a refusal for now
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    adopted: bool = False
    closed_at: datetime | None = None
    close_reason: CloseReason | None = None
    exit_price: Decimal | None = None
    regime: RegimeAnchor | None = None     # None: not anchored yet (adopted, older records)
    # The level the operator's /sl set: while the stop is there, the regime rule leaves it
    # (trader/regime_adjust.py); the trail and breakeven may still tighten it. None: never set.
    operator_stop: Decimal | None = None
    # Our own position found again on a wiped disk (trader/reconcile.py): who set its stop
    # (the plan, the operator's /sl, the trail, breakeven) is not known, so the regime rule
    # only ever tightens it (trader/regime_adjust.py).
    picked_up: bool = False
    exit_plan: ExitPlan = ExitPlan.ONE
    take_profit_1: Leg | None = None       # TP1 of the two-TP plan; None once it filled
    tp1_quantity: Decimal = ZERO           # TP1's part of `initial_quantity`
    # The final record: what its closing fills closed in all, i.e. the size it actually held
    # (a maker entry may fill less than `initial_quantity`); 0 until closed, and on records
    # closed before it was kept (trader.close_record.traded_size falls back then).
    traded_quantity: Decimal = ZERO
    # The final record's fees charged in another asset than USDT (BNB with "BNB burn" on),
    # each with its USDT value, already in `fees`, or None: its price could not be read, so
    # `fees` leaves it out (trader/fee_value.py). () when every fee was charged in USDT.
    fees_in_kind: tuple[FeeInKind, ...] = ()
    # What the entry's plan risks at its stop (trader/risk.py `EntryPlan.risk_amount`, fees
    # included): a maker entry's later orders are sized to what is left of it, however far
    # the price ran (trader/maker_entry.py `EntryRisk`). 0: not known (adopted, and records
    # from before it was kept).
    risk_budget: Decimal = ZERO
    # Its maker entry's quoting is over (given up for any reason: the timeout, a close,
    # /shutdown, its exit rules began, its risk budget used, or complete): nothing more is
    # quoted nor bought into it, after a restart too (trader/maker_quoter.py). False on a
    # market entry's record (nothing to quote) and on records from before it was kept.
    quoting_over: bool = False
    # Why its maker entry's quoting is being given up ("" when it is not): kept, journaled,
    # the moment the give-up is decided, before the quote's cancel leaves. Until the quote
    # is known ended (then `quoting_over`) every tick cancels it again and reads it back,
    # whatever holds by then: a /resume, a pause's or a breaker's end, a restart in between
    # revive nothing (trader/maker_quoter.py `advance`).
    giving_up: str = ""

    @property
    def legs(self) -> tuple[Leg, ...]:
        """The legs that want an order: stop, take-profit, and TP1 until it filled."""
        if self.take_profit_1 is None:
            return self.stop, self.take_profit
        return self.stop, self.take_profit, self.take_profit_1

    def has_leg(self, role: OrderRole) -> bool:
        return role is not TAKE_PROFIT_1 or self.take_profit_1 is not None

    def leg(self, role: OrderRole) -> Leg:
        """The leg of `role`; a TP1 the position does not have (one-TP plan, or filled
        already) reads as an empty leg: no order, nothing pending (see `has_leg`)."""
        if role is STOP_LOSS:
            return self.stop
        if role is TAKE_PROFIT_1:
            return self.take_profit_1 or Leg(role, ZERO)
        return self.take_profit

    def with_leg(self, leg: Leg) -> "Position":
        """This position with `leg` in its role's place (itself if that is the leg already)."""
        role = leg.role
        if role is STOP_LOSS:
            return self if leg is self.stop else evolve(self, stop=leg)
        if role is TAKE_PROFIT_1:
            return self if leg is self.take_profit_1 else evolve(self, take_profit_1=leg)
        return self if leg is self.take_profit else evolve(self, take_profit=leg)

    def leg_quantity(self, role: OrderRole) -> Decimal:
        """What the leg's order should close now (0: no order wanted). The stop, and a lone
        take-profit, close the whole quantity. With TP1: TP2 keeps its planned part
        (`initial_quantity - tp1_quantity`) first, TP1 closes what is beyond it, up to its
        own part, and TP2 the rest. So TP1's fill leaves TP2's order as it is, a smaller
        position (partial entry, reduced by hand) shrinks TP1 first, and the two always
        close exactly the position. A TP1 left with nothing gives way to the one-TP plan
        (trader/management.py `first_target_gone`)."""
        if role is STOP_LOSS or self.take_profit_1 is None:
            return self.quantity if role is not TAKE_PROFIT_1 else ZERO
        first = self._first_part()
        return first if role is TAKE_PROFIT_1 else self.quantity - first

    def _first_part(self) -> Decimal:
        """TP1's part of the quantity now (two-TP plan): what is beyond TP2's planned part."""
        runner = self.initial_quantity - self.tp1_quantity
        return min(self.tp1_quantity, max(self.quantity - runner, ZERO))

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity * self.side.sign

    def leg_quantities(self) -> tuple[tuple[Leg, Decimal], ...]:
        """Each of `legs` with what its order should close now (`leg_quantity`), in one go."""
        quantity, first = self.quantity, self.take_profit_1
        if first is None:
            return (self.stop, quantity), (self.take_profit, quantity)
        part = self._first_part()
        return (self.stop, quantity), (self.take_profit, quantity - part), (first, part)

    @property
    def protected(self) -> bool:
        """Every leg that wants an order has a live one covering what it should close."""
        for leg, wanted in self.leg_quantities():
            if wanted > ZERO and not leg.covers(wanted):
                return False
        return True

    def next_client_id(self, role: OrderRole) -> tuple["Position", str]:
        """Allocate the next deterministic client id for `role` on this position."""
        seq, client_id = self._next_seq(role)
        return evolve(self, seq=seq), client_id

    def placing(self, leg: Leg) -> tuple["Position", str]:
        """`leg` waiting for a new order: the next client id of its role allocated (as by
        `next_client_id`) and made the leg's `pending`, in one copy of the position."""
        seq, client_id = self._next_seq(leg.role)
        pending = evolve(leg, pending=client_id, pending_trigger=leg.trigger_price)
        return evolve(self, seq=seq, **{LEG_FIELDS[leg.role]: pending}), client_id

    def _next_seq(self, role: OrderRole) -> tuple[dict[str, int], str]:
        name = role._value_          # == role.value, without the enum.property call
        seq = self.seq.get(name, 0) + 1
        return {**self.seq, name: seq}, str(ClientId(self.symbol, self.key, role, seq))

    def with_seq_past(self, client_id: str) -> "Position":
        """Never allocate `client_id` (one of ours, e.g. taken back after a lost record) or
        an earlier id of its role again: the role's sequence moves at least to it."""
        parsed = ClientId.parse(client_id)
        if parsed is None or not self.owns(client_id) \
                or self.seq.get(parsed.role.value, 0) >= parsed.seq:
            return self
        return evolve(self, seq={**self.seq, parsed.role.value: parsed.seq})

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

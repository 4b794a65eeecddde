"""The engine around `trader.lifecycle.step`, for the simulated exchange of
tests/machine_sim.py (test-only, pure: time is `Driver.now`, moved by the test).

`Driver` plays trader/engine.py (`protect`, `sweep_orphans`, `contained`),
trader/interpreter.py and trader/exchange_actions.py: it feeds `step` the events the engine
would (the real `trader.observe.observe` over the real `OrderTracker`, the entry resolved as
trader/entry_sender.py does), performs the actions on the simulated exchange, and checks
every step and every action against the machine's promises (`check_step`, new-first at
each cancel, one client id per request, one Finalize per position).
"""

import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from tests.machine_sim import (
    ENTRY,
    FULL,
    LEG_TYPES,
    RULES,
    SYMBOL,
    TP1_PART,
    ExchangeDown,
    Mood,
    Placement,
    SimExchange,
    mark_at,
    new_exchange,
)
from tests.machine_sim import happen as exchange_happens
from tests.positions import leg_id, make
from trader.alerts import Alert
from trader.domain import (
    ZERO,
    CloseReason,
    ExchangePosition,
    OrderRole,
    OrderStatus,
    Side,
)
from trader.entry_sender import order_event
from trader.events import (
    Action,
    CancelOrder,
    CloseRequested,
    EntryFailed,
    Event,
    Finalize,
    Flatten,
    FlattenResult,
    LegFilled,
    LegGone,
    LegPlaced,
    LegPlacementUnknown,
    LegRejected,
    LegSeen,
    PlaceLeg,
    Policy,
    PositionGone,
    PositionSizeChanged,
    ProbeOrder,
    StopMoveRequested,
    Tick,
)
from trader.intents import exit_intent
from trader.lifecycle import Step, step
from trader.observe import SymbolView, observe
from trader.order_tracker import OrderTracker
from trader.position import ExitPlan, Leg, Position, PositionState

MAX_STEPS = 50            # events one observation may cause (trader/interpreter.py)
FLAT = ExchangePosition(SYMBOL, ZERO)


class Crashed(Exception):
    """The process died right after an exchange request; its answer died with it."""


def check_step(before: Position, event: Event, result: Step) -> None:
    """What every step promises, whatever the event: CLOSED absorbs everything; no action
    grows the position or opens the other side (legs and market closes go out as reduce-only
    orders on the closing side, trader/intents.py `exit_intent`, for at most the position);
    nothing follows a Finalize."""
    if before.state is PositionState.CLOSED:
        assert result.ignored and not result.actions and result.position == before, \
            f"CLOSED must absorb {event}, got {result.actions}"
        return
    after = result.position
    for index, action in enumerate(result.actions):
        if isinstance(action, Finalize):
            assert index == len(result.actions) - 1, f"actions after Finalize: {result.actions}"
            assert after.state is PositionState.CLOSED, f"Finalize left {after.state}"
        elif isinstance(action, PlaceLeg | Flatten):
            _check_exit(after, action, event)


def _check_exit(position: Position, action: PlaceLeg | Flatten, event: Event) -> None:
    roles = (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1) \
        if isinstance(action, PlaceLeg) else (OrderRole.FLATTEN, OrderRole.PARTIAL_TP)
    assert action.role in roles, action
    assert ZERO < action.quantity <= position.quantity, \
        f"{action} for a position of {position.quantity} (after {event})"
    if action.role is OrderRole.PARTIAL_TP:
        assert action.quantity < position.quantity, f"a partial that closes all: {action}"
    intent = exit_intent(position, action.role, action.client_id, action.quantity,
                         position.opened_at)
    assert intent.reduce_only and intent.side is position.side.opposite, intent


class Driver:
    """The engine for one symbol around `step`: observe, step, perform, feed back."""

    def __init__(self, position: Position, exchange: SimExchange,
                 policy: Policy | None = None) -> None:
        self.position = position
        self.committed = position          # what the database holds: survives a restart
        self.exchange = exchange
        self.policy = policy or Policy()
        self.now: datetime = position.opened_at
        self.tracker = OrderTracker()
        self.crash_armed = False           # die right after the next exchange request
        self.finalized = 0
        self.alerts: list[tuple[datetime, Alert]] = []
        self.sent: list[tuple[datetime, Action]] = []      # exchange actions of the machine
        self.swept: list[str] = []                         # orphans the engine cancelled
        self.client_ids: set[str] = set()
        self.failed_units = 0              # ticks / commands the exchange failed

    # --- one engine tick for the symbol (trader/engine.py protect + sweep_orphans) ------
    def cycle(self, seconds: float = 0) -> None:
        self.now += timedelta(seconds=seconds)
        self.contained(self._observe_and_step)

    def contained(self, work: Callable[[], None]) -> None:
        """One tick or command: a crash restarts the process; an exchange that does not
        answer fails only this unit of work (Engine.contained)."""
        try:
            work()
        except Crashed:
            self.restart()
        except ExchangeDown:
            self.failed_units += 1

    def _observe_and_step(self) -> None:
        for order in self.exchange.pushed:            # the user-data stream
            self.tracker.on_order(order, self.now)
        self.exchange.pushed.clear()
        self.tracker.on_position(self.exchange.read_position(), self.now)     # REST snapshot
        self.tracker.on_snapshot(SYMBOL, self.exchange.open_orders(), self.now)
        if self.position.state is PositionState.ENTERING:
            entry = self.exchange.query(self.exchange.entry_id)
            event = order_event(entry) if entry else EntryFailed("no entry order")
            if event is not None:
                self.apply(event)
        view = SymbolView(SYMBOL, self.now, self.tracker.position(SYMBOL) or FLAT,
                          self.tracker.for_symbol(SYMBOL), self.tracker.live(SYMBOL),
                          self.exchange.mark)
        for event in observe(self.position, view):
            if isinstance(event, PositionSizeChanged) and event.quantity < self.position.quantity:
                event = replace(event, cause="by hand")
            self.apply(event)
            if self.position.state is PositionState.CLOSED:
                break
        if self.position.state is not PositionState.CLOSED:
            self.apply(Tick(self.now, self.exchange.mark, RULES))
        self.sweep()

    def restart(self) -> None:
        """The process dies and boots: the record is what was committed; what the tracker
        knew, undelivered stream updates and answers in flight are lost."""
        self.position = self.committed
        self.tracker = OrderTracker()
        self.exchange.pushed.clear()
        self.crash_armed = False

    def sweep(self) -> None:
        """No order of ours outlives its reason (Engine.sweep_orphans); the entry order is
        left alone (a MARKET entry between its partial fills)."""
        position = self.position
        if position.state is PositionState.ENTERING:
            return
        wanted: set[str | None] = set()
        if position.state is not PositionState.CLOSED:
            for leg in position.legs:
                wanted |= {leg.pending, leg.order.client_id if leg.order else None}
        for order in self.tracker.ours_live(SYMBOL):
            if order.client_id in wanted or order.role is OrderRole.ENTRY:
                continue
            self.check_new_first(order.client_id, order.role, "the orphan sweep")
            self.swept.append(order.client_id)
            final = self.exchange.cancel(order.client_id)
            if final is None:
                self.tracker.on_missing(order.client_id, self.now)
            else:
                self.tracker.on_order(final, self.now)

    # --- the interpreter (trader/interpreter.py) --------------------------------------------
    def apply(self, event: Event) -> None:
        queue: deque[Event] = deque([event])
        for _ in range(MAX_STEPS):
            if not queue:
                return
            current = queue.popleft()
            before = self.position
            result = step(before, current, self.now, self.policy)
            check_step(before, current, result)
            if result.ignored:
                continue
            self.position = result.position
            if not any(isinstance(action, Finalize) for action in result.actions):
                self.committed = result.position
            for action in result.actions:
                queue.extend(self.perform(action))
        raise AssertionError(f"more than {MAX_STEPS} steps for {event}: {list(queue)}")

    def perform(self, action: Action) -> list[Event]:
        if isinstance(action, Alert):
            self.alerts.append((self.now, action))
            return []
        if isinstance(action, Finalize):
            self.finalized += 1
            assert self.finalized == 1, "Finalize a second time for the same position"
            self.committed = self.position
            return []
        self.sent.append((self.now, action))
        if isinstance(action, PlaceLeg):
            events = self._place(action)
        elif isinstance(action, CancelOrder):
            events = self._cancel(action)
        elif isinstance(action, ProbeOrder):
            events = self._probe(action)
        else:
            events = self._flatten(action)
        if self.crash_armed:
            self.crash_armed = False
            raise Crashed
        return events

    # --- the action runner (trader/exchange_actions.py) -------------------------------------
    def _place(self, action: PlaceLeg) -> list[Event]:
        role, client_id = action.role, action.client_id
        assert client_id not in self.client_ids, f"client id {client_id} sent twice"
        self.client_ids.add(client_id)
        outcome = self.exchange.place(role, client_id, action.trigger_price, action.quantity)
        if outcome is Placement.PLACED:
            self.tracker.on_order(self.exchange.orders[client_id], self.now)
            return [LegPlaced(role, client_id, action.trigger_price, action.quantity)]
        if outcome is Placement.LOST:
            return [LegPlacementUnknown(role, client_id)]
        if outcome is Placement.REFUSED:
            return [LegRejected(role, client_id, "Margin is insufficient. (-2019)")]
        return [LegRejected(role, client_id, "Order would immediately trigger. (-2021)",
                            level_passed=True)]

    def _cancel(self, action: CancelOrder) -> list[Event]:
        self.check_new_first(action.client_id, action.role, "the machine")
        final = self.exchange.cancel(action.client_id)
        if final is None:
            self.tracker.on_missing(action.client_id, self.now)
            return []
        self.tracker.on_order(final, self.now)
        if final.status is OrderStatus.FILLED and self.position.owns(action.client_id):
            return [LegFilled(action.role, action.client_id, final.filled_qty, complete=True)]
        return []

    def _probe(self, action: ProbeOrder) -> list[Event]:
        role, client_id = action.role, action.client_id
        order = self.exchange.query(client_id)
        # A stop's superseded placement is probed as a pending one, as ActionRunner.probe
        # does (trader/stop_backup.py): not found, it never landed.
        leg = self.position.leg(role)
        pending = client_id == leg.pending or client_id in leg.superseded
        if order is None:
            if pending:
                return [LegRejected(role, client_id, "never placed (not found)",
                                    never_placed=True)]
            self.tracker.on_missing(client_id, self.now)
            return []
        self.tracker.on_order(order, self.now)
        remaining = order.quantity - order.filled_qty
        if order.status is OrderStatus.FILLED:
            return [LegFilled(role, client_id, order.filled_qty, complete=True)]
        if order.status.terminal:
            return [LegGone(role, client_id, confirmed=True, status=order.status.value)]
        if pending:
            return [LegPlaced(role, client_id, order.trigger_price or ZERO, remaining)]
        return [LegSeen(role, client_id, order.trigger_price or ZERO, remaining)]

    def _flatten(self, action: Flatten) -> list[Event]:
        with contextlib.suppress(ExchangeDown):    # outcome unknown: the read decides
            self.exchange.market_close(action.quantity)
        self.tracker.on_position(self.exchange.read_position(), self.now)
        events: list[Event] = [FlattenResult(self.exchange.size)]
        if self.exchange.size == 0:
            events.append(PositionGone())
        return events

    # --- checks ------------------------------------------------------------------------
    def check_new_first(self, client_id: str, role: OrderRole | None, who: str) -> None:
        """A cancel never takes away protection (new-first): whatever the cancelled order
        still covered, another live order of the same role covers too (unless the position
        is gone). Two-TP plan: the take-profits of both roles together still cover it (a
        TP1 whose part is gone leaves TP2 covering the position)."""
        order = self.exchange.orders.get(client_id)
        size = self.exchange.size
        if order is None or not order.status.live or size == 0 or role not in LEG_TYPES:
            return
        covered = min(self.exchange.covers(order), size)
        # A closePosition stop placed by hand counts: the machine adopts it in place of
        # ours (trader/observe.py covering_leg), and the sweep then retires ours.
        others = [o for o in self.exchange.live_legs(role, ours=False) if o.client_id != client_id
                  and self.exchange.covers(o) >= covered]
        if not others and role is not OrderRole.STOP_LOSS \
                and self.position.exit_plan is ExitPlan.TWO:
            together = sum((self.exchange.covers(o) for o in self.exchange.live_of_type(role)
                            if o.client_id != client_id), ZERO)
            others = [order] if together >= covered else []
        assert others, (f"{who} cancels {client_id}, the only live {role.name} covering "
                        f"{covered} of the position's {size}")


# --- stories: the engine's ticks, commands, restarts, and what happens between them -------

def new_world(side: Side, policy: Policy | None = None, two_targets: bool = False) -> Driver:
    """An entry of 0.010 sent (ENTERING, legs planned at -1 % / +2 %), nothing filled yet.
    `two_targets`: the two-TP plan, TP1 for 0.005 at +1 % (1 R), TP2 at +2 %."""
    stop, take_profit = (mark_at(side, -100), mark_at(side, 200))
    position = make(SYMBOL, side, PositionState.ENTERING, FULL, ENTRY, stop, take_profit,
                    live_legs=False)
    if two_targets:
        position = replace(position, exit_plan=ExitPlan.TWO, tp1_quantity=TP1_PART,
                           take_profit_1=Leg(OrderRole.TAKE_PROFIT_1, mark_at(side, 100)))
    return Driver(position, new_exchange(side, leg_id(SYMBOL, OrderRole.ENTRY)), policy)


def run_story(side: Side, filled_at_start: bool, story: list[tuple[tuple, int]],
              two_targets: bool = False) -> Driver:
    """Each (happening, seconds): it happens, then the engine ticks `seconds` later (not at
    all for 0)."""
    driver = new_world(side, two_targets=two_targets)
    if filled_at_start:
        driver.exchange.fill_entry(FULL)
    driver.cycle(1)
    for what, seconds in story:
        happen(driver, what)
        if seconds:
            driver.cycle(seconds)
    return driver


def happen(driver: Driver, what: tuple) -> None:
    kind, *args = what
    if kind == "operator_close":           # /close: a command between ticks
        if driver.position.state.open:
            driver.contained(lambda: driver.apply(CloseRequested(CloseReason.COMMAND)))
    elif kind == "operator_stop":          # /sl: a level between the stop and the mark
        position, mark = driver.position, driver.exchange.mark
        if position.state in (PositionState.ATTACHING, PositionState.PROTECTED):
            stop = position.stop.trigger_price
            level = RULES.round_price(stop + (mark - stop) * Decimal(args[0]) / 100,
                                      up=position.side is Side.SELL)
            if (mark - level) * position.side.sign > 0 and level > 0:   # control_stop's check
                driver.contained(lambda: driver.apply(StopMoveRequested(level)))
    elif kind == "wait":
        for _ in range(args[0]):
            driver.cycle(31)
    elif kind == "restart":
        driver.restart()
    elif kind == "crash":
        driver.crash_armed = True
    else:
        legs = {leg.role: leg.order.client_id for leg in driver.position.legs if leg.order}
        exchange_happens(driver.exchange, what, legs)


def settle(driver: Driver, least: int = 12, most: int = 40) -> bool:
    """Calm exchange, no more interference; ticks 31 s apart (past every retry delay, and
    the debounce's 60 s and 3 cycles), at least `least` of them, then until three ticks in a
    row do nothing at all. False if that never happens within `most` ticks."""
    driver.exchange.mood = Mood.CALM
    driver.crash_armed = False
    quiet = 0
    for count in range(1, most + 1):
        before = len(driver.sent), len(driver.swept)
        driver.cycle(31)
        quiet = quiet + 1 if (len(driver.sent), len(driver.swept)) == before else 0
        if count >= least and quiet >= 3:
            return True
    return False


def assert_settled(driver: Driver) -> None:
    """Closed: the exchange is flat and the close was finalized once. Open: PROTECTED, for
    the exchange's size, with exactly one live stop-loss of ours for that size and
    take-profits of ours that close exactly that size (one, or TP1 and TP2 of the two-TP
    plan, each for its part: `Position.leg_quantity`), each at the planned trigger (or a
    closePosition order placed by hand, adopted in place of ours); no order of ours for a
    leg that should close nothing. Never a close left in flight."""
    position, exchange = driver.position, driver.exchange
    assert position.state is not PositionState.CLOSING, "a close left in flight for good"
    entry = exchange.orders[exchange.entry_id]
    if position.state in (PositionState.CLOSED, PositionState.ENTERING):
        assert exchange.size == 0, f"{position.state} while the exchange holds {exchange.size}"
        if position.state is PositionState.CLOSED:
            assert driver.finalized == (1 if entry.filled_qty > 0 else 0)
        return
    assert position.state is PositionState.PROTECTED, position
    assert position.quantity == exchange.size, (position.quantity, exchange.size)
    targets = ZERO
    for role in (OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1):
        wanted = position.leg_quantity(role)
        targets += wanted
        if wanted == 0:
            assert not exchange.live_legs(role), f"a live {role.name} for nothing: {position}"
    assert targets == exchange.size, f"the take-profits close {targets} of {exchange.size}"
    for leg in position.legs:
        ours = exchange.live_legs(leg.role)
        wanted = position.leg_quantity(leg.role)
        if wanted == 0:
            continue
        assert leg.order is not None
        if not ours:
            adopted = exchange.orders.get(leg.order.client_id)
            assert adopted is not None and adopted.status.live and adopted.close_position, \
                f"no live {leg.role.name} on the exchange; the record believes in {leg.order}"
            continue
        assert len(ours) == 1, f"{len(ours)} live {leg.role.name} orders of ours: {ours}"
        assert ours[0].client_id == leg.order.client_id, (ours[0], leg)
        assert exchange.covers(ours[0]) == wanted, (ours[0], wanted)
        assert ours[0].trigger_price == leg.trigger_price, (ours[0], leg)

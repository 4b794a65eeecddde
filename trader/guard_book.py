"""The guards' state in one place: changed through the pure rules (trader/breaker_rules.py,
trader/cooldowns.py, trader/operator_holds.py, trader/guards.py), persisted on every change
(breakers, pauses and sleep survive a restart; a change that did not reach the disk is
written again by the next tick), and announced (trips and clears become alerts).

    book = GuardBook(store, alerter, clock, counters, GuardConfig(...))
    book.apply(breaker_rules.check_spread, symbol, spread, history, now, book.config)
    allowed, why = guards.allow_entry(book.state, symbol, now)
"""

import json
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from loguru import logger

from storage import SaveStateFailure, Store, codec
from trader import breaker_rules, guards
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.guard_state import GuardConfig, GuardEvent, GuardEventKind, GuardState, restored
from trader.telemetry import Counters

STATE_KEY = "guards"


def dump_state(state: GuardState) -> dict[str, Any]:
    """A JSON-safe dict of the state (for the store and the emergency backup file)."""
    return codec.dump(state)


def load_state(raw: Any) -> GuardState:
    """Rebuild the state saved by dump_state (as read back from the store)."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, dict):
        raise ValueError(f"stored guard state is a {type(raw).__name__}, not an object")
    return restored(codec.load(GuardState, raw))


class GuardBook:
    def __init__(self, store: Store, alerter: Alerter, clock: Clock, counters: Counters,
                 config: GuardConfig) -> None:
        self.store = store
        self.alerter = alerter
        self.clock = clock
        self.counters = counters
        self.config = config
        self.state = GuardState()
        # Told of every change (before, after, by_command), and of every command even when
        # nothing changed: trader/intent_keeper.py keeps sleep and pause across restarts.
        self.on_change: Callable[[GuardState, GuardState, bool], None] | None = None
        # Why Telegram has not confirmed the pinned copy of the latest sleep/pause ("" when it
        # has, or none is kept): set by the intent keeper, for the /shutdown's answer.
        self.unpinned: Callable[[], str] = lambda: ""
        # `guards.earliest_end` of one state: kept while `state` is that same (frozen)
        # object; any new state, however it was set, is read afresh.
        self._ends_for: GuardState | None = None
        self._ends_at: datetime | None = None

    def load(self) -> None:
        """The saved state, without `save_failure`: that block belongs to the process whose
        writes failed (its write health lifts it on recovery); a new process starts with
        a health of its own, which would never lift it (entries blocked for good), and
        sets it again at its own first failed write."""
        raw = self.store.get(STATE_KEY)
        if raw:
            state = load_state(raw)
            if state.save_failure:
                logger.info("guard state loaded without the failing disk's entry block")
                state = guards.set_save_failure(state, False)
            self.state = state

    def set(self, state: GuardState, *, by_command: bool = False) -> None:
        """Take a new state (from a pure rule that reports no events, or an operator's
        command: `by_command`) and persist it."""
        before = self.state
        if state is before or state == before:   # most rules change nothing
            if not by_command:
                return
        else:
            self.state = state
            self.save()
        if self.on_change is not None:
            self.on_change(before, state, by_command)

    def save(self) -> None:
        """Write the current state whole. One that does not reach the disk (its write
        failed, counted by the store's write health; or the engine's unit of work rolled it
        back) is written again, as it is then, by the next tick (`Rewrites`,
        storage/unit_of_work.py): a breaker the engine holds is never missing from the disk
        beyond that, so a restart does not forget it."""
        rewrites = self.store.unit.rewrites
        try:        # held back in a replay batch: written once per commit, as it is last
            self.store.put_later(STATE_KEY, partial(dump_state, self.state), self.clock.now())
        except SaveStateFailure as exc:
            logger.error("guard state not saved error={}", exc)
            rewrites.failed(STATE_KEY, self.save)
        else:
            rewrites.written(STATE_KEY, self.save)

    def apply(self, rule: Callable[..., tuple[GuardState, list[GuardEvent]]],
              *args: Any) -> list[GuardEvent]:
        """Run one pure rule on the current state: persist the change, announce its events."""
        state, events = rule(self.state, *args)
        if state is not self.state:       # most rules, most ticks: nothing changed
            self.set(state)
        if events:
            self.announce(events)
        return events

    def expire(self, now: datetime) -> list[GuardEvent]:
        """`apply(guards.expire, now)`, without running the rule before the first end of the
        current state (most ticks: nothing ends, or nothing is set at all)."""
        state = self.state
        if state is not self._ends_for:
            self._ends_for, self._ends_at = state, guards.earliest_end(state)
        if self._ends_at is None or now < self._ends_at:
            return []
        return self.apply(guards.expire, now)

    def record_api_success(self, now: datetime) -> None:
        """`breaker_rules.record_api_result` of a success: it resets a streak of failures; with
        none counted (nearly every tick) there is nothing to reset."""
        if self.state.api_failures:
            self.apply(breaker_rules.record_api_result, True, now, self.config)

    def announce(self, events: list[GuardEvent]) -> None:
        for event in events:
            tripped = event.kind is GuardEventKind.TRIPPED
            name = AlertName.BREAKER_TRIPPED if tripped else AlertName.BREAKER_CLEARED
            if event.name == "pause":
                name = AlertName.PAUSED if tripped else AlertName.RESUMED
            self.alerter.publish(Alert(name, event.text, event.symbol,
                                       dedup_key=f"{event.kind}:{event.name}:{event.symbol}",
                                       subject=event.name),
                                 self.clock.now())
            self.counters.set(event.symbol or "*", "circuit_breaker_active", int(tripped))

"""Sleep and pause that survive a wiped disk: the operator's intent kept in the database AND
outside it (an `IntentPin`: the status message the Telegram bot keeps pinned), and recovered
at boot before any trading.

    keeper = IntentKeeper(engine.guards, engine.store, engine.alerter, SystemClock(), pin)
    keeper.start()                          # begins reading the pin while the exchange boots
    text = await keeper.recover(wait=15)    # after boot, before the first tick: the STARTUP line
    keeper.apply_late_pin()                 # in the engine's loop, between ticks
    await keeper.stop()

The boot rule (README, "Sleep and pause survive a restart"):
- candidates: the database record and every pinned copy that could be read; the newest
  wins, a tie goes to the more restrictive (trader/operator_intent.py `newest`);
- none, and Telegram answered (or is not configured): running - a first start, or the pin
  was removed;
- Telegram did not answer within `wait` and the database has no record (a wiped disk):
  ASLEEP, assumed. Nothing tells us the operator did not send /shutdown, and an agent that
  cannot reach its operator should not open positions; protection and exits run. The pin is
  read again in the background and applied between ticks; a change made meanwhile (/wake
  from the CLI, a /pause) is newer and wins.
Every later change of sleep or pause (commands, pause expiry, a second instance) is stamped,
saved and pinned (trader/guard_book.py calls `on_guards_changed`).
"""

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from loguru import logger

from storage import SaveStateFailure, Store
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.guard_book import GuardBook
from trader.guard_state import GuardState
from trader.operator_intent import EPOCH, OperatorIntent, describe, newest

RECORD_KEY = "operator_intent"
RETRY_INITIAL_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0
# The longest flood-control wait obeyed: one beyond it (a proxy's, a bug's) must not stop the
# pin from being tried again for days.
FLOOD_WAIT_CAP_SECONDS = 3600.0


class PinUnavailable(Exception):
    """Telegram cannot be asked right now (not connected, network, flood control): retry.
    `retry_after`: the seconds flood control asked to wait (Telegram's 429
    `parameters.retry_after`, https://core.telegram.org/bots/api#responseparameters); a try
    before then is refused again and prolongs the limit."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IntentPin(Protocol):
    """Where the intent is kept outside the database (bot/pinned_state.py)."""

    async def recall(self) -> list[OperatorIntent]:
        """Every intent found pinned (one per chat that has one; empty when none does).
        Raises PinUnavailable when no chat could be asked."""

    async def publish(self, intent: OperatorIntent) -> None:
        """Show `intent` in the pinned message(s). Raises PinUnavailable to be retried."""


class IntentKeeper:
    """Owns the operator's intent: recovery at boot, then every change saved and pinned."""

    def __init__(self, guards: GuardBook, store: Store, alerter: Alerter, clock: Clock,
                 pin: IntentPin | None, wakeup: Callable[[], None] | None = None, *,
                 retry: tuple[float, float] = (RETRY_INITIAL_SECONDS, RETRY_CAP_SECONDS)) -> None:
        self.guards = guards
        self.store = store
        self.alerter = alerter
        self.clock = clock                 # wall-clock time, even in a replay
        self.pin = pin
        self.wakeup = wakeup or (lambda: None)
        self.retry_initial, self.retry_cap = retry     # seconds: Telegram asked again after
        self.intent: OperatorIntent | None = None   # None: unknown, assumed asleep
        self.decided = False
        self._applying = False
        self._late: list[OperatorIntent] | None = None
        self._wanted: OperatorIntent | None = None     # what the pin should show
        self._shown: OperatorIntent | None = None      # what Telegram confirmed it shows
        self._refused = ""                 # why the last update failed ("" after a success)
        self._next_try: float | None = None   # loop time of the publisher's next try
        self._recall: asyncio.Task[list[OperatorIntent]] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._publish_due = asyncio.Event()
        self._telegram_answered = asyncio.Event()   # cuts the pin read's retry wait short
        guards.on_change = self.on_guards_changed
        guards.unpinned = self.unpinned

    # --- boot -------------------------------------------------------------------------
    def start(self) -> None:
        """Begin reading the pin (retried until Telegram answers)."""
        if self.pin is not None and self._recall is None:
            self._recall = asyncio.create_task(self._recall_until_read(), name="intent-recall")
            self._recall.add_done_callback(self._recalled)

    async def recover(self, wait: float) -> str:
        """Decide the intent at boot (after the guards were loaded from the database) and
        apply it; waits at most `wait` s for the pin. Returns the state line for STARTUP."""
        self.start()
        stored = self._stored()
        pinned = await self._pinned_within(wait)
        # No await below this line: a pin read from now on is a late one (_recalled).
        self.decided = True
        if pinned is None and stored is None and self.pin is not None:
            self._apply_unknown()
            return ("state: ASLEEP (assumed): Telegram did not answer, so the pinned state is "
                    "unknown and the database has none; no new entries until it is read "
                    "(protection runs); /wake overrides")
        candidates = ([stored] if stored else []) + (pinned or [])
        chosen = newest(candidates)
        if chosen is None:
            self._apply(OperatorIntent(since=self._now()))
            if self.pin is None:
                return "state: RUNNING (nothing saved)"
            return "state: RUNNING (nothing saved: a first start, or the pinned message was removed)"
        source = "database" if chosen is stored else "pinned in Telegram"
        self._apply(chosen)
        text = f"state: {describe(chosen)} (since {chosen.since:%Y-%m-%d %H:%M} UTC, {source})"
        if pinned is None and self.pin is not None:
            text += "; Telegram did not answer: the pinned state is read when it does"
        return text

    async def _pinned_within(self, wait: float) -> list[OperatorIntent] | None:
        if self._recall is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(self._recall), wait)
        except TimeoutError:
            logger.warning("pinned state not read within wait_s={}; reading on in the background",
                           wait)
            return None

    async def _recall_until_read(self) -> list[OperatorIntent]:
        assert self.pin is not None
        delay = self.retry_initial
        while True:
            try:
                return await self.pin.recall()
            except PinUnavailable as exc:
                wait = max(delay, min(exc.retry_after or 0.0, FLOOD_WAIT_CAP_SECONDS))
                logger.info("pinned state not readable yet error={}; retry_in_s={}", exc, wait)
            except Exception as exc:  # noqa: BLE001 - a bug here must not end the retries
                wait = delay
                logger.opt(exception=exc).error("reading the pinned state failed")
            await self._retry_wait(wait)
            delay = min(delay * 2, self.retry_cap)

    def telegram_answered(self) -> None:
        """Telegram answered (the bot connected): a pin read waiting for its retry goes now,
        not after a backoff grown through the outage (up to `retry_cap`)."""
        self._telegram_answered.set()

    async def _retry_wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._telegram_answered.wait(), seconds)
        except TimeoutError:
            return
        finally:
            self._telegram_answered.clear()

    def _recalled(self, task: "asyncio.Task[list[OperatorIntent]]") -> None:
        if task.cancelled() or task.exception() is not None:
            return
        if self.decided:               # read after the boot decision: apply between ticks
            self._late = task.result()
            self.wakeup()
        self._start_publisher()

    # --- between ticks ----------------------------------------------------------------
    @property
    def late_pin_waiting(self) -> bool:
        """A pin read after the boot decision waits for `apply_late_pin`."""
        return self._late is not None

    def apply_late_pin(self) -> None:
        """In the engine's loop: apply a pin read after boot, unless something newer exists."""
        if self._late is None:
            return
        pinned, self._late = self._late, None
        known = [self.intent] if self.intent is not None else []
        chosen = newest(known + pinned) or OperatorIntent(since=self._now())
        if self.intent is not None and chosen is self.intent:
            self._publish(self.intent)     # ours is newer: the pin catches up
            return
        self._apply(chosen)
        self.alerter.publish(Alert(AlertName.STARTUP, f"Telegram answered; state now: "
                                   f"{describe(chosen)} (since {chosen.since:%Y-%m-%d %H:%M} UTC)",
                                   dedup_key=f"intent-late:{chosen.since.isoformat()}"),
                             self.clock.now())

    # --- every change after boot --------------------------------------------------------
    def on_guards_changed(self, before: GuardState, after: GuardState,
                          by_command: bool = False) -> None:
        """GuardBook hook: a change of sleep or pause is the operator's (or a guard's) new
        intent: stamped now, saved and pinned. While the intent is unknown (assumed asleep),
        an operator's command makes the state it leaves theirs, changed or not: a
        `tradebot shutdown` then is not undone by an older pin read later."""
        unchanged = OperatorIntent.of(before, EPOCH).same_state(OperatorIntent.of(after, EPOCH))
        if self._applying or (unchanged and not (by_command and self.intent is None)):
            return
        if not self.decided:
            logger.info("sleep/pause changed before the boot decision; the decision applies")
            return
        intent = OperatorIntent.of(after, self._now())
        self.intent = intent
        self._save(intent)
        self._publish(intent)

    # --- internals ----------------------------------------------------------------------
    def _apply(self, intent: OperatorIntent) -> None:
        self._set_guards(intent.applied_to(self.guards.state))
        self.intent = intent
        self._save(intent)
        self._publish(intent)
        logger.info("operator intent applied state={} since={}", intent.run_state, intent.since)

    def _apply_unknown(self) -> None:
        """Asleep until the pin is read; not saved nor pinned (it is not the operator's)."""
        self._set_guards(replace(self.guards.state, asleep=True))
        self.intent = None
        logger.warning("operator intent unknown (Telegram unreachable, no database record): "
                       "asleep until the pinned state is read")

    def _set_guards(self, state: GuardState) -> None:
        self._applying = True
        try:
            self.guards.set(state)
        finally:
            self._applying = False

    def _stored(self) -> OperatorIntent | None:
        record = self.store.get(RECORD_KEY)
        if record is None:
            return None
        try:
            return OperatorIntent.from_record(record)
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("stored operator intent unreadable record={} error={!r}", record, exc)
            return None

    def _save(self, intent: OperatorIntent) -> None:
        """One that does not reach the disk (counted by the write health, or rolled back
        with the unit of work) is saved again, as the intent is then, by the next tick
        (Rewrites, storage/unit_of_work.py): the boot rule must not take an older record."""
        rewrites = self.store.unit.rewrites
        try:
            self.store.put(RECORD_KEY, intent.to_record(), self.clock.now())
        except SaveStateFailure as exc:
            logger.error("operator intent not saved error={}", exc)
            rewrites.failed(RECORD_KEY, self._save_again)
        else:
            rewrites.written(RECORD_KEY, self._save_again)

    def _save_again(self) -> None:
        if self.intent is not None:
            self._save(self.intent)

    def _publish(self, intent: OperatorIntent) -> None:
        self._wanted = intent
        self._publish_due.set()

    def _start_publisher(self) -> None:
        """Pins are written only once they were read: never over a pin nobody has seen."""
        if self.pin is not None and self._publisher is None:
            self._publisher = asyncio.create_task(self._publish_forever(), name="intent-pin")

    async def _publish_forever(self) -> None:
        assert self.pin is not None
        delay = self.retry_initial
        while True:
            await self._publish_due.wait()
            self._publish_due.clear()
            wanted = self._wanted
            if wanted is None or wanted is self._shown:
                continue
            try:
                await self.pin.publish(wanted)
                self._shown, self._refused = wanted, ""
                delay = self.retry_initial
                continue
            except PinUnavailable as exc:
                wait = max(delay, min(exc.retry_after or 0.0, FLOOD_WAIT_CAP_SECONDS))
                self._refused = str(exc)
                logger.info("pinned state not updated error={}; retry_in_s={}", exc, wait)
            except Exception as exc:  # noqa: BLE001 - one failed update must not stop later ones
                wait = delay
                self._refused = f"{type(exc).__name__}: {exc}"
                logger.opt(exception=exc).error("pinned state update failed")
            self._next_try = asyncio.get_running_loop().time() + wait
            await asyncio.sleep(wait)
            self._next_try = None
            delay = min(delay * 2, self.retry_cap)
            self._publish_due.set()

    def unpinned(self) -> str:
        """Why Telegram has not confirmed the latest intent pinned: the last update's failure;
        "" when it did, when nothing is to be pinned, or while the first try is under way."""
        if self.pin is None or self._wanted is None or self._shown is self._wanted:
            return ""
        return self._refused

    async def flush(self, timeout: float) -> bool:
        """Wait (bounded) until Telegram confirmed the latest intent is pinned. True then (or
        with nothing to pin); False when it did not within `timeout`, or at once when the
        next try is due only after it (flood control's wait: nothing to gain by waiting)."""
        if self.pin is None or self._wanted is None or self._shown is self._wanted:
            return True
        loop = asyncio.get_running_loop()
        if self._next_try is not None and self._next_try > loop.time() + timeout:
            logger.warning("pinned state: the next try is due in {:.0f} s, after the {:.0f} s "
                           "left", self._next_try - loop.time(), timeout)
            return False
        try:
            await asyncio.wait_for(self._confirmed(), timeout)
        except TimeoutError:
            return False
        return True

    async def _confirmed(self) -> None:
        while self._shown is not self._wanted:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for task in (self._recall, self._publisher):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _now(self) -> datetime:
        # Whole seconds: the pinned line carries seconds, so copies of one change compare equal.
        return self.clock.now().replace(microsecond=0)

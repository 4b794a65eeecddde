"""The shutdown's steps share one deadline from the stop signal (README, Deploying: "the
process exits 0 within 25 s"; a Heroku-like host kills it at 30 s). Each step has a budget
sized for a peer that hangs (the loop 12 s, the alert flush and the Telegram bot's stop 10 s),
and the budgets added up to the whole promise: on a busy machine a SIGTERM with Binance and
Telegram both hanging took 27.5 s (tests/test_sigterm_with_exchange_and_telegram_hanging.py).
Now the alert flush gets what is left of the 25 s, less a reserve for closing."""

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from trader.app import SHUTDOWN_BUDGET_SECONDS, _shut_down
from trader.clock import ManualClock
from trader.stop_budget import (
    CLOSE_RESERVE_SECONDS,
    EXIT_PROMISE_SECONDS,
    MIN_STEP_SECONDS,
    StopSignal,
)


class HangingSink:
    async def stop(self) -> None:
        await asyncio.sleep(3600)       # Telegram holds every request unanswered


async def shut_down_with(stop: StopSignal) -> float:
    """Seconds `_shut_down` takes with a sink that never stops."""
    published = []
    engine = SimpleNamespace(stopping=False, positions={}, clock=ManualClock(
        datetime(2024, 1, 1, tzinfo=UTC)), alerter=SimpleNamespace(
            publish=lambda alert, at: published.append(alert)))
    services = SimpleNamespace(stop=_nothing)
    heartbeat = asyncio.create_task(asyncio.sleep(3600))
    started = time.monotonic()
    await _shut_down(engine, HangingSink(), heartbeat, _nothing, services, stop)  # type: ignore[arg-type]
    assert [a.name.value for a in published] == ["SHUTDOWN"]
    return time.monotonic() - started


async def _nothing() -> None:
    return None


async def test_the_alert_flush_gets_only_what_is_left_of_the_exit_promise():
    stop = StopSignal()
    stop.set()
    stop.at = time.monotonic() - (EXIT_PROMISE_SECONDS - CLOSE_RESERVE_SECONDS - 1.5)
    took = await shut_down_with(stop)     # ~1.5 s left: not the flush's own 10 s
    assert 1.0 < took < 4.0, took


async def test_a_step_cut_by_the_deadline_still_gets_its_minimum():
    stop = StopSignal()
    stop.set()
    stop.at = time.monotonic() - 60      # long past the promise
    assert stop.left(SHUTDOWN_BUDGET_SECONDS / 2) == MIN_STEP_SECONDS
    took = await shut_down_with(stop)
    assert MIN_STEP_SECONDS <= took < MIN_STEP_SECONDS + 2.0, took


def test_the_budget_is_whole_without_a_stop_signal_or_early_after_it():
    """The negatives: no stop requested (a start-up that failed), or a signal just now:
    each step keeps its own budget."""
    stop = StopSignal()
    assert stop.left(10.0) == 10.0
    stop.set()
    first = stop.at
    stop.set()                             # a second signal does not move the deadline
    assert stop.at == first
    assert stop.left(10.0) == 10.0

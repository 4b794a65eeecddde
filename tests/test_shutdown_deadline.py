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

from trader.app import ALERT_FLUSH_RESERVE_SECONDS, SHUTDOWN_BUDGET_SECONDS, _shut_down
from trader.clock import ManualClock
from trader.order_tracker import OrderTracker
from trader.stop_budget import (
    CLOSE_RESERVE_SECONDS,
    EXIT_PROMISE_SECONDS,
    MIN_STEP_SECONDS,
    StopSignal,
)


class HangingSink:
    async def stop(self) -> None:
        await asyncio.sleep(3600)       # Telegram holds every request unanswered


async def shut_down_with(stop: StopSignal, flush_pin=None) -> float:  # type: ignore[no-untyped-def]
    """Seconds `_shut_down` takes with a sink that never stops (and `flush_pin`, the pin's
    wait: confirmed at once by default)."""
    published = []
    engine = SimpleNamespace(stopping=False, positions={}, tracker=OrderTracker(), balance=None,
                             balance_at=None, symbols=[], clock=ManualClock(
        datetime(2024, 1, 1, tzinfo=UTC)), alerter=SimpleNamespace(
            publish=lambda alert, at: published.append(alert)))
    services = SimpleNamespace(stop=_nothing, flush_pin=flush_pin or _pinned)
    heartbeat = asyncio.create_task(asyncio.sleep(3600))
    started = time.monotonic()
    await _shut_down(engine, HangingSink(), heartbeat, _nothing, services, stop)  # type: ignore[arg-type]
    assert [a.name.value for a in published] == ["SHUTDOWN"]
    shut_down_with.said = published[0].text        # type: ignore[attr-defined]
    return time.monotonic() - started


async def _nothing() -> None:
    return None


async def _pinned(seconds: float) -> None:
    return None


async def test_a_pin_never_confirmed_gets_the_rest_but_the_alert_flush_reserve():
    """The pin waits first (the SHUTDOWN alert says whether it is pinned): it gets what is
    left of the promise but ALERT_FLUSH_RESERVE_SECONDS, the alert flush the rest; the
    whole stays within the promise less the close's reserve."""
    waited: list[float] = []

    async def never_confirmed(seconds: float) -> tuple[str, str]:
        waited.append(seconds)
        await asyncio.sleep(seconds)
        return "asleep", "Telegram did not confirm it"
    stop = StopSignal()
    stop.set()
    stop.at = time.monotonic() - 12.0       # the loop used its 12 s
    took = await shut_down_with(stop, never_confirmed)
    left = EXIT_PROMISE_SECONDS - CLOSE_RESERVE_SECONDS - 12.0
    assert abs(waited[0] - (left - ALERT_FLUSH_RESERVE_SECONDS)) < 0.5, waited
    assert left - 0.5 < took < left + 1.0, took
    assert "send /shutdown again" in shut_down_with.said      # type: ignore[attr-defined]


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

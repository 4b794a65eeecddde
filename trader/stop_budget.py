"""The time the agent's loop may take after SIGTERM: a Heroku-like host kills the process
30 s after it, and the process must have flushed its alerts and closed its database by then
(README: "exits 0 within 25 s").

The loop finishes the tick (or command) it is in, normally in well under a second. But each
order request whose answer does not come waits out its timeout (10 s), and an entry sends
three in a row (entry, stop-loss, take-profit): a tick against a hanging exchange took 33 s
after SIGTERM. So the loop gets `LOOP_BUDGET_AFTER_STOP` seconds, then it is cancelled where
it waits. That loses nothing a kill would not: every order request's intent was committed
before the request left, and each await commits the tick's writes before it suspends
(storage/unit_of_work.py); the next start resolves the requests whose answer was lost and
protects every position before trading (trader/startup.py).
"""

import asyncio
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from loguru import logger

from trader.position import Position, PositionState

# After SIGTERM: this for the loop, then at most ~10 s for the alert flush (trader/app.py).
LOOP_BUDGET_AFTER_STOP = 12.0     # seconds
EXIT_PROMISE_SECONDS = 25.0       # README, Deploying: "exits 0 within 25 s" of SIGTERM
# What the steps after the alert flush take: closing the exchange's session and the database,
# the interpreter's exit.
CLOSE_RESERVE_SECONDS = 3.0
MIN_STEP_SECONDS = 1.0            # a step cut by the deadline still gets this much


class StopSignal(asyncio.Event):
    """The stop request (SIGTERM, SIGINT) and when it came (`at`, time.monotonic()): the
    steps of the shutdown share one deadline instead of adding up their own budgets, each
    sized for a peer that hangs (the loop's 12 s, the pin's flush, the alert flush and the
    Telegram bot's stop: 25 s together, with no slack for a busy machine)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def set(self) -> None:
        if self.at is None:
            self.at = time.monotonic()
        super().set()

    def rest(self, reserve: float, otherwise: float) -> float:
        """All that is left before the exit promise, less the close's reserve and `reserve`
        (what the steps after this one need; never below MIN_STEP_SECONDS); `otherwise`
        when no stop was requested."""
        if self.at is None:
            return otherwise
        left = self.at + EXIT_PROMISE_SECONDS - CLOSE_RESERVE_SECONDS - reserve - time.monotonic()
        return max(MIN_STEP_SECONDS, left)

    def left(self, budget: float) -> float:
        """`budget` seconds, cut to what is left before the exit promise less the close's
        reserve (never below MIN_STEP_SECONDS); `budget` when no stop was requested."""
        if self.at is None:
            return budget
        left = self.at + EXIT_PROMISE_SECONDS - CLOSE_RESERVE_SECONDS - time.monotonic()
        return max(MIN_STEP_SECONDS, min(budget, left))


async def bounded_after_stop(work: Coroutine[Any, Any, None], stop: asyncio.Event,
                             budget: float = LOOP_BUDGET_AFTER_STOP) -> bool:
    """Run `work` to its end, but for at most `budget` seconds once `stop` is set.
    True when it ended by itself, False when it was cancelled at the budget's end."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=budget)
        if task.done():
            task.result()              # its own error, if any, goes on up
            return True
        logger.error("still busy {:.0f} s after the stop signal (a request that does not "
                     "answer?): cancelled there; the next start resolves what was in flight",
                     budget)
        task.cancel()
        await asyncio.wait({task})
        return False
    finally:
        stopping.cancel()
        if not task.done():            # we were cancelled ourselves
            task.cancel()


def unprotected(positions: Iterable[Position]) -> list[str]:
    """Symbols whose position has no stop-loss covering it on the exchange right now (an
    entry or a stop placement cut short): the shutdown message must not claim them
    protected."""
    return [p.symbol for p in positions if p.state is not PositionState.CLOSED
            and not (p.state.open and p.stop.covers(p.quantity))]

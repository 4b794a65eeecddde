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
from collections.abc import Coroutine, Iterable
from typing import Any

from loguru import logger

from trader.position import Position, PositionState

# After SIGTERM: this for the loop, then at most ~10 s for the alert flush (trader/app.py).
LOOP_BUDGET_AFTER_STOP = 12.0     # seconds


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

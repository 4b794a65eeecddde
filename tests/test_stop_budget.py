"""After SIGTERM the agent's loop gets a bounded time (trader/stop_budget.py): a tick whose
order requests hang (each waits out its 10 s timeout, three in a row for an entry) kept
`tradebot run` alive 33 s after SIGTERM, past the host's 30 s kill, with the alerts not
flushed. And the going-down message does not claim protected what has no stop.

Found from outside: `tradebot run` against the fake Binance with every order endpoint
hanging, SIGTERM while a /long ran: exit after 33.0 s."""

import asyncio
import time

from tests.positions import make
from trader.position import PositionState
from trader.stop_budget import bounded_after_stop, unprotected


async def test_a_loop_stuck_after_the_stop_signal_is_cancelled_at_the_budget():
    stop = asyncio.Event()
    reached_the_end = False

    async def loop_stuck_in_a_request() -> None:
        nonlocal reached_the_end
        await asyncio.sleep(60)          # a request that does not answer
        reached_the_end = True

    async def sigterm_soon() -> None:
        await asyncio.sleep(0.05)
        stop.set()

    asyncio.get_running_loop().create_task(sigterm_soon())
    started = time.monotonic()
    assert await bounded_after_stop(loop_stuck_in_a_request(), stop, budget=0.2) is False
    assert time.monotonic() - started < 2.0 and not reached_the_end


async def test_a_loop_that_ends_within_the_budget_ends_by_itself():
    stop = asyncio.Event()

    async def tick_then_stop() -> None:
        stop.set()
        await asyncio.sleep(0.05)       # the tick it was in finishes

    assert await bounded_after_stop(tick_then_stop(), stop, budget=5.0) is True


def test_positions_without_a_covering_stop_are_named():
    protected = make(state=PositionState.PROTECTED, live_legs=True)
    naked = make(state=PositionState.ATTACHING, live_legs=False, symbol="ETHUSDT")
    entering = make(state=PositionState.ENTERING, symbol="SOLUSDT", quantity="0")
    assert unprotected([protected, naked, entering]) == ["ETHUSDT", "SOLUSDT"]

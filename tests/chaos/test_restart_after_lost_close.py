"""A finding of the chaos test (seed 7, 30 kills, two busy loops beside it), kept as a test:
the agent entered while its database had gone read-only, so
the entry's intent stayed SENT in the database; the stop-loss it placed filled at once and
the close could not be saved either. Killed, restarted on that database, the agent resolved
the entry (SENT -> FILLED) and sent the same stop-loss and take-profit client ids again for
a position the exchange had already closed, then cancelled them: "client id ...-sl1
accepted 2 times". One intent, one order: a restarted agent must find its own orders on the
exchange (by their deterministic client ids) before it sends them again.

Here the same state is made on purpose: the entry's answer is held back and the agent is
killed while it waits (its intent SENT); meanwhile the stop-loss and take-profit under the
client ids the agent would give them are placed on the exchange, and either the stop fills
(the position is closed) or the position stays open. Restarted, the agent must send
nothing in either case.
"""

import asyncio
import random
import signal
from dataclasses import replace
from decimal import Decimal

import pytest

from tests.chaos import invariants
from tests.chaos.agent import agent_env, log_since, start_agent, wait_for_boot
from tests.chaos.market import Market
from tests.fakes import binance_harness as harness
from tests.fakes.binance_server import FakeBinance
from trader.domain import Side

SYMBOL = "BTCUSDT"
BOUND = 60.0          # seconds; bounds of condition waits

pytestmark = pytest.mark.chaos


async def entry_sent_then_killed(fake: FakeBinance, env: dict[str, str], log_path) -> str:
    """Start the agent with the entry's answer held back; kill it once the exchange has the
    entry. Returns the entry's client id."""
    fake.inject_fault("POST /fapi/v1/order", delay=10.0, times=1)   # executed, answer late
    process = await start_agent(env, log_path)
    try:
        assert await harness.eventually(
            lambda: any("-en" in c for c in fake.accepted_orders), BOUND), \
            log_since(log_path, 0)[-3000:]
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
        fake.clear_faults()
    return next(c for c in fake.accepted_orders if "-en" in c)


async def place_its_legs_by_hand(fake: FakeBinance, entry_id: str, *, close: bool) -> None:
    """The agent's own stop-loss and take-profit, under the client ids it would give them,
    as if it had placed them before dying unrecorded; `close`: the stop then fills and the
    take-profit is cancelled (the position is over)."""
    position = fake.sim.position(SYMBOL)
    assert position.quantity != 0
    long = position.quantity > 0
    mark = fake.sim.mark_price(SYMBOL)
    trigger = mark * (Decimal("0.99") if long else Decimal("1.01"))
    exit_side = Side.SELL if long else Side.BUY
    stop = replace(harness.stop_loss(exit_side, str(trigger.quantize(Decimal("0.1")))),
                   client_id=entry_id.replace("-en1", "-sl1"))
    target = replace(harness.take_profit(exit_side, str((2 * mark - trigger).quantize(
        Decimal("0.1"))), str(abs(position.quantity))),
        client_id=entry_id.replace("-en1", "-tp1"))
    async with harness.started_exchange(fake) as exchange:
        await exchange.place(stop)
        await exchange.place(target)
        if close:
            await fake.move_price(SYMBOL, mark * (Decimal("0.98") if long else Decimal("1.02")))
            assert fake.sim.position(SYMBOL).quantity == 0, "the stop closed the position"
            await exchange.cancel(SYMBOL, target.client_id)


@pytest.mark.parametrize("closed_while_down", [True, False], ids=["closed", "still-open"])
async def test_a_restart_sends_no_order_again_for_its_own_orders_placed_before_it_died(
        tmp_path, closed_while_down: bool) -> None:
    """Closed while it was down: finalized (labelled by the stop's fill), nothing sent.
    Still open: the live legs under its own ids are taken back as the position's legs,
    nothing sent again (no duplicate client id), the position protected by exactly them."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}, flat_orders="keep") as fake:
        market = Market(fake, random.Random(7), SYMBOL)
        for _ in range(40):
            await market.push()                 # the strategy's warm-up; it enters at once
        log_path = tmp_path / "agent.log"
        env = agent_env(fake, tmp_path / "tradebot.db", SYMBOL)
        entry_id = await entry_sent_then_killed(fake, env, log_path)
        await place_its_legs_by_hand(fake, entry_id, close=closed_while_down)

        accepted_before_restart = len(fake.accepted_orders)
        offset = log_path.stat().st_size
        process = await start_agent(env, log_path)
        try:
            await wait_for_boot(log_path, offset, process, BOUND)
            await harness.eventually(lambda: invariants.settled(fake.sim, [SYMBOL]), BOUND)
            await asyncio.sleep(3)              # a few ticks more: nothing may follow
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        log = log_since(log_path, offset)
    sent_again = fake.accepted_orders[accepted_before_restart:]
    assert sent_again == [], f"orders sent again after the restart\n{log[-3000:]}"
    assert invariants.duplicate_orders(fake.accepted_orders) == []
    if closed_while_down:
        assert "closed (STOP_LOSS)" in log
    else:
        live = sorted(o.client_id for o in fake.sim.open_orders(SYMBOL))
        assert live == sorted([entry_id.replace("-en1", "-sl1"),
                               entry_id.replace("-en1", "-tp1")])

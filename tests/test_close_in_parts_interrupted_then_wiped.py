"""A /close in several parts, interrupted, then a restart on a wiped disk: the close goes on.

Found by review 11 (h-review11, /work/notes/rv11-scripts/
test_rv11_sigterm_during_close_in_parts.py, process level): the agent's own LONG 0.5 with
MARKET_LOT_SIZE 0.2 is closed in 3 parts; part 2's connection drops (nothing executed); the
process goes down (SIGTERM) and its SHUTDOWN promised that the next start closes what is
left. On a wiped disk the restart said "picked up its own LONG 0.3 again; protecting it"
(trader/reconcile.py adopted it ATTACHING), and a second /close sent `…-fl1` again: one
client id, two orders (FLATTEN was not among the ids a pickup asks the exchange about,
trader/adoption.py WIPE_PROBED_ROLES). The same process (or a kept database) goes on
closing: tests/test_market_lot_size.py."""

from collections import Counter
from dataclasses import replace
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, booted, market_up_to_now
from trader.commands import CommandKind
from trader.domain import ClientId, OrderRole, Side
from trader.intents import part_client_id
from trader.position import PositionState

D = Decimal


def market_limited(fake: FakeBinance, largest: Decimal) -> None:
    fake.sim.set_rules(replace(fake.sim.rules_for(SYMBOL), market_max_qty=largest))


def market_ids(fake: FakeBinance) -> list[str]:
    return [r.params["newClientOrderId"] for r in fake.requests("POST /fapi/v1/order")
            if r.params.get("type") == "MARKET"]


async def own_long_then_close_interrupted(fake: FakeBinance, tmp_path) -> str:
    """The agent's own LONG 0.5 (adopted by a first process: its ids are the agent's),
    /close with MARKET_LOT_SIZE 0.2, part 2 dropped before Binance took it; the process
    is gone. Returns the position's key."""
    await market_up_to_now(fake)
    await fake.open_position_by_hand(SYMBOL, Side.BUY, D("0.5"))
    async with booted(fake, tmp_path / "first") as agent:
        key = agent.engine.positions[SYMBOL].key
    market_limited(fake, D("0.2"))
    async with booted(fake, tmp_path / "first") as agent:
        close = str(ClientId(SYMBOL, key, OrderRole.FLATTEN, 1))
        fake.inject_fault("POST /fapi/v1/order", drop_connection=True, execute=False,
                          only={"newClientOrderId": part_client_id(close, 1)})
        await agent.run(CommandKind.CLOSE)
        assert agent.engine.positions[SYMBOL].state is PositionState.CLOSING
    fake.clear_faults()
    assert fake.sim.position(SYMBOL).quantity == D("0.3")
    return key


async def test_a_close_in_parts_interrupted_is_carried_on_after_a_wiped_restart(tmp_path):
    async with FakeBinance(prices={SYMBOL: D("50000")}) as fake:
        key = await own_long_then_close_interrupted(fake, tmp_path)
        fake.clear_request_log()
        async with booted(fake, tmp_path / "wiped") as agent:
            engine = agent.engine
            for _ in range(3):
                if SYMBOL not in engine.positions:
                    break
                await engine.tick()
            assert fake.sim.position(SYMBOL).quantity == 0, (
                "the close decided before the wipe was not carried on",
                engine.positions.get(SYMBOL))
            twice = [cid for cid, n in Counter(fake.accepted_orders).items() if n > 1]
            assert twice == [], f"sent again under an id used before: {twice}"
            assert all(ClientId.parse(cid).seq > 1 for cid in market_ids(fake)  # type: ignore[union-attr]
                       if ClientId.parse(cid).position_key == key)  # type: ignore[union-attr]
            stops = [r for r in fake.requests("POST /fapi/v1/algoOrder")
                     if r.params.get("clientAlgoId", "").startswith(f"tb-{SYMBOL}-{key}-sl")]
            assert stops == [], "a new stop was placed for a position being closed"


async def test_negative_the_own_position_without_a_close_sent_is_protected_as_before(tmp_path):
    """No close was ever sent: the pickup takes it up as an open trade (ATTACHING, then
    protected by its live legs), nothing is sent at market."""
    async with FakeBinance(prices={SYMBOL: D("50000")}) as fake:
        await market_up_to_now(fake)
        await fake.open_position_by_hand(SYMBOL, Side.BUY, D("0.5"))
        async with booted(fake, tmp_path / "first") as agent:
            key = agent.engine.positions[SYMBOL].key
        fake.clear_request_log()
        async with booted(fake, tmp_path / "wiped") as agent:
            await agent.engine.tick()
            position = agent.engine.positions[SYMBOL]
            assert (position.key, position.state) == (key, PositionState.PROTECTED)
            assert market_ids(fake) == []
            assert fake.sim.position(SYMBOL).quantity == D("0.5")

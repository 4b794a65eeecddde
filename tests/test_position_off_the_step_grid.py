"""A position whose size is off the symbol's step grid: the step size (exchangeInfo LOT_SIZE
stepSize, https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
rest-api/Exchange-Information) grew since it was opened, e.g. between two runs. Its stop
and take-profit must each be placed once and cover it all.

Found from outside: the real engine and python-binance against the fake Binance, a LONG
0.105 on the exchange and a step of 0.01 at start. The leg for 0.105 was refused (-1111
precision), resent rounded down to 0.1, and a leg for 0.1 does not cover 0.105: placed
again, refused, rounded, ... hundreds of orders a minute ("step limit reached"), several
stops and take-profits live at once, and 0.005 never protected. A reduce-only order
never closes more than the position, so the agent now rounds such a leg up to the step."""

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import booted_engine, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_faults import run
from trader.commands import CommandKind
from trader.domain import OrderType, Side
from trader.position import PositionState

SYMBOL = "BTCUSDT"
COARSER_STEP = Decimal("0.01")


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as server:
        yield server


def live(fake: FakeBinance, kind: OrderType) -> list:
    return [o for o in fake.sim.open_orders(SYMBOL) if o.type is kind]


@pytest.mark.parametrize("learned", ["at start", "from a rejection"])
async def test_a_position_off_the_step_grid_gets_one_stop_and_one_target_covering_it(
        fake, tmp_path, learned):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.105"))
    rules = replace(fake.sim.rules_for(SYMBOL), step_size=COARSER_STEP, min_qty=COARSER_STEP)
    if learned == "at start":
        fake.sim.set_rules(rules)
    async with booted_engine(settings_for(fake, db_path=tmp_path / "t.db")) as engine:
        if learned == "from a rejection":      # the rules change under the running agent
            fake.sim.set_rules(rules)
            await fake.cancel_order_by_hand(SYMBOL, engine.positions[SYMBOL].stop.order.client_id)
        for _ in range(3):
            await engine.tick()
        stops, targets = live(fake, OrderType.STOP_MARKET), live(fake, OrderType.TAKE_PROFIT_MARKET)
        assert [o.quantity for o in stops] == [Decimal("0.11")], stops
        assert len(targets) == 1 and targets[0].quantity >= Decimal("0.105"), targets
        assert len(fake.accepted_orders) <= 5, fake.accepted_orders
        position = engine.positions[SYMBOL]
        assert position.state is PositionState.PROTECTED and position.quantity == Decimal("0.105")
        await engine.tick()
        assert len(fake.accepted_orders) <= 5, fake.accepted_orders     # and it stays so


async def test_close_of_a_position_off_the_step_grid_closes_all_of_it(fake, tmp_path):
    """/close sent a market close for 0.105, refused (-1111), resent rounded down to 0.1:
    0.005 stayed open, and no market order can close less than a step (-4003 for the
    0.005 rounded down to 0), so neither could a second /close."""
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.105"))
    fake.sim.set_rules(replace(fake.sim.rules_for(SYMBOL), step_size=COARSER_STEP,
                               min_qty=COARSER_STEP))
    async with booted_engine(settings_for(fake, db_path=tmp_path / "t.db")) as engine:
        await engine.tick()
        result = await run(engine, CommandKind.CLOSE, symbol=SYMBOL)
        assert result.ok, result.lines
        assert fake.sim.position(SYMBOL).quantity == 0
        assert SYMBOL not in engine.positions
        assert not fake.sim.open_orders(SYMBOL)
        assert [c for c in fake.accepted_orders if "-fl" in c] == [
            c for c in fake.accepted_orders if c.endswith("-fl1")]        # one close

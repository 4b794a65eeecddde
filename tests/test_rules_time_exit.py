"""The time-in-trade exit honours TRADEBOT_TIME_IN_TRADE_MINUTES (20..60) exactly: the
setting is the limit unless the strategy explicitly asks for a shorter one."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, long_signal, make_world
from trader.domain import CloseReason, Side, Signal
from trader.entry import EntryLimits, entering_position, time_limit_for
from trader.risk import EntryPlan

LIMITS = EntryLimits(leverage=5, max_heat=Decimal("0.06"), max_position_pct=Decimal("0.5"),
                     time_in_trade=timedelta(minutes=60), cooldown=timedelta(minutes=5))
PLAN = EntryPlan(Decimal("0.01"), Decimal("49000"), Decimal("52000"), Decimal("10"),
                 Decimal("500"), Decimal("100"), Decimal("0.02"), Decimal("0.04"))
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def signal(time_limit: timedelta | None = None) -> Signal:
    return Signal(Side.BUY, 0.8, Decimal("0.04"), Decimal("0.02"), time_limit=time_limit)


@pytest.mark.parametrize("minutes", [20, 40, 60])
def test_a_signal_without_its_own_limit_takes_the_setting(minutes: int) -> None:
    setting = timedelta(minutes=minutes)
    assert time_limit_for(signal(), setting) == setting


@pytest.mark.parametrize(("asked", "setting", "expected"), [
    (30, 60, 30),      # a strategy may ask for a shorter stay
    (60, 20, 20),      # never a longer one than the operator allows
    (60, 60, 60),
])
def test_a_strategy_limit_only_ever_shortens_the_setting(asked: int, setting: int,
                                                         expected: int) -> None:
    assert time_limit_for(signal(timedelta(minutes=asked)), timedelta(minutes=setting)) \
        == timedelta(minutes=expected)


def test_the_planned_position_carries_the_setting_at_60_minutes() -> None:
    position = entering_position(SYMBOL, signal(), PLAN, Decimal("50000"), NOW, NOW, LIMITS)
    assert position.time_limit == timedelta(minutes=60)


async def hold_long(tmp_path, minutes: int):
    world = await make_world(tmp_path, TRADEBOT_TIME_IN_TRADE_MINUTES=minutes)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    position = world.engine.positions[SYMBOL]
    return world, position


@pytest.mark.parametrize("minutes", [60, 20])
async def test_the_position_closes_at_the_configured_time_not_before(tmp_path,
                                                                     minutes: int) -> None:
    """Engine level, on the paper exchange: still open one candle (5 min) before the limit,
    closed with TIME_EXIT at the limit."""
    world, position = await hold_long(tmp_path, minutes)
    assert position.time_limit == timedelta(minutes=minutes)
    while world.clock.now() + timedelta(minutes=5) < position.opened_at + position.time_limit:
        await world.step()
        assert SYMBOL in world.engine.positions, f"closed at {world.clock.now()}"
    await world.step()
    assert world.clock.now() - position.opened_at == timedelta(minutes=minutes)
    assert SYMBOL not in world.engine.positions
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert world.store.closed_positions()[-1].close_reason is CloseReason.TIME_EXIT

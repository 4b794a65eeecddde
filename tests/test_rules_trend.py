"""The trend/range input reaches the adaptive reward/risk in the live path: the engine's
entry (trader/entry.py -> trader/risk.py `reward_risk`) gives a trend a wider target than a
range (NORMAL regime: 2.0 x the stop in a trend, 1.5 x in a range)."""

from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, long_signal, make_world
from trader.risk import reward_risk
from trader.strategy.regime import Regime

D = Decimal


async def target_multiple(tmp_path, step_pct: str) -> Decimal:
    """Open a long whose signal leaves the target to the reward/risk rule (tp 0) after 130
    candles rising by `step_pct` each; the target distance over the stop distance."""
    world = await make_world(tmp_path)
    close = D("100000")
    for _ in range(130):
        close = (close * (1 + D(step_pct))).quantize(D("0.1"))
        await world.step(close)
    assert world.engine.counters.get(SYMBOL, "regime_state") == "NORMAL"
    world.strategy.next = long_signal("0.01", "0")
    await world.step(close)
    position = world.engine.positions[SYMBOL]
    stop_distance = position.initial_stop_price - position.entry_price
    target_distance = position.take_profit.trigger_price - position.entry_price
    return target_distance / -stop_distance


@pytest.mark.parametrize(("step_pct", "trending"), [("0.001", True), ("0", False)])
async def test_the_trend_input_sets_the_entrys_target_through_the_engine(
        tmp_path, step_pct: str, trending: bool) -> None:
    multiple = await target_multiple(tmp_path, step_pct)
    expected = reward_risk(Regime.NORMAL, trending)
    # The legs are planned from the mark and rounded away from it; the fill moves the entry
    # by the spread and slippage: the multiple is the rule's within a few hundredths.
    assert abs(multiple - expected) < D("0.05"), (multiple, expected)
    assert reward_risk(Regime.NORMAL, True) - reward_risk(Regime.NORMAL, False) == D("0.5")

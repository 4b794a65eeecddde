"""Optional confidence sizing (TRADEBOT_CONFIDENCE_SIZING, off by default): the risk budget
scales with the signal's confidence, from TRADEBOT_CONFIDENCE_MIN_SCALE (0.5) at
confidence 0 to 1.0 at confidence 1."""

import math
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.engine_world import SYMBOL, make_world
from tests.test_risk import sizing
from trader.config import load_settings
from trader.domain import Side, Signal
from trader.risk import EntryPlan, confidence_scale, plan_entry

D = Decimal
HALF = D("0.5")


@pytest.mark.parametrize(("confidence", "scale"), [
    (0.0, "0.5"), (1.0, "1"), (0.5, "0.75"), (0.2, "0.6"),
    (1.7, "1"), (-0.3, "0.5"),                          # outside [0, 1]: clamped
    (math.nan, "0.5"), (math.inf, "0.5"), (-math.inf, "0.5"),   # not a number: the least
])
def test_confidence_scale_at_the_edges(confidence: float, scale: str) -> None:
    assert confidence_scale(confidence, HALF) == D(scale)


def test_the_floor_is_the_scale_at_zero_confidence() -> None:
    assert confidence_scale(0.0, D("0.8")) == D("0.8")
    assert confidence_scale(1.0, D("0.8")) == 1


def with_confidence(confidence: float, floor: Decimal | None):
    signal = Signal(Side.BUY, confidence, tp_pct=D("0.02"), sl_pct=D("0.01"))
    return plan_entry(replace(sizing(), signal=signal, confidence_floor=floor))


def test_off_by_default_confidence_changes_nothing() -> None:
    assert sizing().confidence_floor is None
    assert with_confidence(0.0, None) == with_confidence(1.0, None) == plan_entry(sizing())
    settings = load_settings(_env_file=None)
    assert settings.confidence_sizing is False and settings.confidence_min_scale == HALF


def test_full_confidence_sizes_like_off_and_zero_confidence_halves_the_risk() -> None:
    full, off = with_confidence(1.0, HALF), with_confidence(1.0, None)
    low = with_confidence(0.0, HALF)
    assert isinstance(full, EntryPlan) and isinstance(low, EntryPlan)
    assert full == off
    assert low.risk_amount <= D("10000") * D("0.025") * HALF
    assert low.quantity == sizing().rules.round_qty(off.quantity * HALF) or \
        low.quantity == sizing().rules.round_qty(off.quantity * HALF) - sizing().rules.step_size


@given(st.floats(min_value=0, max_value=1), st.decimals(min_value=D("0.1"), max_value=1,
                                                        places=2))
def test_scaled_risk_stays_between_the_floor_and_the_full_budget(confidence: float,
                                                                  floor: Decimal) -> None:
    scaled, off = with_confidence(confidence, floor), with_confidence(confidence, None)
    assert isinstance(off, EntryPlan)
    if isinstance(scaled, EntryPlan):
        assert scaled.risk_amount <= off.risk_amount
        assert scaled.quantity >= sizing().rules.round_qty(off.quantity * floor) \
            - sizing().rules.step_size


async def open_quantity(tmp_path, confidence: float, **env) -> Decimal:
    world = await make_world(tmp_path, **env)
    await world.warm_up()
    world.strategy.next = Signal(Side.BUY, confidence, D("0.02"), D("0.01"), reason="test")
    await world.step()
    return world.engine.positions[SYMBOL].quantity


async def test_the_engine_sizes_a_low_confidence_signal_down_only_when_asked(tmp_path) -> None:
    off = await open_quantity(tmp_path / "off", 0.0)
    on = await open_quantity(tmp_path / "on", 0.0, TRADEBOT_CONFIDENCE_SIZING="true")
    assert on < off and abs(on - off * HALF) <= D("0.002")

"""TRADEBOT_COOLDOWN_MINUTES decides the pause after a close; a strategy may ask for more,
never less. The default strategy's signals carried 5 min of their own, so 0 (or 2) did
nothing: the same trades, and "cooling down" 5 min after a close, while report.txt listed
the setting as changed (found by a reviewer)."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.test_rules_time_exit import LIMITS, NOW, PLAN, signal
from trader.entry import entering_position, manual_signal
from trader.strategy.default import DefaultStrategy


@pytest.mark.parametrize("minutes", [0, 2, 5, 30])
def test_the_setting_is_the_cooldown_of_the_default_strategys_and_manual_entries(
        minutes: int) -> None:
    limits = replace(LIMITS, cooldown=timedelta(minutes=minutes))
    for wanted in (signal(), manual_signal(signal().side, [], "manual /long (test)")):
        position = entering_position("BTCUSDT", wanted, PLAN, Decimal("50000"), NOW, NOW,
                                     limits)
        assert position.cooldown == timedelta(minutes=minutes)
    assert DefaultStrategy().cooldown == timedelta(0)     # no pause of its own


def test_a_strategy_may_ask_for_a_longer_one() -> None:
    longer = replace(signal(), cooldown=timedelta(minutes=15))
    position = entering_position("BTCUSDT", longer, PLAN, Decimal("50000"), NOW, NOW, LIMITS)
    assert position.cooldown == timedelta(minutes=15)

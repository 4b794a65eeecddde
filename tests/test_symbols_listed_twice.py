"""TRADEBOT_SYMBOLS naming a symbol twice ("BTCUSDT,ETHUSDT,btcusdt", an easy slip when the
list is edited by hand) was accepted as it stood: `tradebot config` showed
"BTCUSDT,ETHUSDT,BTCUSDT" and the agent started with BTCUSDT twice in its symbol list (two
ticks of it per loop, its regime listed twice in /status, "symbols BTCUSDT, ETHUSDT,
BTCUSDT" in STARTUP). A configuration error naming the variable and the symbol, as any bad
value is (README, Configuration: one line naming the variable, exit code 2)."""

import pytest

from tests.test_config import problems_for


@pytest.mark.parametrize("value", ["BTCUSDT,ETHUSDT,btcusdt", "BTCUSDT, BTCUSDT"])
def test_a_symbol_listed_twice_is_a_configuration_error(monkeypatch, value):
    problems = problems_for(monkeypatch, TRADEBOT_SYMBOLS=value)
    assert len(problems) == 1, problems
    assert problems[0].startswith("TRADEBOT_SYMBOLS: ") and "BTCUSDT" in problems[0], problems
    assert "twice" in problems[0], problems

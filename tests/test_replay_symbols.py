"""`tradebot run --replay` replays the configured symbols or says why it cannot: a symbol
without candles (TRADEBOT_SYMBOLS=ETHUSDT replayed BTCUSDT and XRPUSDT, and ETHUSDT,XRPUSDT
dropped ETHUSDT, without a word), or symbols whose candles never share a moment (the bundled
BTCUSDT of 2026 and XRPUSDT of 2021 ran on one clock from 2021: BTCUSDT raised STALE_DATA
for years of replay time). Found by a reviewer; `tradebot backtest` refuses the first alike
("no data for ETHUSDT") and runs the second one period after the other."""

import pytest

from trader.config import ConfigError, load_settings
from trader.replay_input import replay_candles


def settings(symbols: str | None):  # type: ignore[no-untyped-def]
    env = {"TRADEBOT_SYMBOLS": symbols} if symbols else {}
    return load_settings(_env_file=None, **env)


@pytest.mark.parametrize("symbols", ["ETHUSDT", "ETHUSDT,XRPUSDT"])
def test_a_configured_symbol_without_candles_stops_the_replay_naming_it(symbols: str) -> None:
    with pytest.raises(ConfigError) as refused:
        replay_candles(settings(symbols), None)
    assert refused.value.problems == [
        "TRADEBOT_SYMBOLS: no bundled candles for ETHUSDT (the bundled data has BTCUSDT, "
        "XRPUSDT); give your own with --data FILE"]


def test_symbols_whose_candles_never_overlap_are_not_replayed_on_one_clock() -> None:
    with pytest.raises(ConfigError) as refused:
        replay_candles(settings("BTCUSDT,XRPUSDT"), None)
    problem, = refused.value.problems
    assert problem.startswith("TRADEBOT_SYMBOLS: a replay runs one clock, and the candles of ")
    assert "BTCUSDT (2026-02-08 08:30 to 2026-02-15 07:15 UTC)" in problem, problem
    assert "XRPUSDT (2021-11-15 00:00 to 2021-11-21 22:30 UTC)" in problem, problem


@pytest.mark.parametrize("symbols", [None, "BTCUSDT", "XRPUSDT"])
def test_a_symbol_with_candles_is_replayed_alone(symbols: str | None) -> None:
    candles = replay_candles(settings(symbols), None)
    assert list(candles) == [symbols or "BTCUSDT"]

"""The spread breaker: "spread > 1.2 x its rolling median", with a floor in ticks (the
spread must exceed TRADEBOT_SPREAD_MIN_TICKS ticks, default 2) instead of an absolute
percentage that the liquid books (BTC, ETH: one 0.1 USDT tick on 50,000 is 0.0002 %)
never reach."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine_world import SYMBOL, long_signal, make_world
from trader.breaker_rules import check_spread
from trader.guard_state import GuardConfig, GuardState
from trader.guards import allow_entry
from trader.market.indicators import MedianWindow, rolling_median

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
PRICE = Decimal("50000")
TICK = Decimal("0.1")
CFG = GuardConfig()


def pct(ticks: str) -> Decimal:
    """A BTC spread of `ticks` ticks at 50,000, as a fraction of the price."""
    return Decimal(ticks) * TICK / PRICE


ONE_TICK_HISTORY = [pct("1")] * 50


def check(ticks: str, history: list[Decimal] | MedianWindow = ONE_TICK_HISTORY,
          cfg: GuardConfig = CFG) -> list:
    return check_spread(GuardState(), SYMBOL, pct(ticks), Decimal(ticks), history, NOW, cfg)[1]


def test_a_btc_spread_widening_from_one_to_three_ticks_trips_the_breaker() -> None:
    events = check("3")
    assert [event.name for event in events] == ["spread:BTCUSDT"]
    assert "3 ticks" in events[0].text


@pytest.mark.parametrize("ticks", ["1", "2"])
def test_a_spread_of_at_most_the_floor_in_ticks_never_trips(ticks: str) -> None:
    """2 ticks is twice the 1-tick median, but one tick either way is tick noise."""
    assert check(ticks) == []


def test_the_floor_in_ticks_is_a_setting() -> None:
    assert check("2", cfg=GuardConfig(spread_min_ticks=1)) != []
    assert check("3", cfg=GuardConfig(spread_min_ticks=3)) == []


def test_above_the_floor_the_rule_is_the_rolling_median() -> None:
    wide_history = [pct("10")] * 50
    assert check("12", wide_history) == [], "12 ticks is exactly 1.2 x the median: no trip"
    assert check("12.1", wide_history) != []


async def test_the_engine_trips_the_spread_breaker_on_a_btc_like_book(tmp_path) -> None:
    """Real engine on the paper exchange: BTC at 100,000 quoted one 0.1 tick wide, then
    five ticks wide (0.0005 %): the breaker trips and the next signal is not taken."""
    world = await make_world(tmp_path)
    world.paper.sim.config.spread[SYMBOL] = Decimal("0.000001")     # 0.1 at 100,000
    await world.warm_up()
    assert "spread:BTCUSDT" not in world.engine.guard_state.breakers
    world.paper.sim.config.spread[SYMBOL] = Decimal("0.000005")     # 5 ticks
    world.strategy.next = long_signal()
    await world.step()
    assert "spread:BTCUSDT" in world.engine.guard_state.breakers
    assert any("spread" in text for text in world.alerts("BREAKER_TRIPPED"))
    assert not allow_entry(world.engine.guard_state, SYMBOL, world.clock.now())[0]
    assert SYMBOL not in world.engine.positions


@settings(max_examples=200, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=1, places=6, allow_nan=False), max_size=60),
       st.integers(min_value=1, max_value=9))
def test_the_kept_median_window_is_the_median_of_the_last_values(values, size) -> None:
    """The breaker keeps its last spreads sorted as they come (no sort per tick): its median
    is rolling_median of the same last `size` values, after every value."""
    window = MedianWindow(size)
    for seen, value in enumerate(values, start=1):
        window.append(value)
        last = values[max(0, seen - size):seen]
        assert len(window) == len(last)
        assert window.median() == rolling_median(last)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.decimals(min_value=0, max_value=1, places=6, allow_nan=False),
                          st.booleans()), max_size=60),
       st.integers(min_value=1, max_value=9))
def test_a_median_first_asked_late_is_the_median_of_the_last_values(values, size) -> None:
    """The window sorts nothing until a median is asked (a narrow book never asks): asked
    first after any number of values, then now and then, it is still rolling_median of
    the last `size` values."""
    window = MedianWindow(size)
    for seen, (value, asked) in enumerate(values, start=1):
        window.append(value)
        if asked:
            last = [kept for kept, _ in values[max(0, seen - size):seen]]
            assert len(window) == len(last)
            assert window.median() == rolling_median(last)


def test_the_rule_reads_the_same_from_the_kept_window_as_from_a_list() -> None:
    window = MedianWindow(100)
    for ticks in ["1", "1", "2", "1"]:
        window.append(pct(ticks))
    history = [pct(ticks) for ticks in ["1", "1", "2", "1"]]
    assert [e.text for e in check("3", window)] == [e.text for e in check("3", history)] != []

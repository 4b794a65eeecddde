"""Trade management: partial take-profit, breakeven price, tighter stop, trailing stop,
time exit (the pure rules `trader.lifecycle.step` applies on every tick)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.positions import make
from trader.domain import Side
from trader.management import (
    TrailingDistance,
    best_price,
    breakeven_price,
    partial_quantity,
    partial_tp_trigger,
    should_take_partial,
    stop_crossed,
    tighter_stop,
    time_exit_due,
    trailing_stop,
)
from trader.position import Position, PositionState
from trader.symbol_rules import SymbolRules

D = Decimal
OPENED = datetime(2024, 1, 1, 12, tzinfo=UTC)
RULES = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                    min_notional=D("100"))


def position(side: Side = Side.BUY, entry: str = "50000", qty: str = "0.2",
             stop: str | None = None, **changes: Any) -> Position:
    """A protected position with its stop 1 % away from the entry unless `stop` is given."""
    trigger_price = D(stop) if stop is not None else D(entry) * (1 - side.sign * D("0.01"))
    take_profit_trigger = D(entry) * (1 + side.sign * D("0.02"))
    return make(side=side, entry=entry, quantity=qty, stop=trigger_price, tp=take_profit_trigger,
                opened_at=OPENED, **changes)


# --- partial take-profit -----------------------------------------------------------------

@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12))
def test_partial_trigger_is_always_between_35_and_50_basis_points(symbol: str) -> None:
    assert D("0.0035") <= partial_tp_trigger(symbol + "USDT") <= D("0.0050")


def test_partial_trigger_is_tuned_per_symbol() -> None:
    assert partial_tp_trigger("BTCUSDT") < partial_tp_trigger("XRPUSDT")


def test_partial_is_taken_at_the_trigger_for_longs_and_shorts() -> None:
    long_pos = position()                                  # BTC trigger 0.35 %
    assert not should_take_partial(long_pos, D("50174"))
    assert should_take_partial(long_pos, D("50175"))
    short_pos = position(Side.SELL)
    assert not should_take_partial(short_pos, D("49826"))
    assert should_take_partial(short_pos, D("49825"))


def test_partial_is_taken_once_and_only_when_protected() -> None:
    assert not should_take_partial(position(partial_taken=True), D("51000"))
    assert not should_take_partial(position(state=PositionState.ATTACHING), D("51000"))


def test_partial_quantity_is_rounded_down_to_the_step() -> None:
    assert partial_quantity(position(qty="0.203"), RULES) == D("0.101")


def test_partial_quantity_is_zero_when_part_or_remainder_would_be_dust() -> None:
    assert partial_quantity(position(qty="0.001"), RULES) == 0          # part rounds to 0
    assert partial_quantity(position(qty="0.003"), RULES) == 0          # 0.001 x 50000 < 100
    assert partial_quantity(position(qty="0.003"), RULES, price=D("200000")) == D("0.001")


# --- breakeven -------------------------------------------------------------------------

def test_breakeven_covers_round_trip_fees_rounded_in_the_positions_favour() -> None:
    long_be = breakeven_price(position(entry="50000.3"), D("0.0005"), RULES)
    assert long_be == D("50050.4")                    # 50050.3003 rounded up
    short_be = breakeven_price(position(Side.SELL, entry="50000.3"), D("0.0005"), RULES)
    assert short_be == D("49950.2")                   # 49950.2997 rounded down


# --- tighter stop ----------------------------------------------------------------------

def test_tighter_stop_is_the_higher_for_a_long_and_the_lower_for_a_short() -> None:
    assert tighter_stop(Side.BUY, D("50050"), D("49500")) == D("50050")
    assert tighter_stop(Side.BUY, D("49400"), D("49500")) == D("49500")
    assert tighter_stop(Side.SELL, D("49950"), D("50500")) == D("49950")
    assert tighter_stop(Side.SELL, D("50600"), D("50500")) == D("50500")


@given(st.sampled_from(list(Side)), st.decimals(D("1"), D("100000"), places=1),
       st.decimals(D("1"), D("100000"), places=1))
def test_tighter_stop_never_loosens_and_is_one_of_the_two(side: Side, candidate: Decimal,
                                                          current: Decimal) -> None:
    stop = tighter_stop(side, candidate, current)
    assert stop in (candidate, current)
    assert (stop - current) * side.sign >= 0
    assert (stop - candidate) * side.sign >= 0
    assert tighter_stop(side, current, candidate) == stop


# --- trailing stop ---------------------------------------------------------------------

def test_no_trailing_stop_before_activation() -> None:
    assert trailing_stop(position(), D("50299"), RULES) is None     # 0.598 % < 0.6 %


def test_trailing_stop_follows_the_best_price_at_half_the_activation() -> None:
    stop = trailing_stop(position(), D("50300"), RULES)
    assert stop == D("50149.1")                                    # 50300 x 0.997 rounded down
    short_stop = trailing_stop(position(Side.SELL), D("49700"), RULES)
    assert short_stop == D("49849.1")                              # 49700 x 1.003 rounded up


def test_trailing_stop_never_loosens_below_the_current_stop() -> None:
    tight = position(stop="50200")
    assert trailing_stop(tight, D("50300"), RULES) == D("50200")


@pytest.mark.parametrize("side", list(Side))
@settings(max_examples=150)
@given(steps=st.lists(st.tuples(st.decimals(D("-0.004"), D("0.004"), places=5),
                                st.sampled_from([None, D("0.002"), D("0.005"), D("0.012")])),
                      min_size=1, max_size=40))
def test_trailing_stop_only_ever_tightens(side: Side,
                                          steps: list[tuple[Decimal, Decimal | None]]) -> None:
    """Even when the trail distance changes between calls, the stop never loosens."""
    pos, mark = position(side), D("50000")
    for move, distance in steps:
        mark = mark * (1 + move)
        stop = trailing_stop(pos, mark, RULES,
                             TrailingDistance(distance) if distance is not None else None)
        if stop is None:
            continue
        assert (stop - pos.stop.trigger_price) * side.sign >= 0
        assert stop % RULES.tick_size == 0
        best = pos.best_price if pos.best_price is not None else pos.entry_price
        best = max(best, mark) if side is Side.BUY else min(best, mark)
        pos = replace(pos.with_leg(replace(pos.stop, trigger_price=stop)),
                      trailing_active=True, best_price=best)


def test_an_active_trail_keeps_trailing_after_the_profit_falls_below_the_activation() -> None:
    trailing = position(stop="50149.1", trailing_active=True, best_price=D("50300"))
    assert trailing_stop(trailing, D("50100"), RULES) == D("50149.1")   # retraced: stop holds


def test_best_price_only_ever_improves_in_the_positions_favour() -> None:
    assert best_price(position(), D("49000")) == D("50000")             # entry until beaten
    assert best_price(position(best_price=D("50300")), D("50200")) == D("50300")
    assert best_price(position(best_price=D("50300")), D("50400")) == D("50400")
    assert best_price(position(Side.SELL, best_price=D("49700")), D("49800")) == D("49700")
    assert best_price(position(Side.SELL, best_price=D("49700")), D("49600")) == D("49600")


def test_stop_crossed_detects_a_stop_that_would_trigger_at_once() -> None:
    assert stop_crossed(Side.BUY, D("100"), D("99.9"))
    assert not stop_crossed(Side.BUY, D("100"), D("100.1"))
    assert stop_crossed(Side.SELL, D("100"), D("100"))


# --- time exit -------------------------------------------------------------------------

def test_time_exit_is_due_at_the_time_limit() -> None:
    pos = position()
    assert not time_exit_due(pos, OPENED + timedelta(minutes=39, seconds=59))
    assert time_exit_due(pos, OPENED + timedelta(minutes=40))
    assert time_exit_due(replace(pos, time_limit=timedelta(minutes=20)),
                         OPENED + timedelta(minutes=20))


def test_closed_position_never_needs_a_time_exit() -> None:
    assert not time_exit_due(position(state=PositionState.CLOSED), OPENED + timedelta(hours=5))

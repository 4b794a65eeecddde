"""Trade management: partial take-profit, breakeven (and its state machine), trailing
stop, time exit."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import Position, PositionState, Side, SymbolRules
from trader.management import (
    BreakevenAction,
    BreakevenEvent,
    BreakevenState,
    BreakevenStatus,
    breakeven_price,
    next_breakeven_step,
    partial_quantity,
    partial_tp_trigger,
    should_take_partial,
    start_breakeven,
    stop_crossed,
    time_exit_due,
    trailing_stop,
)

D = Decimal
OPENED = datetime(2024, 1, 1, 12, tzinfo=UTC)
RULES = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                    min_notional=D("100"))


def position(side: Side = Side.BUY, entry: str = "50000", qty: str = "0.2", **changes: object) -> Position:
    base = Position("BTCUSDT", "k", side, PositionState.PROTECTED, D(qty), D(entry), 5, OPENED,
                    sl_price=D(entry) * (1 - side.sign * D("0.01")), initial_quantity=D(qty))
    return replace(base, **changes)


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


def test_breakeven_moves_the_stop_only_after_the_new_one_is_confirmed() -> None:
    state, action = start_breakeven(D("50050"))
    assert (state.status, action) == (BreakevenStatus.PLACING, BreakevenAction.PLACE_NEW_STOP)
    state, action = next_breakeven_step(state, BreakevenEvent.PLACED)
    assert action is BreakevenAction.VERIFY_NEW_STOP
    state, action = next_breakeven_step(state, BreakevenEvent.CONFIRMED)
    assert (state.status, action) == (BreakevenStatus.DONE, BreakevenAction.CANCEL_OLD_STOP)
    assert next_breakeven_step(state, BreakevenEvent.CONFIRMED) == (state, BreakevenAction.NONE)


def test_breakeven_gives_up_after_five_attempts_and_keeps_the_old_stop() -> None:
    state, actions = start_breakeven(D("50050"))[0], []
    for _ in range(10):
        state, action = next_breakeven_step(state, BreakevenEvent.PLACE_FAILED)
        actions.append(action)
    assert state.status is BreakevenStatus.GAVE_UP
    assert state.attempts == 5
    assert actions.count(BreakevenAction.PLACE_NEW_STOP) == 4   # plus the first placement
    assert BreakevenAction.ALERT_GAVE_UP in actions
    assert BreakevenAction.CANCEL_OLD_STOP not in actions


def test_unconfirmed_new_stop_is_placed_again_not_trusted() -> None:
    state, _ = start_breakeven(D("50050"), max_attempts=2)
    state, _ = next_breakeven_step(state, BreakevenEvent.PLACED)
    state, action = next_breakeven_step(state, BreakevenEvent.NOT_CONFIRMED)
    assert (state.status, state.attempts, action) == (
        BreakevenStatus.PLACING, 2, BreakevenAction.PLACE_NEW_STOP)


def test_position_closing_mid_move_abandons_without_cancelling() -> None:
    state, _ = start_breakeven(D("50050"))
    state, action = next_breakeven_step(state, BreakevenEvent.POSITION_CLOSED)
    assert (state.status, action) == (BreakevenStatus.ABANDONED, BreakevenAction.NONE)


def test_start_without_a_target_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        next_breakeven_step(BreakevenState(), BreakevenEvent.START)


@settings(max_examples=300)
@given(st.integers(1, 6), st.lists(st.sampled_from(list(BreakevenEvent)), max_size=30))
def test_old_stop_is_never_cancelled_before_the_new_one_is_confirmed(
        max_attempts: int, events: list[BreakevenEvent]) -> None:
    state = BreakevenState(D("50050"), 0, BreakevenStatus.IDLE, max_attempts)
    placed_before, cancels = False, 0
    for event in events:
        previous = state
        state, action = next_breakeven_step(state, event)
        if action is BreakevenAction.CANCEL_OLD_STOP:
            cancels += 1
            assert event is BreakevenEvent.CONFIRMED
            assert placed_before
            assert previous.status in (BreakevenStatus.PLACING, BreakevenStatus.CONFIRMING)
            assert state.status is BreakevenStatus.DONE
        if action is BreakevenAction.PLACE_NEW_STOP:
            placed_before = True
        assert state.attempts <= max_attempts
        if previous.status.terminal:
            assert (state, action) == (previous, BreakevenAction.NONE)
    assert cancels <= 1


# --- trailing stop ---------------------------------------------------------------------

def test_no_trailing_stop_before_activation() -> None:
    assert trailing_stop(position(), D("50299"), RULES) is None     # 0.598 % < 0.6 %


def test_trailing_stop_follows_the_best_price_at_half_the_activation() -> None:
    stop = trailing_stop(position(), D("50300"), RULES)
    assert stop == D("50149.1")                                    # 50300 x 0.997 rounded down
    short_stop = trailing_stop(position(Side.SELL), D("49700"), RULES)
    assert short_stop == D("49849.1")                              # 49700 x 1.003 rounded up


def test_trailing_stop_never_loosens_below_the_current_stop() -> None:
    tight = position(sl_price=D("50200"))
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
        stop = trailing_stop(pos, mark, RULES, distance)
        if stop is None:
            continue
        assert pos.sl_price is not None
        assert (stop - pos.sl_price) * side.sign >= 0
        assert stop % RULES.tick_size == 0
        best = pos.best_price if pos.best_price is not None else pos.entry_price
        best = max(best, mark) if side is Side.BUY else min(best, mark)
        pos = replace(pos, sl_price=stop, trailing_active=True, best_price=best)


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

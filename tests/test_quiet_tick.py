"""The quiet tick (trader/lifecycle_tick.py `quiet`): the interpreter skips the state
machine's round trip for a tick only when stepping it would give that very record (or the
record with its new best price) and no action. Checked against `step` itself over many
positions and ticks, and case by case where the full step must run: a best price that moves
the trail, a due time exit, a leg that vanished or is being placed, a partial or a breakeven
move due, a regime change."""

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.positions import OPENED, leg_id, make
from tests.test_step_fast_paths import LEVELS, POLICY, RULES, positions, with_first_target
from trader import interpreter as interpreter_module
from trader import protection, regime_adjust
from trader.events import Flatten, PlaceLeg, ProbeOrder, Tick
from trader.interpreter import Interpreter
from trader.lifecycle import step
from trader.lifecycle_tick import quiet
from trader.position import ExitPlan, Position, PositionState
from trader.strategy.regime import Regime

D = Decimal
ATR = D("150")

ticks = st.builds(
    Tick, st.integers(0, 90).map(lambda minutes: OPENED + timedelta(minutes=minutes)),
    st.none() | st.integers(-600, 1200).map(lambda offset: D(50000 + offset)),
    st.just(RULES), st.sampled_from([None, Regime.NORMAL, Regime.HIGH]),
    st.sampled_from([None, ATR]))
policies = st.sampled_from([POLICY, replace(POLICY, trailing_distance=replace(
    POLICY.trailing_distance, amount=D("1.5"), in_atr=True))])


@given(position=positions(), tick=ticks, policy=policies,
       breakeven_done=st.booleans(), exit_plan=st.sampled_from(list(ExitPlan)))
def test_a_quiet_tick_is_what_the_step_gives(position: Position, tick: Tick, policy,
                                             breakeven_done: bool,
                                             exit_plan: ExitPlan) -> None:  # type: ignore[no-untyped-def]
    position = replace(position, breakeven_done=breakeven_done,
                       exit_plan=ExitPlan.TWO if position.take_profit_1 else exit_plan)
    moved = quiet(position, tick, tick.now, policy)
    if moved is None:
        return
    result = step(position, tick, tick.now, policy)
    assert result.actions == []
    assert result.position == moved
    assert replace(moved, best_price=position.best_price) == position, "more than the best"
    if result.position is position:
        assert moved is position


def quiet_long(**changes) -> Position:  # type: ignore[no-untyped-def]
    """A settled long with nothing due at 50,000: legs live and matching, regime anchored."""
    stop, take_profit, _ = LEVELS[make().side]
    position = make(stop=stop, tp=take_profit, quantity="0.2", best_price=D("50100"),
                    regime=regime_adjust.anchor(Regime.NORMAL, D(stop), D(take_profit)))
    return replace(position, **changes)


def tick(minutes: int = 5, mark: str = "50000", regime: Regime | None = Regime.NORMAL) -> Tick:
    return Tick(OPENED + timedelta(minutes=minutes), D(mark), RULES, regime)


def test_the_steady_tick_is_quiet_and_keeps_the_record() -> None:
    position = quiet_long()
    assert protection.settled(position)
    assert quiet(position, tick(), tick().now, POLICY) is position
    lower = quiet(position, tick(mark="50050"), tick().now, POLICY)
    assert lower is position       # under the best price: nothing moves
    higher = quiet(position, tick(mark="50150"), tick().now, POLICY)
    assert higher is not None and higher.best_price == D("50150")   # before the trail is due


def full_step_only(position: Position, event: Tick, policy=POLICY):  # type: ignore[no-untyped-def]
    """The case must take the full step (quiet says None), and the step does something."""
    assert quiet(position, event, event.now, policy) is None
    result = step(position, event, event.now, policy)
    assert result.actions or result.position is not position
    return result


def test_a_best_price_that_moves_the_trail_is_stepped() -> None:
    position = quiet_long(trailing_active=True, partial_taken=True, breakeven_done=True)
    result = full_step_only(position, tick(mark="50600"))
    assert result.position.stop.trigger_price > position.stop.trigger_price
    assert any(isinstance(action, PlaceLeg) for action in result.actions)


def test_a_due_time_exit_is_stepped() -> None:
    position = quiet_long()
    result = full_step_only(position, tick(minutes=40))
    assert result.position.state is PositionState.CLOSING
    assert any(isinstance(action, Flatten) for action in result.actions)


def test_a_leg_that_vanished_or_is_being_placed_is_stepped() -> None:
    position = quiet_long()
    gone = position.with_leg(replace(position.take_profit, order=None))
    assert any(isinstance(a, PlaceLeg) for a in full_step_only(gone, tick()).actions)
    pending = position.with_leg(replace(position.stop,
                                        pending=leg_id("BTCUSDT", position.stop.role, 2)))
    assert any(isinstance(a, ProbeOrder) for a in full_step_only(pending, tick()).actions)
    missing = position.with_leg(replace(position.stop, order=replace(
        position.stop.order, missing_cycles=1, missing_since=OPENED)))
    assert quiet(missing, tick(), tick().now, POLICY) is None


def test_a_partial_or_a_breakeven_move_due_is_stepped() -> None:
    result = full_step_only(quiet_long(), tick(mark="50260"))   # +0.52 %: the partial, no trail
    assert result.position.partial_taken
    owed = quiet_long(partial_taken=True, breakeven_done=False)
    result = full_step_only(owed, tick(mark="50200"))
    assert result.position.stop.trigger_price == D("50050")       # breakeven, fees in


def test_a_regime_change_or_an_unanchored_position_is_stepped() -> None:
    position = quiet_long()
    result = full_step_only(position, tick(regime=Regime.HIGH))
    assert result.position.regime is not None and result.position.regime.applied == "HIGH"
    full_step_only(replace(position, regime=None), tick())
    assert quiet(position, tick(regime=None), tick().now, POLICY) is position


def test_a_two_target_position_is_quiet_only_while_nothing_is_due() -> None:
    position = with_first_target(quiet_long(), "0.1")
    assert quiet(position, tick(), tick().now, POLICY) is position
    closing = replace(position, state=PositionState.CLOSING)
    assert quiet(closing, tick(), tick().now, POLICY) is None


class Journal:
    def __init__(self) -> None:
        self.commits: list[tuple[Position, Position]] = []

    def commit(self, before: Position | None, after: Position, event: object) -> None:
        self.commits.append((before, after))  # type: ignore[arg-type]


class Clock:
    def __init__(self, event: Tick) -> None:
        self.at = event.now

    def now(self):  # type: ignore[no-untyped-def]
        return self.at


def interpreter_for(event: Tick, journal: Journal) -> Interpreter:
    return Interpreter(runner=None, finalizer=None, journal=journal,  # type: ignore[arg-type]
                       alerter=None, clock=Clock(event), policy=POLICY)  # type: ignore[arg-type]


def test_the_interpreter_takes_the_quiet_path_and_saves_a_new_best_price() -> None:
    position = quiet_long()
    journal = Journal()
    with patch.object(interpreter_module, "step", side_effect=AssertionError("stepped")):
        same = asyncio.run(interpreter_for(tick(), journal).apply(position, tick()))
        assert same is position and journal.commits == []
        event = tick(mark="50150")
        interpreter = interpreter_for(event, journal)
        moved = asyncio.run(interpreter.apply(position, event))
    assert moved.best_price == D("50150")
    assert journal.commits == [(position, moved)]
    assert interpreter.positions["BTCUSDT"] is moved


def test_the_interpreter_steps_a_tick_that_is_not_quiet() -> None:
    position = quiet_long()
    event = tick(minutes=40)
    journal = Journal()
    interpreter = interpreter_for(event, journal)
    stepped = []

    def spy(*args):  # type: ignore[no-untyped-def]
        result = step(*args)
        stepped.append(result)
        return result

    async def no_runner(*args):  # type: ignore[no-untyped-def]
        raise RuntimeError("performed")

    interpreter.perform = no_runner  # type: ignore[method-assign]
    with patch.object(interpreter_module, "step", side_effect=spy), \
            pytest.raises(RuntimeError, match="performed"):
        asyncio.run(interpreter.apply(position, event))    # the close is sent: performed
    assert stepped and stepped[0].position.state is PositionState.CLOSING
    assert isinstance(stepped[0].actions[-1], Flatten)

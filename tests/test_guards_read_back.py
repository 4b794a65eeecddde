"""The loss streak counts a close whose result was read back after it (trader/cooldowns.py
`count_read_back`) as if its result had been known at the close, whatever closes came
between, and in whatever order the read-backs complete."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trader.cooldowns import count_read_back, start_cooldown
from trader.guard_state import GuardConfig, GuardState

NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
CFG = GuardConfig(cooldown_minutes=5, loss_streak_len=3, loss_streak_mult=3)
SYMBOL = "BTCUSDT"


def trailing_losses(results: list[bool]) -> int:
    count = 0
    for loss in reversed(results):
        if not loss:
            break
        count += 1
    return count


def test_an_unknown_result_leaves_the_streak_as_it_is() -> None:
    state = GuardState(loss_streak={SYMBOL: 2})
    state = start_cooldown(state, SYMBOL, NOW, loss=None, cfg=CFG)
    assert state.loss_streak[SYMBOL] == 2
    assert state.cooldowns[SYMBOL] == NOW + timedelta(minutes=5)


def test_the_last_close_read_back_as_the_third_loss_lengthens_its_cooldown() -> None:
    state = start_cooldown(GuardState(loss_streak={SYMBOL: 2}), SYMBOL, NOW, None, CFG)
    read_at = NOW + timedelta(minutes=3)
    state = count_read_back(state, SYMBOL, True, [], NOW, read_at, CFG)
    assert state.loss_streak[SYMBOL] == 3
    assert state.cooldowns[SYMBOL] == NOW + timedelta(minutes=15)


def test_a_lengthened_cooldown_already_over_is_not_started_again() -> None:
    state = start_cooldown(GuardState(loss_streak={SYMBOL: 2}), SYMBOL, NOW, None, CFG)
    read_at = NOW + timedelta(hours=2)
    state = count_read_back(state, SYMBOL, True, [], NOW, read_at, CFG)
    assert state.loss_streak[SYMBOL] == 3
    assert state.cooldowns[SYMBOL] == NOW + timedelta(minutes=5)      # as it was, ended


def test_a_win_read_back_is_no_loss() -> None:
    state = start_cooldown(GuardState(loss_streak={SYMBOL: 2}), SYMBOL, NOW, None, CFG)
    state = count_read_back(state, SYMBOL, False, [], NOW, NOW, CFG)
    assert state.loss_streak[SYMBOL] == 0
    assert state.cooldowns[SYMBOL] == NOW + timedelta(minutes=5)


def test_a_later_win_already_reset_the_streak() -> None:
    state = GuardState(loss_streak={SYMBOL: 0})
    assert count_read_back(state, SYMBOL, True, [True, False], NOW, NOW, CFG) == state


def test_a_loss_before_later_losses_lengthens_the_streak_they_counted() -> None:
    later = NOW + timedelta(minutes=1)
    state = GuardState(loss_streak={SYMBOL: 2}, cooldowns={SYMBOL: later + timedelta(minutes=5)})
    state = count_read_back(state, SYMBOL, True, [True, True], later, later, CFG)
    assert state.loss_streak[SYMBOL] == 3
    assert state.cooldowns[SYMBOL] == later + timedelta(minutes=15)


def test_a_win_before_later_losses_leaves_only_those_in_the_streak() -> None:
    state = GuardState(loss_streak={SYMBOL: 4})        # 2 before it, 2 after it
    state = count_read_back(state, SYMBOL, False, [True, True], NOW, NOW, CFG)
    assert state.loss_streak[SYMBOL] == 2


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=8), st.randoms())
def test_the_streak_is_as_if_every_result_had_been_known_at_its_close(
        closes: list[tuple[bool, bool]], rng) -> None:
    """closes: (loss, unknown at the close) in close order; the unknown ones are read back
    in any order."""
    state = GuardState()
    for loss, unknown in closes:
        state = start_cooldown(state, SYMBOL, NOW, None if unknown else loss, CFG)
    known = [not unknown for _, unknown in closes]
    pending = [i for i, (_, unknown) in enumerate(closes) if unknown]
    rng.shuffle(pending)
    for i in pending:
        later = [loss for j, (loss, _) in enumerate(closes) if j > i and known[j]]
        state = count_read_back(state, SYMBOL, closes[i][0], later, NOW, NOW, CFG)
        known[i] = True
    assert state.loss_streak.get(SYMBOL, 0) == trailing_losses([loss for loss, _ in closes])

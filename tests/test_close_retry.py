"""The state machine's side of a close Binance refuses for now (trader/close_retry.py), pure:
the first two retries in the step (0.5 s, 1 s), then one per tick once its backoff is over
(2, 4, 8, then every 10 s), never given up and never counted; one alert after a minute; a
refusal the order earned still counts, and three give the close up."""

from datetime import datetime, timedelta
from decimal import Decimal

from tests.positions import OPENED, make
from trader.alerts import Alert, AlertName
from trader.domain import CloseReason
from trader.events import CloseRequested, Flatten, FlattenResult, Policy, Tick
from trader.lifecycle import step
from trader.position import Position, PositionState
from trader.symbol_rules import SymbolRules

POLICY = Policy()
FULL = Decimal("0.1")
RULES = SymbolRules("BTCUSDT", Decimal("0.1"), Decimal("0.001"), Decimal("0.001"),
                    Decimal("5"))
REFUSED = FlattenResult(FULL, refused_for_now="503 Service Unavailable")


def closing() -> tuple[Position, Flatten]:
    result = step(make(), CloseRequested(CloseReason.TIME_EXIT), OPENED, POLICY)
    [close] = [a for a in result.actions if isinstance(a, Flatten)]
    return result.position, close


def test_the_first_two_retries_go_in_the_step_with_the_refusals_pauses():
    position, first = closing()
    again = step(position, REFUSED, OPENED, POLICY)
    [second] = [a for a in again.actions if isinstance(a, Flatten)]
    assert second.client_id != first.client_id and second.attempt == 2   # 0.5 s after
    third = step(again.position, REFUSED, OPENED + timedelta(seconds=0.5), POLICY)
    [close] = [a for a in third.actions if isinstance(a, Flatten)]
    assert close.attempt == 3                                            # 1 s after
    later = step(third.position, REFUSED, OPENED + timedelta(seconds=1.5), POLICY)
    assert not any(isinstance(a, Flatten) for a in later.actions)       # the ticks' now
    assert later.position.state is PositionState.CLOSING
    assert later.position.closing_reason is CloseReason.TIME_EXIT
    assert later.position.close_attempts == 1


def refused(position: Position, actions: list, now: datetime
            ) -> tuple[Position, int, list[Alert]]:
    """Every close among `actions` refused for now, as the engine feeds each back: the
    position after, how many closes were sent, the alerts said."""
    sent, said = 0, []
    while any(isinstance(a, Flatten) for a in actions):
        sent += 1
        result = step(position, REFUSED, now, POLICY)
        position, actions = result.position, result.actions
        said += [a for a in actions if isinstance(a, Alert)]
    return position, sent, said


def test_later_tries_come_with_the_ticks_on_the_backoff_and_it_is_never_given_up():
    position, close = closing()
    position, sent, alerts = refused(position, [close], OPENED)
    assert sent == 3                           # the first close and its two quick retries
    now, sent_at = OPENED, [0.0]
    for _ in range(300):                       # ten minutes of 2-s ticks, all refused
        now += timedelta(seconds=2)
        result = step(position, Tick(now, None, RULES), now, POLICY)
        position, sent, said = refused(result.position, result.actions, now)
        alerts += said
        assert sent <= 1
        if sent:
            sent_at.append((now - OPENED).total_seconds())
        assert position.state is PositionState.CLOSING, position.state
        assert position.closing_reason is CloseReason.TIME_EXIT
        assert position.close_attempts == 1
    gaps = [later - earlier for earlier, later in zip(sent_at, sent_at[1:], strict=False)]
    assert gaps[:4] == [2.0, 4.0, 8.0, 10.0], gaps
    assert set(gaps[3:]) == {10.0}, gaps                       # every 10 s, not every tick
    [said] = alerts
    assert said.name is AlertName.PROTECTION and "refuses the market close for now" in said.text


def test_a_refusal_of_the_orders_own_after_refusals_for_now_still_counts_three():
    position, _ = closing()
    position = step(position, REFUSED, OPENED, POLICY).position         # one for now
    for expected_attempts in (2, 3):
        result = step(position, FlattenResult(FULL), OPENED, POLICY)    # -2022, say
        position = result.position
        assert position.state is PositionState.CLOSING
        assert position.close_attempts == expected_attempts and position.close_refused is None
    given_up = step(position, FlattenResult(FULL), OPENED, POLICY)
    assert given_up.position.state is not PositionState.CLOSING
    assert any(isinstance(a, Alert) and "after 3 market closes" in a.text
               for a in given_up.actions)


def test_a_new_close_request_starts_over_with_its_quick_retries():
    position, _ = closing()
    for _ in range(3):
        position = step(position, REFUSED, OPENED, POLICY).position
    assert position.close_refused is not None and position.close_refused.refusals == 3
    again = step(position, CloseRequested(CloseReason.COMMAND), OPENED, POLICY)
    assert again.position.close_refused is None
    assert again.position.closing_reason is CloseReason.COMMAND

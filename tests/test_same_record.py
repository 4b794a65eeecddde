"""The position journal skips a step whose record equals the one before
(trader/position_journal.py `same_record`): the same answer as Position's `==`, field by
field, for every field (one added later too), and a step that changed one field only is
saved with its journal entry."""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given

from tests.positions import make
from tests.test_evolve import positions
from trader.alerter import Alerter
from trader.clock import ManualClock
from trader.domain import CloseReason, FeeInKind, OrderRole
from trader.events import LegPlaced
from trader.evolve import evolve
from trader.guard_book import GuardBook
from trader.guard_state import GuardConfig
from trader.position import (
    CloseRefusedForNow,
    ExitPlan,
    Leg,
    Position,
    PositionState,
    RegimeAnchor,
)
from trader.position_journal import PositionJournal, same_record
from trader.telemetry import Counters
from trader.trade_store import TradeStore

NOW = datetime(2024, 1, 2, tzinfo=UTC)


@given(positions, positions)
def test_same_record_is_equality(one: Position, other: Position) -> None:
    assert same_record(one, other) == (one == other) == same_record(other, one)
    assert same_record(one, evolve(one)) and same_record(one, one)


def other_value(value: Any) -> Any:
    """A value of a field that is not equal to `value`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, Decimal | int):
        return value + 1
    if isinstance(value, str) and not isinstance(value, PositionState | ExitPlan):
        return value + "x"
    if isinstance(value, datetime | timedelta):
        return value + timedelta(seconds=1)
    if isinstance(value, PositionState):
        return PositionState.CLOSED if value is not PositionState.CLOSED \
            else PositionState.PROTECTED
    if isinstance(value, ExitPlan):
        return ExitPlan.TWO if value is ExitPlan.ONE else ExitPlan.ONE
    if isinstance(value, Leg):
        return evolve(value, failures=value.failures + 1)
    if isinstance(value, dict):
        return {**value, "zz": 9}
    if isinstance(value, tuple):            # fees_in_kind
        return (*value, FeeInKind("BNB", Decimal(1)))
    if isinstance(value, CloseRefusedForNow):
        return evolve(value, refusals=value.refusals + 1)
    raise AssertionError(f"no other value for {value!r}")


def test_a_record_that_differs_in_any_one_field_is_not_the_same() -> None:
    """Every field of Position, from its dataclass fields: dropping one from the
    comparison fails here."""
    position = make(best_price=Decimal("50100"), take_profit_1=Leg(OrderRole.TAKE_PROFIT_1,
                                                                    Decimal("50500")),
                    closing_reason=CloseReason.TIME_EXIT, close_reason=CloseReason.MANUAL,
                    closed_at=NOW, exit_price=Decimal("50050"), operator_stop=Decimal("49800"),
                    regime=RegimeAnchor("NORMAL", "NORMAL", Decimal("49500"),
                                        Decimal("51000")),
                    close_refused=CloseRefusedForNow("503 Service Unavailable", NOW, 3, NOW))
    for field in dataclasses.fields(Position):
        value = getattr(position, field.name)
        changed = evolve(position, **{field.name: other_value(value)}) \
            if not isinstance(value, CloseReason | RegimeAnchor) \
            else evolve(position, **{field.name: None})
        assert changed != position, field.name
        assert not same_record(changed, position), field.name
        assert not same_record(position, changed), field.name


def test_equal_values_of_other_objects_are_the_same() -> None:
    """Equal, not identical (other digits, another dict): the same as `==` says."""
    position = make(best_price=Decimal("50100"))
    copy = evolve(position, best_price=Decimal("50100.0"), seq=dict(position.seq),
                  stop=evolve(position.stop))
    assert copy == position and same_record(copy, position)


def test_a_changed_step_is_saved_with_its_entry_and_an_equal_one_is_not(
        tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    clock = ManualClock(NOW)
    alerter = Alerter(store, clock)
    journal = PositionJournal(store, alerter, GuardBook(store, alerter, clock, Counters(),
                                                        GuardConfig()), clock)
    position = make()
    journal.commit(None, position, None)
    event = LegPlaced(OrderRole.STOP_LOSS, position.stop.order.client_id,   # type: ignore[union-attr]
                      Decimal("49500"), Decimal("0.1"))
    journal.commit(position, evolve(position, best_price=None), event)    # equal
    assert store.events("leg_placed") == []
    moved = evolve(position, closed_at=NOW)       # the last field but a few: still compared
    journal.commit(position, moved, event)
    assert [entry["body"]["key"] for entry in store.events("leg_placed")] == [position.key]
    assert store.position(position.symbol, position.key) == moved

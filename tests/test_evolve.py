"""`trader.evolve.evolve`, the copy of the frozen values made on every tick: the same value
`dataclasses.replace` makes (same class, every field the very same object), still frozen,
equal and hashable like any other instance; and it refuses what it cannot copy that way."""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.positions import leg_id, make
from trader.domain import Intent, IntentStatus, OrderRole, OrderType, Side
from trader.evolve import evolve, evolver
from trader.position import ExitPlan, Leg, LegOrder, LegStatus, Position, PositionState

NOW = datetime(2024, 1, 1, 1, tzinfo=UTC)
prices = st.sampled_from([Decimal("49500"), Decimal("49500.0"), Decimal("51000"), Decimal(0)])
moments = st.sampled_from([None, NOW, NOW + timedelta(seconds=30)])
leg_orders = st.builds(
    LegOrder, st.sampled_from([leg_id("BTCUSDT", OrderRole.STOP_LOSS), "web_1"]), prices,
    st.sampled_from([Decimal("0.1"), Decimal("0.05")]), st.sampled_from(list(LegStatus)),
    moments, st.integers(0, 4))
legs = st.builds(
    Leg, st.sampled_from([OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1]),
    prices, st.none() | leg_orders, st.none() | st.just(leg_id("BTCUSDT", OrderRole.STOP_LOSS, 2)),
    st.integers(0, 6), moments, st.booleans())
positions = st.builds(
    make, side=st.sampled_from(list(Side)), state=st.sampled_from(list(PositionState)),
    quantity=st.sampled_from(["0.1", "0.05", "0"]), live_legs=st.booleans(),
    best_price=st.none() | prices, partial_taken=st.booleans(), seq=st.just({"sl": 2}),
    exit_plan=st.sampled_from(list(ExitPlan)), take_profit_1=st.none() | legs)
intents = st.builds(
    Intent, st.sampled_from(["tb-BTCUSDT-k1-sl1", "tb-BTCUSDT-k1-en1"]), st.just("BTCUSDT"),
    st.sampled_from(list(OrderRole)), st.sampled_from(list(Side)), st.sampled_from(list(OrderType)),
    prices, st.just("k1"), st.sampled_from([NOW, NOW + timedelta(hours=1)]),
    st.sampled_from(list(IntentStatus)), st.none() | prices, st.none() | prices, st.booleans(),
    st.booleans(), moments, st.sampled_from(["", "-2019 margin"]))


def changes_from(value: Any, other: Any, picks: list[bool]) -> dict[str, Any]:
    """Some fields of `other` (a second value of the same class) as changes for `value`."""
    names = [field.name for field in dataclasses.fields(value)]
    return {name: getattr(other, name) for name, pick in zip(names, picks, strict=False)
            if pick}


def assert_same_value(copy: Any, expected: Any) -> None:
    assert type(copy) is type(expected)
    for field in dataclasses.fields(expected):
        assert getattr(copy, field.name) is getattr(expected, field.name), field.name
    assert copy == expected


@pytest.mark.parametrize("values", [positions, legs, leg_orders, intents],
                         ids=["Position", "Leg", "LegOrder", "Intent"])
@given(data=st.data())
def test_evolve_makes_what_replace_makes(values: st.SearchStrategy[Any],
                                         data: st.DataObject) -> None:
    value, other = data.draw(values), data.draw(values)
    picks = data.draw(st.lists(st.booleans(), min_size=40, max_size=40))
    changes = changes_from(value, other, picks)
    assert_same_value(evolve(value, **changes), dataclasses.replace(value, **changes))


@given(leg=legs, other=legs)
def test_a_copy_stays_frozen_equal_and_hashable(leg: Leg, other: Leg) -> None:
    copy = evolve(leg, order=other.order)
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.failures = 3  # type: ignore[misc]
    same = dataclasses.replace(leg, order=other.order)
    assert copy == same and hash(copy) == hash(same)


def test_an_unknown_field_is_refused_as_replace_refuses_it() -> None:
    with pytest.raises(TypeError):
        evolve(make(), stop_price=Decimal(1))
    with pytest.raises(TypeError):
        dataclasses.replace(make(), stop_price=Decimal(1))


def test_a_class_whose_init_does_more_than_set_its_fields_is_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        amount: Decimal

        def __post_init__(self) -> None:
            if self.amount < 0:
                raise ValueError("negative")

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        amount: Decimal

    @dataclasses.dataclass(frozen=True, slots=True)
    class Derived:
        amount: Decimal
        doubled: Decimal = dataclasses.field(init=False, default=Decimal(0))

    for cls in (Checked, Unslotted, Derived):
        with pytest.raises(TypeError):
            evolver(cls)


def test_a_class_that_runs_code_for_a_subclass_is_refused() -> None:
    """The copy is filled as an instance of a subclass (trader/evolve.py `filler`): a class
    whose subclasses run code of their own (a metaclass, `__init_subclass__`) is refused."""
    class Meta(type):
        pass

    registered: list[type] = []

    @dataclasses.dataclass(frozen=True, slots=True)
    class Registering:
        amount: Decimal

        def __init_subclass__(cls) -> None:
            registered.append(cls)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Metaclassed(metaclass=Meta):
        amount: Decimal

    @dataclasses.dataclass(frozen=True, slots=True)
    class Inheriting(Registering):
        more: Decimal

    for cls in (Registering, Metaclassed, Inheriting):
        with pytest.raises(TypeError):
            evolver(cls)
    assert {cls.__name__ for cls in registered} == {"Inheriting"}   # the test's own only


@given(position=positions, other=positions)
def test_a_position_copy_is_a_position_still_frozen(position: Position,
                                                    other: Position) -> None:
    """Filled through its filler, the copy is a Position again: its class, its frozen
    `__setattr__` and `__delattr__`, its equality and hash."""
    copy = evolve(position, best_price=other.best_price, stop=other.stop)
    assert type(copy) is Position and copy.__class__ is Position
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.best_price = Decimal(1)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del copy.best_price  # type: ignore[misc]
    same = dataclasses.replace(position, best_price=other.best_price, stop=other.stop)
    assert copy == same and not copy != same


def test_the_position_fields_are_all_copied() -> None:
    """A field added to Position later is copied too (the copier is built from the fields)."""
    position: Position = make(best_price=Decimal("50100"), adopted=True)
    assert_same_value(evolve(position), dataclasses.replace(position))

"""storage/codec.py: `to_json`/`dumps` write what `json.dumps(dump(value))` writes, and `load`
gives back the value `dump` stored (its per-type shortcuts change nothing)."""

import json
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.codec import dump, dumps, dumps_with, load, to_json
from storage.json_writer import KEPT_TEXTS
from tests.positions import protected
from trader.domain import Fill, OrderRole, Side
from trader.evolve import evolve
from trader.position import Leg, LegOrder, Position, PositionState, RegimeAnchor


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Shape(Enum):
    ROUND = "round"
    SQUARE = "square"

    @classmethod
    def _missing_(cls, value: object) -> "Shape | None":
        return cls.ROUND if value == "circle" else None     # an older spelling


@dataclass(frozen=True)
class Inner:
    price: Decimal
    at: datetime | None
    colour: Colour


@dataclass(frozen=True)
class Record:
    name: str
    count: int
    ratio: float
    flag: bool
    amount: Decimal
    maybe: Decimal | None
    at: datetime
    wait: timedelta
    colour: Colour
    level: Level
    shape: Shape
    inner: Inner | None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


decimals = st.decimals(allow_nan=False, allow_infinity=False, places=8,
                       min_value=Decimal("-1e9"), max_value=Decimal("1e9"))
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]))
inners = st.builds(Inner, decimals, st.none() | moments, st.sampled_from(Colour))
records = st.builds(
    Record, st.text(max_size=8), st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32), st.booleans(), decimals,
    st.none() | decimals, moments, st.timedeltas(min_value=timedelta(0),
                                                   max_value=timedelta(days=9)),
    st.sampled_from(Colour), st.sampled_from(Level), st.sampled_from(Shape), st.none() | inners,
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3))


@given(records)
def test_the_json_text_is_json_dumps_of_dump_and_loads_back(record: Record) -> None:
    plain = dump(record)
    assert to_json(record) == json.dumps(plain)
    assert to_json(record, sort_keys=True) == json.dumps(plain, sort_keys=True)
    assert dumps(record) == json.dumps(plain, sort_keys=True, separators=(",", ":"))
    back = load(Record, json.loads(dumps(record)))
    assert back == record
    assert type(back.colour) is Colour and type(back.level) is Level


general_floats = st.floats() | st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.0])


@given(records, general_floats, st.text())
def test_dumps_writes_the_json_encoders_text_for_every_field_type(
        record: Record, ratio: float, name: str) -> None:
    """The writers generated per dataclass (storage/json_writer.py) against the C JSON
    encoder on the same value: every float (NaN and the infinities too), any text."""
    record = replace(record, ratio=ratio, name=name)
    plain = dump(record)
    assert dumps(record) == json.dumps(plain, sort_keys=True, separators=(",", ":"))
    for sort_keys in (False, True):
        assert to_json(record, sort_keys=sort_keys) == json.dumps(plain, sort_keys=sort_keys)
        assert to_json(record, sort_keys=sort_keys, compact=True) == json.dumps(
            plain, sort_keys=sort_keys, separators=(",", ":"))


@given(st.sampled_from(list(PositionState)), decimals, st.none() | moments, st.booleans())
def test_a_position_is_written_as_the_json_encoder_writes_it(
        state: PositionState, price: Decimal, closed: datetime | None, adopted: bool) -> None:
    position = replace(protected(), state=state, best_price=price, closed_at=closed,
                       adopted=adopted, seq={"tp": 2, "sl": 1, "en": 1})
    assert dumps(position) == json.dumps(dump(position), sort_keys=True,
                                         separators=(",", ":"))


@given(records)
def test_dump_of_a_dataclass_is_the_dump_of_each_field(record: Record) -> None:
    """The dumper generated per class (storage/codec.py) against `dump` field by field."""
    assert dump(record) == {f.name: dump(getattr(record, f.name)) for f in fields(Record)}
    assert list(dump(record)) == [f.name for f in fields(Record)]     # the columns' order


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | general_floats | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(json_values)
def test_plain_values_are_written_as_json_dumps_writes_them(value: object) -> None:
    """What has no generated writer goes to the C encoder directly (codec._one_shot)."""
    assert to_json(value) == json.dumps(value)
    assert to_json(value, sort_keys=True) == json.dumps(value, sort_keys=True)
    assert dumps(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


@given(records, st.sampled_from(["key", "a", "zz", "count", "name", "Key"]),
       st.text() | decimals | st.none() | st.integers() | st.sampled_from(Colour))
def test_dumps_with_writes_the_dict_of_a_name_and_the_fields(
        record: Record, name: str, extra: object) -> None:
    """A journal entry's body (`dumps_with`) is `dumps` of the dict it stands for: the
    extra name sorted in with the fields, and a field of that name standing instead."""
    assert dumps_with(record, name, extra) == dumps({name: extra, **dump(record)})


def test_dumps_with_writes_each_journaled_event_as_its_dict() -> None:
    from trader.domain import CloseReason
    from trader.events import (
        CloseRequested,
        EntryFilled,
        FlattenResult,
        LegFilled,
        LegGone,
        LegPlaced,
        LegRejected,
        PositionGone,
        PositionSizeChanged,
    )
    events = [EntryFilled(Decimal("10"), Decimal("0.6145")), LegPlaced(
        OrderRole.STOP_LOSS, "tb-x", Decimal("0.60"), Decimal("10")),
        LegRejected(OrderRole.TAKE_PROFIT, "tb-y", "-2021", True, 1.5, allowed_trigger=None),
        LegGone(OrderRole.STOP_LOSS, "tb-x", True, "CANCELED"),
        LegFilled(OrderRole.TAKE_PROFIT, "tb-y", Decimal("3"), False),
        PositionSizeChanged(Decimal("5"), Decimal("0.61"), "hand"),
        PositionGone(CloseReason.STOP_LOSS, EntryFilled(Decimal("1"), Decimal("2"), False)),
        PositionGone(), CloseRequested(CloseReason.TIME_EXIT), FlattenResult(Decimal("0"))]
    for event in events:
        assert dumps_with(event, "key", "k-1") == dumps({"key": "k-1", **dump(event)})


def test_dumps_with_refuses_a_name_it_cannot_write_and_a_value_not_a_dataclass() -> None:
    record = Record("a", 1, 0.5, True, Decimal("1.50"), None, datetime(2024, 1, 1, tzinfo=UTC),
                    timedelta(seconds=5), Colour.RED, Level.HIGH, Shape.SQUARE, None)
    for name in ("a b", "é", "x'", ""):
        with pytest.raises(ValueError):
            dumps_with(record, name, 1)
    with pytest.raises(TypeError):
        dumps_with({"a": 1}, "key", 1)


def test_a_circular_value_is_refused_as_json_dumps_refuses_it() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(loop)
    assert dumps([1, [2]]) == "[1,[2]]"     # a refused value leaves nothing behind


def test_a_legs_text_is_kept_for_that_very_leg_only() -> None:
    """Leg and LegOrder never change (trader/position.py): the text written for one is
    given again for the same object, never for an equal one with other digits, nor for a
    copy with a change (trader/evolve.py makes a new object)."""
    def reference(value: object) -> str:
        return json.dumps(dump(value), sort_keys=True, separators=(",", ":"))
    leg = Leg(OrderRole.STOP_LOSS, Decimal("1.0"), LegOrder("tb-x", Decimal("1.0"),
                                                            Decimal("2")))
    assert dumps(leg) == dumps(leg) == reference(leg)
    for other in (Leg(OrderRole.STOP_LOSS, Decimal("1.00"), leg.order),
                  evolve(leg, failures=1), evolve(leg, order=evolve(leg.order,
                                                                     quantity=Decimal("2.0")))):
        assert dumps(other) == reference(other) != dumps(leg)
    many = [evolve(leg, failures=n) for n in range(KEPT_TEXTS * 2 + 3)]   # past the bound
    assert [dumps(one) for one in many] == [reference(one) for one in many]
    assert dumps(protected()) == reference(protected())


def test_a_regime_anchors_text_is_kept_for_that_very_anchor_only() -> None:
    """A position's RegimeAnchor never changes (one per position, shared by its copies):
    its text is given again for the same object, never for an equal one with other digits."""
    def reference(value: object) -> str:
        return json.dumps(dump(value), sort_keys=True, separators=(",", ":"))
    anchor = RegimeAnchor("NORMAL", "NORMAL", Decimal("1.0"), Decimal("2.0"))
    assert dumps(anchor) == reference(anchor)
    assert dumps(anchor) is dumps(anchor)       # the text kept, not written again
    for other in (RegimeAnchor("NORMAL", "NORMAL", Decimal("1.00"), Decimal("2.0")),
                  evolve(anchor, applied="HIGH")):
        assert dumps(other) == reference(other) != dumps(anchor)
    position = evolve(protected(), regime=anchor)
    assert dumps(position) == reference(position)


def test_values_that_are_not_dataclasses_are_written_as_before() -> None:
    for value in ({"b": [Decimal("1.0"), None], "a": {"y": 1, "x": True}}, [1, "é"], "t",
                  Decimal("2.50"), datetime(2024, 1, 1, tzinfo=UTC)):
        plain = dump(value)
        assert dumps(value) == json.dumps(plain, sort_keys=True, separators=(",", ":"))
        assert to_json(value) == json.dumps(plain)


def test_an_enum_value_is_loaded_as_the_enum_itself_decides() -> None:
    row = json.loads(dumps(Record("a", 1, 0.5, True, Decimal("1.50"), None,
                                  datetime(2024, 1, 1, tzinfo=UTC), timedelta(seconds=5),
                                  Colour.RED, Level.HIGH, Shape.SQUARE, None)))
    assert load(Record, {**row, "shape": "circle"}).shape is Shape.ROUND   # its _missing_
    with pytest.raises(ValueError, match="'green' is not a valid Colour"):
        load(Record, {**row, "colour": "green"})
    with pytest.raises(ValueError):
        load(Record, {**row, "level": [1]})     # unhashable: the enum's own error
    assert load(Record, row).amount.as_tuple() == Decimal("1.50").as_tuple()   # its digits


def test_domain_records_round_trip() -> None:
    fill = Fill(trade_id="7", symbol="XRPUSDT", client_id="tb-x", side=Side.BUY,
                quantity=Decimal("10"), price=Decimal("0.6145"), fee=Decimal("0.003"),
                realized_pnl=Decimal("0"), time=datetime(2024, 1, 1, tzinfo=UTC))
    assert load(Fill, json.loads(dumps(fill))) == fill
    position = protected()
    assert load(Position, json.loads(dumps(position))) == position

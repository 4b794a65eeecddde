"""`trader.fast_init.fast_init`, the cheaper `__init__` of the frozen values made on every
candle: it makes the value the dataclass's own `__init__` makes (every field the very same
object, defaults where omitted), takes the same arguments (names, order, defaults) and
refuses the same calls; the value stays frozen, equal and hashable; and it refuses a class
whose `__init__` does more than set the fields."""

import dataclasses
import inspect
from decimal import Decimal
from typing import Any

import pytest

from trader.alerts import Alert
from trader.correlation import Cluster
from trader.domain import (
    Balance,
    BookTicker,
    Candle,
    ClientId,
    ExchangePosition,
    Fill,
    Intent,
    Order,
    OrderRequest,
    Signal,
)
from trader.entry import Account
from trader.events import CloseRequested
from trader.evolve import filler
from trader.exchange.base import AccountUpdate, OrderUpdate, Quote
from trader.exchange.sim_book import QuietBand
from trader.exchange.sim_ledger import SimPosition
from trader.exchange.sim_path import PathPoint
from trader.fast_init import fast_init
from trader.lifecycle import Step
from trader.market.indicators import RoughEmas
from trader.metrics import EquityPoint
from trader.observe import SymbolView
from trader.position import Leg, LegOrder, Position, RegimeAnchor
from trader.risk import EntryPlan, SizingInput
from trader.trade_stats import TradeRecord

FAST = [Candle, ClientId, OrderRequest, Order, Fill, ExchangePosition, Balance, BookTicker, Intent,
        OrderUpdate, AccountUpdate, Quote, SymbolView, EquityPoint, LegOrder, Leg, RegimeAnchor,
        QuietBand, RoughEmas, SimPosition, Alert, TradeRecord, Signal, Account, SizingInput,
        EntryPlan, Cluster, PathPoint, CloseRequested, Position, Step]


def generated_twin(cls: type) -> type:
    """The same fields under the `__init__` `dataclasses` generates."""
    return dataclasses.make_dataclass(
        cls.__name__, [(f.name, f.type, dataclasses.field(
            default=f.default, default_factory=f.default_factory, compare=f.compare))
                       for f in dataclasses.fields(cls)], frozen=True, slots=True)


def the_long_way(cls: type, values: dict[str, Any]) -> Any:
    """What the generated `__init__` does: each field through `object.__setattr__`."""
    made = object.__new__(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        object.__setattr__(made, f.name, values[f.name] if f.name in values else default)
    return made


def assert_same_value(made: Any, expected: Any) -> None:
    assert type(made) is type(expected)
    for f in dataclasses.fields(expected):
        assert getattr(made, f.name) is getattr(expected, f.name), f.name


@pytest.mark.parametrize("cls", FAST, ids=lambda cls: cls.__name__)
def test_it_makes_what_the_dataclass_init_makes(cls: type) -> None:
    fields = dataclasses.fields(cls)
    values = {f.name: object() for f in fields}
    required = {f.name: values[f.name] for f in fields if f.default is dataclasses.MISSING}
    assert_same_value(cls(*values.values()), the_long_way(cls, values))
    assert_same_value(cls(**dict(reversed(values.items()))), the_long_way(cls, values))
    assert_same_value(cls(**required), the_long_way(cls, required))   # the defaults


@pytest.mark.parametrize("cls", FAST, ids=lambda cls: cls.__name__)
def test_it_takes_the_arguments_the_dataclass_init_takes(cls: type) -> None:
    fast, generated = inspect.signature(cls.__init__), inspect.signature(
        generated_twin(cls).__init__)
    assert [(p.name, p.kind, p.default) for p in fast.parameters.values()] \
        == [(p.name, p.kind, p.default) for p in generated.parameters.values()]
    fields = dataclasses.fields(cls)
    count = len(fields)
    with pytest.raises(TypeError):
        cls(*range(count + 1))            # one too many
    with pytest.raises(TypeError):
        cls(*range(count), unknown=1)     # a name it does not have
    if fields[0].default is dataclasses.MISSING:
        with pytest.raises(TypeError):
            cls()                         # the first field is required
    else:
        assert_same_value(cls(), the_long_way(cls, {}))     # every field has its default


def test_the_value_stays_frozen_equal_and_hashable() -> None:
    candle = Candle("BTCUSDT", *range(6))            # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        candle.close = 1                             # type: ignore[misc]
    same = the_long_way(Candle, {f.name: getattr(candle, f.name)
                                 for f in dataclasses.fields(Candle)})
    assert candle == same and hash(candle) == hash(same)
    assert dataclasses.replace(candle, close=9) == Candle("BTCUSDT", 0, 1, 2, 3, 4, 9)  # type: ignore[arg-type]


def test_a_class_whose_init_does_more_is_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        price: int

        def __post_init__(self) -> None:
            assert self.price > 0

    @dataclasses.dataclass(slots=True)
    class Mutable:
        price: int

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        price: int

    for cls in (Checked, Mutable, Unslotted):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_an_instance_of_a_subclass_keeps_its_class() -> None:
    """The value is filled as its class's filler and its class set back (trader/evolve.py
    `filler`): an instance of a subclass is not, it would come out as the base class (or,
    with a `__dict__`, not be filled at all); the dataclass's own `__init__` fills it."""
    class Tagged(Balance):
        __slots__ = ()

    class Loose(Balance):          # a `__dict__`: another layout than Balance's filler
        pass

    for cls in (Tagged, Loose):
        made = cls(Decimal(1), Decimal(2), Decimal(3))
        assert type(made) is cls
        assert (made.wallet, made.unrealized_pnl, made.available) == (1, 2, 3)
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.wallet = Decimal(0)                 # type: ignore[misc]


def test_one_filler_per_class() -> None:
    """`fast_init`, `evolve` and the CSV reader fill through the same filler class."""
    assert filler(Candle) is filler(Candle)


def test_a_default_factory_gives_each_value_its_own() -> None:
    """As from the dataclass's `__init__`: a field's factory runs per value not given it."""
    @fast_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Collecting:
        name: str
        items: list[int] = dataclasses.field(default_factory=list)

    first, second, given = Collecting("a"), Collecting("b"), Collecting("c", [1])
    assert first.items == [] and second.items == [] and first.items is not second.items
    assert given.items == [1]

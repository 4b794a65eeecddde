"""The simulator's quiet band answers "does a move spanning [low, high] reach any live
order or the liquidation?" as testing each one does (`reached_level`, the liquidation at
a touch: the rule the band replaced), for any orders, levels (equal values with other
digits too), liquidation and range; and the band kept per symbol follows the orders."""

from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from trader.domain import Order, OrderRequest, OrderRole, OrderStatus, OrderType, Side
from trader.exchange.sim import SimConfig, Simulator
from trader.exchange.sim_book import quiet_band, reached_level
from trader.exchange.sim_path import touched

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LEVELS = [D("99"), D("99.0"), D("100"), D("100.00"), D("101"), D("102.5")]


def reached_one_by_one(orders: list[Order], liquidation: D | None, sign: int,
                       low: D, high: D) -> bool:
    if any(reached_level(order, low, high) is not None for order in orders):
        return True
    return liquidation is not None and touched(sign < 0, liquidation, low, high)


def _order(kind: OrderType, side: Side, level: D | None) -> Order:
    conditional = kind.conditional
    return Order("BTCUSDT", "c", side, kind, OrderStatus.NEW, D("1"),
                 price=None if conditional else level,
                 trigger_price=level if conditional else None)


orders = st.lists(st.builds(_order, st.sampled_from(list(OrderType)), st.sampled_from(list(Side)),
                            st.one_of(st.none(), st.sampled_from(LEVELS))), max_size=5)
prices = st.sampled_from(LEVELS + [D("98"), D("103")])


@given(orders, st.one_of(st.none(), st.sampled_from(LEVELS)), st.sampled_from([-1, 0, 1]),
       prices, prices)
def test_the_band_answers_as_each_order_tested(live: list[Order], liquidation: D | None,
                                               sign: int, one: D, other: D) -> None:
    low, high = min(one, other), max(one, other)
    band = quiet_band(live, liquidation, sign)
    assert band.holds(low, high) is not reached_one_by_one(live, liquidation, sign, low, high)


def test_the_kept_band_follows_a_new_order_and_a_cancel() -> None:
    sim = Simulator(SimConfig())
    sim.set_price("BTCUSDT", D("100"), T0)
    assert sim._quiet_between("BTCUSDT", D("95"), D("105"))
    stop = OrderRequest("BTCUSDT", Side.SELL, OrderType.STOP_MARKET, D("2"), "s",
                        OrderRole.STOP_LOSS, trigger_price=D("97"))
    sim.place(stop, T0)
    assert not sim._quiet_between("BTCUSDT", D("95"), D("105"))
    assert sim._quiet_between("BTCUSDT", D("97.1"), D("105"))
    sim.cancel("BTCUSDT", "s", T0)
    assert sim._quiet_between("BTCUSDT", D("95"), D("105"))

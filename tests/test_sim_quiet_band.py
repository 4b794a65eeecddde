"""The simulator's quiet band answers "does a move spanning [low, high] reach any live
order or the liquidation?" as testing each one does (`reached_level`, the liquidation at
a touch: the rule the band replaced), for any orders, levels (equal values with other
digits too), liquidation and range; and the band kept per symbol follows the orders."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from trader.domain import Candle, Order, OrderRequest, OrderRole, OrderStatus, OrderType, Side
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


def _long(sim: Simulator) -> None:
    sim.set_price("BTCUSDT", D("100"), T0)
    sim.place(OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, D("1"), "e",
                           OrderRole.ENTRY), T0)


def test_the_kept_band_follows_a_leverage_change() -> None:
    """The band is kept by a key (order book version, position, leverage, rules): a new
    leverage moves the liquidation level, so a range the old band called quiet reaches it."""
    sim = Simulator(SimConfig(balance=D("100000"), default_leverage=2))
    _long(sim)
    assert sim._quiet_between("BTCUSDT", D("90"), D("110"))    # 2x: liquidation near 50
    sim.set_leverage("BTCUSDT", 100)                            # now just under 100
    assert not sim._quiet_between("BTCUSDT", D("90"), D("110"))
    events = sim.on_candle(_candle(D("100"), D("101"), D("90"), D("95")))
    assert any(getattr(e, "order", None) is not None
               and e.order.client_id.startswith("autoclose-") for e in events)


def test_the_kept_band_follows_the_rules_tick() -> None:
    """The liquidation level is rounded to the tick (toward the position): a coarser tick
    set by the exchange moves it, and the kept band with it."""
    sim = Simulator(SimConfig(balance=D("100000"), default_leverage=50))
    _long(sim)
    level = sim._liquidation_level("BTCUSDT", sim.ledger.position("BTCUSDT"))
    assert level is not None and sim._quiet_between("BTCUSDT", level + D("0.1"), D("101"))
    sim.set_rules(replace(sim.rules_for("BTCUSDT"), tick_size=D("5")))
    assert not sim._quiet_between("BTCUSDT", level + D("0.1"), D("101"))   # rounded up to 100


def test_the_kept_band_follows_an_order_replaced_under_its_client_id() -> None:
    """A stop cancelled and placed again at another level under the same client id: same
    number of orders, same ids; the book's version still tells the band it changed, and a
    candle reaching the new level fires it (the path is walked)."""
    sim = Simulator(SimConfig(balance=D("100000")))
    _long(sim)
    stop = OrderRequest("BTCUSDT", Side.SELL, OrderType.STOP_MARKET, D("1"), "s",
                        OrderRole.STOP_LOSS, trigger_price=D("90"), reduce_only=True)
    sim.place(stop, T0)
    assert sim._quiet_between("BTCUSDT", D("95"), D("105"))
    sim.cancel("BTCUSDT", "s", T0)
    sim.place(replace(stop, trigger_price=D("96")), T0)
    assert not sim._quiet_between("BTCUSDT", D("95"), D("105"))
    events = sim.on_candle(_candle(D("100"), D("101"), D("95"), D("99")))
    assert [e.order.status for e in events if getattr(e, "fill", None) is not None] \
        == [OrderStatus.FILLED]


def _candle(open_: D, high: D, low: D, close: D) -> Candle:
    return Candle("BTCUSDT", T0, timedelta(minutes=5), open_, high, low, close)

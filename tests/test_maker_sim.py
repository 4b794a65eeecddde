"""The simulator and the paper exchange take maker-first entries: a post-only (GTX) limit
that would take liquidity is refused like Binance's -5022 and not recorded; a resting limit
fills only when the price trades through it (a conservative queue position at the touch),
at its own price, with the maker fee (Binance's default 0.02 % against 0.05 % taker)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from trader.clock import ManualClock
from trader.domain import Candle, OrderRequest, OrderRole, OrderStatus, OrderType, Side
from trader.exchange.base import ExchangeError
from trader.exchange.errors import Outcome, classify
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig, Simulator
from trader.trade_store import TradeStore

D = Decimal
BTC = "BTCUSDT"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def sim_at(price: str = "70000") -> Simulator:
    """BTC at `price`, a 2-tick book: bid price - 1.4, ask price + 1.4 (rounded out)."""
    sim = Simulator(SimConfig(spread={BTC: D("0.00004")}, slippage=D(0)))
    sim.set_price(BTC, D(price), T0)
    return sim


def gtx(side: Side, price: str, qty: str = "0.010", cid: str = "tb-BTCUSDT-k-en1") -> OrderRequest:
    return OrderRequest(BTC, side, OrderType.LIMIT, D(qty), cid, OrderRole.ENTRY,
                        price=D(price), post_only=True)


def candle(open_: str, high: str, low: str, close: str, at: datetime = T0) -> Candle:
    return Candle(BTC, at, MINUTE, D(open_), D(high), D(low), D(close))


# --- post-only admission -------------------------------------------------------------------

@pytest.mark.parametrize(("side", "price"), [(Side.BUY, "70001.4"), (Side.BUY, "70100"),
                                             (Side.SELL, "69998.6"), (Side.SELL, "69900")])
def test_a_post_only_limit_that_would_take_liquidity_is_refused_and_not_recorded(
        side: Side, price: str) -> None:
    sim = sim_at()
    book = sim.book(BTC)
    assert (book.bid, book.ask) == (D("69998.6"), D("70001.4"))
    with pytest.raises(ExchangeError) as refused:
        sim.place(gtx(side, price), T0)
    assert refused.value.code == -5022
    assert "could not be executed as maker" in refused.value.message
    assert sim.order(BTC, "tb-BTCUSDT-k-en1") is None          # not in the order history
    assert sim.fills(BTC) == [] and sim.position(BTC).quantity == 0


def test_a_post_only_limit_at_the_touch_rests() -> None:
    sim = sim_at()
    bid, _ = sim.place(gtx(Side.BUY, "69998.6", cid="b"), T0)
    ask, _ = sim.place(gtx(Side.SELL, "70001.4", cid="s"), T0)
    assert bid.status is OrderStatus.NEW and ask.status is OrderStatus.NEW
    assert sim.fills(BTC) == []


def test_a_plain_marketable_limit_still_fills_as_taker() -> None:
    """Only post-only limits are refused; a GTC limit through the book takes."""
    sim = sim_at()
    request = OrderRequest(BTC, Side.BUY, OrderType.LIMIT, D("0.01"), "gtc", OrderRole.ENTRY,
                           price=D("70100"))
    order, _ = sim.place(request, T0)
    assert order.status is OrderStatus.FILLED and sim.fills(BTC)[-1].maker is False


# --- queue position at the touch ---------------------------------------------------------------

def test_a_resting_buy_is_not_filled_by_a_trade_at_its_price_only_below_it() -> None:
    sim = sim_at()
    sim.place(gtx(Side.BUY, "69998.6"), T0)
    sim.on_candle(candle("70000", "70050", "69998.6", "70020"))        # low AT the bid
    assert sim.order(BTC, "tb-BTCUSDT-k-en1").status is OrderStatus.NEW
    sim.set_price(BTC, D("69998.6"), T0 + MINUTE)                       # a trade at P
    assert sim.fills(BTC) == []
    sim.on_candle(candle("70020", "70030", "69998.5", "70000", T0 + MINUTE))   # one tick below
    fill = sim.fills(BTC)[-1]
    assert (fill.price, fill.maker, fill.quantity) == (D("69998.6"), True, D("0.010"))


def test_a_resting_sell_fills_only_when_the_price_goes_above_it() -> None:
    sim = sim_at()
    sim.place(gtx(Side.SELL, "70001.4"), T0)
    sim.on_candle(candle("70000", "70001.4", "69950", "69980"))          # high AT the ask
    assert sim.fills(BTC) == []
    sim.on_candle(candle("69980", "70001.5", "69970", "69990", T0 + MINUTE))
    assert sim.fills(BTC)[-1].price == D("70001.4") and sim.position(BTC).quantity == D("-0.010")


def test_maker_fills_pay_the_maker_fee_and_market_fills_the_taker_fee() -> None:
    sim = sim_at()
    assert (sim.config.maker_fee, sim.config.taker_fee) == (D("0.0002"), D("0.0005"))
    sim.place(gtx(Side.BUY, "69998.6"), T0)
    sim.set_price(BTC, D("69990"), T0)
    maker = sim.fills(BTC)[-1]
    assert maker.fee == D("0.13999720")                  # 0.010 x 69998.6 x 0.0002
    taker, _ = sim.place(OrderRequest(BTC, Side.SELL, OrderType.MARKET, D("0.010"), "m",
                                      OrderRole.FLATTEN, reduce_only=True), T0)
    assert sim.fills(BTC)[-1].fee == D("0.010") * taker.avg_price * D("0.0005")


def test_a_partly_filled_quote_fills_the_rest_once_and_reports_the_total() -> None:
    sim = sim_at()
    sim.place(gtx(Side.BUY, "69998.6", qty="0.010"), T0)
    sim.fill_partly(BTC, "tb-BTCUSDT-k-en1", D("0.004"), T0)
    part = sim.order(BTC, "tb-BTCUSDT-k-en1")
    assert (part.status, part.filled_qty) == (OrderStatus.PARTIALLY_FILLED, D("0.004"))
    assert sim.fills(BTC)[-1].maker and sim.fills(BTC)[-1].price == D("69998.6")
    # margin: the filled part in the position, only the unfilled part reserved by the order
    balance = sim.balance()
    assert abs(balance.available - (balance.wallet - D("0.010") * D("69998.6") / 5)) < D("0.01")
    sim.set_price(BTC, D("69990"), T0)
    done = sim.order(BTC, "tb-BTCUSDT-k-en1")
    assert (done.status, done.filled_qty, done.avg_price) == (OrderStatus.FILLED, D("0.010"),
                                                              D("69998.6"))
    assert sum(f.quantity for f in sim.fills(BTC)) == D("0.010")
    assert sim.position(BTC).quantity == D("0.010")


# --- through the paper exchange ------------------------------------------------------------

async def test_the_paper_exchange_refuses_a_crossing_post_only_quote_as_a_post_only_verdict(
        tmp_path) -> None:
    store = TradeStore.open(tmp_path / "paper.db")
    paper = PaperExchange(store, ManualClock(T0), SimConfig())
    paper.sim.set_price(BTC, D("70000"), T0)
    with pytest.raises(ExchangeError) as refused:
        await paper.place(gtx(Side.BUY, "70100"))
    verdict = classify(refused.value, OrderRole.ENTRY)
    assert verdict.post_only_rejected and verdict.outcome is Outcome.SKIPPED
    assert await paper.order_by_client_id(BTC, "tb-BTCUSDT-k-en1") is None
    store.close()

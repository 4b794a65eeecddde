"""The matching simulator against hand-computed cases: fills, triggers, filters, money.

Most cases use a simulator without spread and slippage (`exact`) so every price below can
be checked by hand; the spread/slippage formula has its own cases.
"""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trader.domain import Candle, OrderRequest, OrderRole, OrderStatus, OrderType, Side
from trader.exchange.base import AccountUpdate, ExchangeError, FundingApplied, OrderUpdate
from trader.exchange.sim import DEFAULT_RULES, SimConfig, Simulator, rules_for

T0 = datetime(2024, 1, 1, 7, 0, tzinfo=UTC)
BTC = "BTCUSDT"


def exact(price: str = "70000", symbol: str = BTC, **config: object) -> Simulator:
    """A simulator with no spread and no slippage, the price already set."""
    settings: dict = {"spread": {symbol: D(0)}, "slippage": D(0), **config}
    sim = Simulator(SimConfig(**settings))
    sim.set_price(symbol, D(price), T0)
    return sim


def market(side: Side, qty: str, cid: str = "entry", reduce_only: bool = False,
           symbol: str = BTC) -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.MARKET, D(qty), cid, OrderRole.ENTRY,
                        reduce_only=reduce_only)


def limit(side: Side, qty: str, price: str, cid: str = "limit",
          reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(BTC, side, OrderType.LIMIT, D(qty), cid, OrderRole.ENTRY,
                        price=D(price), reduce_only=reduce_only)


def conditional(kind: OrderType, side: Side, stop: str, cid: str, qty: str = "0",
                close_position: bool = True, reduce_only: bool = False) -> OrderRequest:
    role = OrderRole.STOP_LOSS if kind is OrderType.STOP_MARKET else OrderRole.TAKE_PROFIT
    return OrderRequest(BTC, side, kind, D(qty), cid, role, trigger_price=D(stop),
                        reduce_only=reduce_only, close_position=close_position)


def stop_loss(stop: str, side: Side = Side.SELL, cid: str = "sl") -> OrderRequest:
    return conditional(OrderType.STOP_MARKET, side, stop, cid)


def take_profit(stop: str, side: Side = Side.SELL, cid: str = "tp") -> OrderRequest:
    return conditional(OrderType.TAKE_PROFIT_MARKET, side, stop, cid)


def candle(o: str, h: str, low: str, c: str, at: datetime = T0, minutes: int = 15,
           symbol: str = BTC) -> Candle:
    return Candle(symbol, at, timedelta(minutes=minutes), D(o), D(h), D(low), D(c))


def rejected(sim: Simulator, request: OrderRequest) -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        sim.place(request, T0)
    return caught.value


def long_with_protection(sim: Simulator, qty: str = "0.01", sl: str = "69000",
                         tp: str = "71000") -> None:
    sim.place(market(Side.BUY, qty), T0)
    sim.place(stop_loss(sl), T0)
    sim.place(take_profit(tp), T0)


# --- market fills, spread, slippage -------------------------------------------------------
def test_market_buy_fills_at_mid_plus_half_spread_plus_slippage_rounded_up_to_the_tick() -> None:
    sim = Simulator()   # BTCUSDT default spread 0.00002, slippage 0.0001
    sim.set_price(BTC, D("70000"), T0)
    order, events = sim.place(market(Side.BUY, "0.01"), T0)
    # 70000 x (1 + 0.00001 + 0.0001) = 70007.7; fee 0.01 x 70007.7 x 0.0005 = 0.3500385
    assert order.status is OrderStatus.FILLED and order.avg_price == D("70007.7")
    fill = sim.fills(BTC)[0]
    assert (fill.price, fill.fee, fill.maker) == (D("70007.7"), D("0.3500385"), False)
    assert [type(e) for e in events] == [OrderUpdate, OrderUpdate, AccountUpdate]
    assert events[0].order.status is OrderStatus.NEW and events[1].fill == fill


def test_market_sell_fills_below_mid_rounded_down_to_the_tick() -> None:
    sim = Simulator(SimConfig(spread={BTC: D("0.0001")}, slippage=D("0.0002")))
    sim.set_price(BTC, D("50000.3"), T0)
    sim.place(market(Side.SELL, "0.01"), T0)
    # 50000.3 x (1 - 0.00005 - 0.0002) = 49987.79992... -> 49987.7
    assert sim.fills(BTC)[0].price == D("49987.7")


def test_book_is_the_mid_plus_minus_half_the_spread_on_ticks() -> None:
    sim = Simulator()
    sim.set_price(BTC, D("70000"), T0)
    book = sim.book(BTC)
    assert (book.bid, book.ask) == (D("69999.3"), D("70000.7"))


# --- stops, take-profits, the price path --------------------------------------------------
def test_stop_inside_a_candle_fills_at_the_stop_price() -> None:
    sim = exact()
    long_with_protection(sim)
    sim.on_candle(candle("69500", "69600", "68800", "69100"))
    fill = sim.fills(BTC)[-1]
    assert (fill.client_id, fill.price, fill.realized_pnl) == ("sl", D("69000"), D("-10"))
    assert sim.position(BTC).quantity == 0


def test_gap_through_a_stop_fills_at_the_open_not_at_the_stop() -> None:
    sim = exact()
    long_with_protection(sim)
    sim.on_candle(candle("68000", "68500", "67500", "68200"))
    fill = sim.fills(BTC)[-1]
    # (68000 - 70000) x 0.01 = -20; fee 0.01 x 68000 x 0.0005 = 0.34
    assert (fill.client_id, fill.price, fill.realized_pnl, fill.fee) == (
        "sl", D("68000"), D("-20"), D("0.34"))
    assert fill.time == T0   # the gap happens at the candle's open


def test_tp_and_sl_in_one_candle_high_first_when_the_open_is_nearer_the_high() -> None:
    sim = exact()
    long_with_protection(sim)
    # |70100 - 71500| = 1400 <= |70100 - 68500| = 1600: the path goes to the high first
    sim.on_candle(candle("70100", "71500", "68500", "69000"))
    assert sim.order(BTC, "tp").status is OrderStatus.FILLED
    assert sim.order(BTC, "tp").avg_price == D("71000")
    assert sim.order(BTC, "sl").status is OrderStatus.EXPIRED
    assert [f.client_id for f in sim.fills(BTC)] == ["entry", "tp"]


def test_tp_and_sl_in_one_candle_low_first_when_the_open_is_nearer_the_low() -> None:
    sim = exact()
    long_with_protection(sim)
    sim.on_candle(candle("69900", "71500", "68500", "71200"))
    assert sim.order(BTC, "sl").status is OrderStatus.FILLED
    assert sim.order(BTC, "sl").avg_price == D("69000")
    assert sim.order(BTC, "tp").status is OrderStatus.EXPIRED
    assert sim.open_orders(BTC) == []


def test_path_events_carry_the_time_of_the_path_point() -> None:
    sim = exact()
    long_with_protection(sim)
    sim.on_candle(candle("69500", "70500", "68800", "70000"))   # low first, at open + 5 min
    assert sim.fills(BTC)[-1].time == T0 + timedelta(minutes=5)


def test_close_position_stop_closes_the_size_held_at_trigger_time() -> None:
    sim = exact()
    long_with_protection(sim)
    sim.place(market(Side.BUY, "0.02", cid="add"), T0)
    sim.set_price(BTC, D("68900"), T0)
    assert sim.fills(BTC)[-1].quantity == D("0.03")
    assert sim.position(BTC).quantity == 0


def test_short_stop_triggers_on_the_way_up() -> None:
    sim = exact()
    sim.place(market(Side.SELL, "0.01"), T0)
    sim.place(stop_loss("70500", side=Side.BUY), T0)
    sim.set_price(BTC, D("70600"), T0)
    fill = sim.fills(BTC)[-1]
    assert (fill.side, fill.price, fill.realized_pnl) == (Side.BUY, D("70500"), D("-5"))


def test_a_triggered_stop_pays_spread_and_slippage_from_the_stop_price() -> None:
    sim = Simulator(SimConfig(spread={BTC: D("0.0002")}, slippage=D("0.0001")))
    sim.set_price(BTC, D("70000"), T0)
    sim.place(market(Side.BUY, "0.01"), T0)
    sim.place(stop_loss("69000"), T0)
    sim.set_price(BTC, D("68000"), T0)
    # 69000 x (1 - 0.0001 - 0.0001) = 68986.2
    assert sim.fills(BTC)[-1].price == D("68986.2")


# --- limits ---------------------------------------------------------------------------------
def test_limit_rests_then_fills_at_its_price_as_maker() -> None:
    sim = exact()
    order, _ = sim.place(limit(Side.BUY, "0.01", "69500"), T0)
    assert order.status is OrderStatus.NEW and sim.open_orders(BTC) == [order]
    sim.on_candle(candle("70000", "70100", "69400", "69800"))
    fill = sim.fills(BTC)[-1]
    # maker fee 0.01 x 69500 x 0.0002 = 0.139
    assert (fill.price, fill.maker, fill.fee) == (D("69500"), True, D("0.139"))


def test_marketable_limit_fills_at_once_as_taker_at_the_book_price() -> None:
    sim = Simulator(SimConfig(spread={BTC: D("0.0002")}, slippage=D(0)))
    sim.set_price(BTC, D("70000"), T0)
    order, _ = sim.place(limit(Side.BUY, "0.01", "70100"), T0)
    assert order.status is OrderStatus.FILLED and order.avg_price == D("70007")
    assert sim.fills(BTC)[-1].maker is False


# --- reduce-only and flips ------------------------------------------------------------------
def test_reduce_only_market_without_a_position_is_rejected() -> None:
    error = rejected(exact(), market(Side.SELL, "0.01", reduce_only=True))
    assert (error.code, error.message) == (-2022, "ReduceOnly Order is rejected.")


def test_reduce_only_market_on_the_same_side_as_the_position_is_rejected() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01"), T0)
    assert rejected(sim, market(Side.BUY, "0.01", cid="more", reduce_only=True)).code == -2022


def test_reduce_only_bigger_than_the_position_is_clipped_and_never_flips() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01"), T0)
    order, _ = sim.place(market(Side.SELL, "0.05", cid="flat", reduce_only=True), T0)
    assert order.filled_qty == D("0.01") and sim.position(BTC).quantity == 0


def test_resting_reduce_only_limit_is_clipped_at_fill_and_expires_with_the_position() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.02"), T0)
    sim.place(limit(Side.SELL, "0.05", "70500", cid="tp-limit", reduce_only=True), T0)
    sim.place(market(Side.SELL, "0.01", cid="part", reduce_only=True), T0)
    sim.set_price(BTC, D("70600"), T0)
    assert sim.fills(BTC)[-1].quantity == D("0.01") and sim.position(BTC).quantity == 0
    sim.place(market(Side.BUY, "0.01", cid="again"), T0)
    sim.place(limit(Side.SELL, "0.01", "71000", cid="rest", reduce_only=True), T0)
    sim.close_by_hand(BTC, T0)
    assert sim.order(BTC, "rest").status is OrderStatus.EXPIRED


def test_a_larger_opposite_order_flips_the_position_at_the_fill_price() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01"), T0)
    sim.set_price(BTC, D("70500"), T0)
    sim.place(market(Side.SELL, "0.03", cid="flip"), T0)
    position = sim.position(BTC)
    assert (position.quantity, position.entry_price) == (D("-0.02"), D("70500"))
    assert sim.fills(BTC)[-1].realized_pnl == D("5")


def test_average_entry_price_after_adding() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01"), T0)
    sim.set_price(BTC, D("71000"), T0)
    sim.place(market(Side.BUY, "0.03", cid="add"), T0)
    # (70000 x 0.01 + 71000 x 0.03) / 0.04 = 70750
    assert sim.position(BTC).entry_price == D("70750")


# --- filters and rejections -----------------------------------------------------------------
def test_min_notional_rejects_small_entries_with_binance_message() -> None:
    error = rejected(exact(), market(Side.BUY, "0.001"))   # 70 USDT < 100
    assert error.code == -4164
    assert error.message == ("Order's notional must be no smaller than 100 "
                             "(unless you choose reduce only).")


def test_min_notional_does_not_apply_to_reduce_only_orders() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01"), T0)
    order, _ = sim.place(market(Side.SELL, "0.001", cid="part", reduce_only=True), T0)
    assert order.status is OrderStatus.FILLED


def test_min_notional_message_uses_the_symbol_minimum() -> None:
    sim = exact("0.5", symbol="XRPUSDT")
    error = rejected(sim, market(Side.BUY, "9.9", symbol="XRPUSDT"))   # 4.95 < 5
    assert "no smaller than 5 (unless" in error.message


@pytest.mark.parametrize(("request_", "code", "message"), [
    (limit(Side.BUY, "0.01", "69000.05"), -4014, "Price not increased by tick size."),
    (stop_loss("69000.01"), -4014, "Price not increased by tick size."),
    (market(Side.BUY, "0.0015"), -1111, "Precision is over the maximum defined for this asset."),
    (market(Side.BUY, "0"), -4003, "Quantity less than or equal to zero."),
])
def test_tick_and_step_violations_use_binance_codes(request_: OrderRequest, code: int,
                                                    message: str) -> None:
    error = rejected(exact(), request_)
    assert (error.code, error.message) == (code, message)


@pytest.mark.parametrize("request_", [
    stop_loss("70100"),                           # SELL stop above the price
    stop_loss("69900", side=Side.BUY),            # BUY stop below the price
    take_profit("69900"),                         # SELL take-profit below the price
    take_profit("70000"),                         # on the price itself
])
def test_conditional_order_that_would_trigger_at_once_is_rejected(
        request_: OrderRequest) -> None:
    error = rejected(exact(), request_)
    assert (error.code, error.message) == (-2021, "Order would immediately trigger.")


def test_duplicate_client_id_is_rejected_only_among_open_orders() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01", cid="same"), T0)
    sim.place(market(Side.BUY, "0.01", cid="same"), T0)      # a filled MARKET id may be reused
    sim.place(limit(Side.BUY, "0.01", "60000", cid="resting"), T0)
    error = rejected(sim, limit(Side.BUY, "0.01", "60000", cid="resting"))
    assert (error.code, error.message) == (-4116, "ClientOrderId is duplicated.")
    sim.cancel(BTC, "resting", T0)
    assert sim.place(limit(Side.BUY, "0.01", "60000", cid="resting"), T0)[0].status \
        is OrderStatus.NEW


def test_margin_insufficient_when_margin_plus_fee_exceeds_available() -> None:
    sim = exact(balance=D("1000"))   # leverage 5
    # 0.071 x 70000 = 4970: margin 994 + fee 2.485 = 996.485 <= 1000
    assert sim.place(market(Side.BUY, "0.071"), T0)[0].status is OrderStatus.FILLED
    fresh = exact(balance=D("1000"))
    error = rejected(fresh, market(Side.BUY, "0.072"))   # margin 1008 > 1000
    assert (error.code, error.message) == (-2019, "Margin is insufficient.")
    assert fresh.balance().wallet == D("1000") and fresh.fills(BTC) == []


def test_resting_limit_orders_reserve_margin() -> None:
    sim = exact(balance=D("1000"))
    sim.place(limit(Side.BUY, "0.05", "69000", cid="resting"), T0)   # 690 reserved
    assert sim.balance().available == D("310")
    assert rejected(sim, market(Side.BUY, "0.03")).code == -2019     # needs 420 + fee


def test_second_close_position_stop_in_the_same_direction_is_rejected() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01"), T0)
    sim.place(stop_loss("69000"), T0)
    assert rejected(sim, stop_loss("68000", cid="sl2")).code == -4130


def test_close_position_with_reduce_only_is_rejected() -> None:
    request = conditional(OrderType.STOP_MARKET, Side.SELL, "69000", "sl", reduce_only=True)
    assert rejected(exact(), request).code == -1106


def test_cancel_of_unknown_or_terminal_order_is_unknown_order_sent() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01"), T0)
    for client_id in ("never-placed", "entry"):
        with pytest.raises(ExchangeError) as caught:
            sim.cancel(BTC, client_id, T0)
        assert (caught.value.code, caught.value.message) == (-2011, "Unknown order sent.")


# --- fees, funding, liquidation -------------------------------------------------------------
def test_fees_and_funding_arithmetic_is_exact() -> None:
    sim = exact("40000")
    sim.place(market(Side.BUY, "0.5"), T0)            # fee 0.5 x 40000 x 0.0005 = 10
    events = sim.on_candle(candle("40000", "40200", "39900", "40100",
                                  at=datetime(2024, 1, 1, 7, 45, tzinfo=UTC)))
    funding = [e for e in events if isinstance(e, FundingApplied)]
    # 08:00 UTC: a long pays 0.5 x 40100 x 0.0001 = 2.005
    assert [(f.amount, f.rate, f.time.hour) for f in funding] == [(D("-2.005"), D("0.0001"), 8)]
    sim.set_price(BTC, D("41000"), T0)
    sim.place(market(Side.SELL, "0.5", cid="exit"), T0)   # +500 realised, fee 10.25
    assert sim.balance().wallet == D("10000") - D("10") - D("2.005") + D("500") - D("10.25")
    assert sim.balance().wallet == D("10477.745")


def test_shorts_receive_positive_funding_and_pay_negative() -> None:
    sim = exact("2000", symbol="ETHUSDT")
    sim.place(market(Side.SELL, "1", symbol="ETHUSDT"), T0)
    sim.set_funding_rate("ETHUSDT", D("0.0003"))
    at_midnight = datetime(2024, 1, 1, 23, 55, tzinfo=UTC)
    sim.on_candle(candle("2000", "2001", "1999", "2000", at=at_midnight, minutes=5,
                         symbol="ETHUSDT"))
    assert sim.ledger.funding == D("0.6")
    sim.set_funding_rate("ETHUSDT", D("-0.0001"))
    sim.on_candle(candle("2000", "2001", "1999", "2000", at=at_midnight + timedelta(hours=8),
                         minutes=5, symbol="ETHUSDT"))
    assert sim.ledger.funding == D("0.6") - D("0.2")


def test_funding_is_charged_once_per_funding_time_and_only_with_a_position() -> None:
    sim = exact("40000")
    before_eight = datetime(2024, 1, 1, 7, 45, tzinfo=UTC)
    sim.on_candle(candle("40000", "40010", "39990", "40000", at=before_eight))
    assert sim.ledger.funding == 0                       # no position at 08:00
    sim.place(market(Side.BUY, "0.5"), T0)
    sim.on_candle(candle("40000", "40010", "39990", "40000", at=before_eight))   # replayed
    assert sim.ledger.funding == 0
    sim.on_candle(candle("40000", "40010", "39990", "40000", at=before_eight + timedelta(hours=8)))
    assert sim.ledger.funding == D("-2")


def test_funding_schedule_gives_the_rate_of_each_funding_time() -> None:
    sim = exact("1", symbol="XRPUSDT")
    sim.set_funding_schedule("XRPUSDT", [
        (datetime(2024, 1, 1, 0, 0, 0, 17000, tzinfo=UTC), D("0.0001")),
        (datetime(2024, 1, 1, 8, 0, 0, 12000, tzinfo=UTC), D("-0.0005")),
    ])
    assert sim.funding_rate("XRPUSDT", datetime(2024, 1, 1, 8, tzinfo=UTC)) == D("-0.0005")
    assert sim.funding_rate("XRPUSDT", datetime(2024, 1, 1, 7, tzinfo=UTC)) == D("0.0001")


def test_isolated_long_is_liquidated_at_its_liquidation_price() -> None:
    sim = exact()
    sim.place(market(Side.BUY, "0.01"), T0)                  # leverage 5, BTC mmr 0.004
    # 70000 x (1 - 1/5) / (1 - 0.004) = 56224.899... -> 56224.9 on the tick
    sim.on_candle(candle("60000", "60100", "55000", "55500"))
    fill = sim.fills(BTC)[-1]
    assert fill.client_id.startswith("autoclose-") and fill.price == D("56224.9")
    assert fill.realized_pnl == D("-137.751") and sim.position(BTC).quantity == 0


def test_stop_above_the_liquidation_price_fills_first() -> None:
    sim = exact()
    long_with_protection(sim, sl="60000")
    sim.on_candle(candle("60500", "60600", "50000", "51000"))
    assert [f.client_id for f in sim.fills(BTC)] == ["entry", "sl"]


# --- operator actions, determinism, state ---------------------------------------------------
def test_close_by_hand_is_a_manual_market_reduce_and_expires_protection() -> None:
    sim = exact()
    long_with_protection(sim)
    sim.close_by_hand(BTC, T0, quantity=D("0.004"))
    assert sim.position(BTC).quantity == D("0.006")
    sim.close_by_hand(BTC, T0)
    assert [f.client_id for f in sim.fills(BTC)] == ["entry", "manual-1", "manual-2"]
    assert {sim.order(BTC, c).status for c in ("sl", "tp")} == {OrderStatus.EXPIRED}


def scripted_session(seed: int) -> tuple[dict, list[float]]:
    sim = Simulator(SimConfig(seed=seed))
    sim.set_price(BTC, D("70000"), T0)
    delays = [sim.latency() for _ in range(3)]
    long_with_protection(sim, sl="69500", tp="70800")
    for minute, (o, h, low, c) in enumerate([("70000", "70400", "69800", "70300"),
                                             ("70300", "70900", "70200", "70850")]):
        sim.on_candle(candle(o, h, low, c, at=T0 + timedelta(minutes=15 * minute)))
    sim.place(market(Side.SELL, "0.02", cid="short"), T0 + timedelta(hours=1))
    return sim.to_state(), delays


def test_same_seed_and_inputs_give_identical_state_and_latencies() -> None:
    first, second = scripted_session(7), scripted_session(7)
    assert first == second
    assert all(0.05 <= d <= 0.5 for d in first[1])
    assert scripted_session(8)[1] != first[1]


def test_state_round_trips_through_json_and_continues_identically() -> None:
    sim = exact()
    long_with_protection(sim)
    sim.latency()
    restored = Simulator.from_state(json.loads(json.dumps(sim.to_state())), sim.config)
    assert restored.to_state() == sim.to_state()
    for one in (sim, restored):
        one.on_candle(candle("70100", "71500", "68500", "69000"))
    assert restored.to_state() == sim.to_state()
    assert restored.latency() == sim.latency()


def test_default_rules_match_binance_filters() -> None:
    btc, xrp = DEFAULT_RULES["BTCUSDT"], DEFAULT_RULES["XRPUSDT"]
    assert (btc.tick_size, btc.step_size, btc.min_notional) == (D("0.10"), D("0.001"), D("100"))
    assert (xrp.tick_size, xrp.step_size, xrp.min_notional) == (D("0.0001"), D("0.1"), D("5"))
    assert set(DEFAULT_RULES) == {"BTCUSDT", "ETHUSDT", "XRPUSDT", "SOLUSDT", "BNBUSDT"}
    assert rules_for("DOGEUSDT").symbol == "DOGEUSDT"


# --- property: the money always adds up -----------------------------------------------------
moves = st.decimals(min_value=D("-0.03"), max_value=D("0.03"), places=4)
sides = st.sampled_from([Side.BUY, Side.SELL])
actions = st.one_of(
    st.tuples(st.just("market"), sides, st.integers(1, 40), st.booleans()),
    st.tuples(st.just("limit"), sides, st.integers(1, 40), moves),
    st.tuples(st.just("conditional"), st.sampled_from(list(OrderType)[2:]), sides, moves,
              st.booleans()),
    st.tuples(st.just("price"), moves, st.booleans()),
    st.tuples(st.just("candle"), moves, moves, moves, moves),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("funding"), st.decimals(min_value=D("-0.001"), max_value=D("0.001"),
                                              places=5)),
    st.tuples(st.just("leverage"), st.sampled_from([2, 5, 20, 50])),
)


def on_tick(price: D) -> D:
    return rules_for(BTC).round_price(price, up=False)


def run_action(sim: Simulator, action: tuple, now: datetime, n: int) -> list:
    kind, mark = action[0], sim.mark_price(BTC)
    if kind == "market":
        _, side, steps, reduce_only = action
        return sim.place(market(side, str(D("0.001") * steps), f"m{n}", reduce_only), now)[1]
    if kind == "limit":
        _, side, steps, move = action
        price = on_tick(mark * (1 + move))
        return sim.place(limit(side, str(D("0.001") * steps), str(price), f"l{n}"), now)[1]
    if kind == "conditional":
        _, order_type, side, move, close_position = action
        request = conditional(order_type, side, str(on_tick(mark * (1 + move))), f"c{n}",
                              qty="0" if close_position else "0.01",
                              close_position=close_position, reduce_only=not close_position)
        return sim.place(request, now)[1]
    if kind == "price":
        return sim.set_price(BTC, on_tick(mark * (1 + action[1])), now, gap=action[2])
    if kind == "candle":
        o, a, b, c = (on_tick(mark * (1 + m)) for m in action[1:])
        return sim.on_candle(Candle(BTC, now, timedelta(hours=3), o, max(o, a, b, c),
                                    min(o, a, b, c), c))
    if kind == "cancel":
        live = sim.open_orders(BTC)
        return sim.cancel(BTC, live[action[1] % len(live)].client_id, now)[1] if live else []
    if kind == "funding":
        sim.set_funding_rate(BTC, action[1])
        return []
    sim.set_leverage(BTC, action[1])
    return []


def assert_reducing_fills_never_grow_or_flip(held: D, events: list) -> None:
    for event in events:
        if not (isinstance(event, OrderUpdate) and event.fill):
            continue
        after = held + event.fill.quantity * event.fill.side.sign
        if event.order.reduce_only or event.order.close_position:
            assert abs(after) < abs(held) and after * held >= 0
        held = after


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=1, max_size=30))
def test_equity_is_initial_balance_plus_realised_minus_fees_plus_funding_plus_unrealised(
        script: list[tuple]) -> None:
    sim = Simulator(SimConfig(balance=D("2000")))
    sim.set_price(BTC, D("70000"), T0)
    funding = D(0)
    for n, action in enumerate(script):
        now = T0 + timedelta(hours=3 * n)
        held = sim.position(BTC).quantity
        try:
            events = run_action(sim, action, now, n)
        except ExchangeError:
            events = []
        assert_reducing_fills_never_grow_or_flip(held, events)
        funding += sum((e.amount for e in events if isinstance(e, FundingApplied)), D(0))
        fills = sim.fills(BTC)
        position = sim.position(BTC)
        unrealised = (sim.mark_price(BTC) - position.entry_price) * position.quantity
        expected = (D("2000") + sum((f.realized_pnl - f.fee for f in fills), D(0)) + funding
                    + unrealised)
        assert sim.balance().equity == expected
        filled = any(isinstance(e, OrderUpdate) and e.fill for e in events)
        if position.quantity == 0 and filled:   # reducing orders expire with their position
            assert not [o for o in sim.open_orders(BTC) if o.reduce_only or o.close_position]

"""A stop's FIRST placement (nothing else protects the position) that Binance's PRICE_FILTER
refuses for good (-4013 "Price less than min price.", -4007 "Stop price greater than max
price.": https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code,
40xx) is not retried at the same level forever: it is planned again at the nearest level the
filter allows (minPrice / maxPrice: https://developers.binance.com/docs/derivatives/
usds-margined-futures/common-definition, Filters) and sent once, with one PROTECTION alert
naming both levels. A refused MOVE is given up instead (tests/test_stop_move_refused_by_a_filter.py).

When even the allowed bound is behind the market (-2021 "Order would immediately trigger"),
no level the filter allows protects: the position is NOT closed at market for a filter (the
operator decides: /close); the stop is retried at the bound on the schedule, and the
POSITION_UNPROTECTED alert says why."""

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.test_alert_texts_formatted import RULES, SL, apply, position, texts
from tests.test_binance_faults import PRICE, SYMBOL, alerts, booted_long, stops
from tests.test_stop_move_refused_by_a_filter import MAX_PRICE
from trader.alerts import AlertName
from trader.domain import OrderRole
from trader.events import LegGone, LegRejected, PlaceLeg
from trader.exchange.base import ExchangeError
from trader.exchange.errors import classify
from trader.exchange_actions import rejection_at_bound

D = Decimal
ALGO_ORDER = "POST /fapi/v1/algoOrder"
MIN_PRICE = "-4013 PRICE_LESS_THAN_MIN_PRICE: price less than min price"


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


async def test_a_first_stop_below_min_price_is_placed_at_min_price_with_one_alert(fake, tmp_path):
    async with booted_long(fake, tmp_path) as engine:
        [old] = await stops(engine)
        floor = old.trigger_price + 100                      # above the stop, below the mark
        fake.sim.set_rules(replace(fake.sim.rules_for(SYMBOL), min_price=floor))
        await fake.cancel_order_by_hand(SYMBOL, old.client_id)
        for _ in range(3):
            await engine.tick()
        [live] = await stops(engine)
        assert live.trigger_price == floor
        assert engine.positions[SYMBOL].stop.trigger_price == floor
        [replanned] = alerts(engine, "PROTECTION")
        assert replanned == (
            f"{SYMBOL}: Binance refused the stop-loss at {old.trigger_price:,.0f} ({MIN_PRICE}); "
            f"placing it at {floor:,.0f} instead, the nearest level it allows. Send /sl to "
            "choose another"), replanned
        sent = len(fake.requests(ALGO_ORDER))
        for _ in range(3):
            await engine.tick()
        assert len(fake.requests(ALGO_ORDER)) == sent        # protected: nothing more sent


def gone_then_refused(reason: str, allowed: Decimal | None):  # type: ignore[no-untyped-def]
    record, _ = apply(position(), LegGone(SL, position().stop.order.client_id, True,  # type: ignore[union-attr]
                                          status="CANCELED"))
    replacement = record.stop.pending
    assert replacement is not None
    return apply(record, LegRejected(SL, replacement, reason, filter_refused=True,
                                     allowed_trigger=allowed))


def test_a_first_placement_refused_by_a_filter_is_sent_once_at_the_allowed_level():
    record, actions = gone_then_refused(MIN_PRICE, D("49800.00"))
    [place] = [a for a in actions if isinstance(a, PlaceLeg)]
    assert place.trigger_price == D("49800.00") and record.stop.pending == place.client_id
    assert texts(actions, AlertName.PROTECTION) == [
        f"{SYMBOL}: Binance refused the stop-loss at 49,790 ({MIN_PRICE}); placing it at "
        "49,800 instead, the nearest level it allows. Send /sl to choose another"]
    # refused again at the allowed level (the rules moved again): retried on the schedule
    record, actions = apply(record, LegRejected(SL, place.client_id, MIN_PRICE,
                                                filter_refused=True, allowed_trigger=None))
    assert record.stop.trigger_price == D("49800.00") and record.stop.retry_at is not None
    assert not [a for a in actions if isinstance(a, PlaceLeg)]


def test_a_take_profit_past_max_price_is_placed_at_max_price():
    record, _ = apply(position(), LegGone(OrderRole.TAKE_PROFIT,
                                          position().take_profit.order.client_id,  # type: ignore[union-attr]
                                          True, status="CANCELED"))
    pending = record.take_profit.pending
    assert pending is not None
    record, actions = apply(record, LegRejected(OrderRole.TAKE_PROFIT, pending, MAX_PRICE,
                                                filter_refused=True,
                                                allowed_trigger=D("50500.00")))
    [place] = [a for a in actions if isinstance(a, PlaceLeg)]
    assert place.trigger_price == D("50500.00")
    assert len(texts(actions, AlertName.PROTECTION)) == 1


def test_the_nearest_allowed_price_is_the_bound_the_price_is_past():
    bounded = replace(RULES, min_price=D("100.0"), max_price=D("90000.0"))
    assert bounded.nearest_allowed_price(D("50.0")) == D("100.0")
    assert bounded.nearest_allowed_price(D("95000.0")) == D("90000.0")
    assert bounded.nearest_allowed_price(D("50000.0")) is None
    assert RULES.nearest_allowed_price(D("0.1")) is None          # 0: no bound


def test_immediate_trigger_at_the_bound_is_not_a_passed_level():
    """-2021 on a stop at the filter's bound: no allowed level protects; the edge reports a
    refusal to retry (not a passed level that closes at market)."""
    bounded = replace(RULES, min_price=D("49800.00"))
    verdict = classify(ExchangeError(-2021, "Order would immediately trigger."),
                       OrderRole.STOP_LOSS)
    assert rejection_at_bound(bounded, SL, D("49800.00"), verdict, covered=False) != ""
    assert rejection_at_bound(bounded, SL, D("49700.00"), verdict, covered=False) == ""
    # a move to the bound while the old stop covers: a passed level, closed as ever
    assert rejection_at_bound(bounded, SL, D("49800.00"), verdict, covered=True) == ""


async def test_when_even_the_bound_is_passed_the_stop_is_retried_there_not_closed(fake, tmp_path):
    """minPrice above the mark: no sell stop Binance allows protects the LONG. It is not
    closed at market for a filter; the stop waits at the bound and the alert says why."""
    async with booted_long(fake, tmp_path) as engine:
        [old] = await stops(engine)
        floor = PRICE + 500
        fake.sim.set_rules(replace(fake.sim.rules_for(SYMBOL), min_price=floor))
        await fake.cancel_order_by_hand(SYMBOL, old.client_id)
        for _ in range(3):
            await engine.tick()
        assert await stops(engine) == []
        assert (await engine.exchange.position(SYMBOL)).quantity != 0    # still open
        record = engine.positions[SYMBOL]
        assert record.stop.trigger_price == floor and record.stop.retry_at is not None
        unprotected = alerts(engine, "POSITION_UNPROTECTED")
        assert any("no allowed stop protects now; /close closes at market" in text
                   for text in unprotected), unprotected

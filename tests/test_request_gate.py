"""The request gate through the real python-binance client and the fake Binance server:
after a 429/418 nothing at all is sent until Retry-After has passed (reads, orders, cancels,
listenKey alike), transient errors on reads are retried with capped backoff, and a request
that may create an order is never retried blind."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes.binance_harness import SYMBOL, client_id, market, started_exchange, stop_loss
from tests.fakes.binance_server import FakeBinance
from trader.clock import ManualClock
from trader.domain import OrderRole, Side
from trader.exchange.base import CircuitOpen, ExchangeError, UnknownOutcome
from trader.exchange.binance_market import PRICE_READ_SECONDS
from trader.exchange.errors import Outcome, classify
from trader.exchange.gate import RetryPolicy

FAST = RetryPolicy(attempts=4, initial=0.01, cap=0.05)


@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


@pytest.fixture
def clock():
    return ManualClock(datetime.now(UTC))


@pytest.fixture
async def exchange(fake, clock):
    async with started_exchange(fake, clock=clock, retry_policy=FAST) as started:
        yield started


def every_call(exchange):
    """One call per REST path the agent uses while trading."""
    since = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "position": lambda: exchange.position(SYMBOL),
        "open orders": lambda: exchange.open_orders(SYMBOL),
        "book ticker": lambda: exchange.book_ticker(SYMBOL),
        "account": lambda: exchange.balance(),
        "user trades": lambda: exchange.fills(SYMBOL, since),
        "klines": lambda: exchange.klines(SYMBOL, "1m", limit=5),
        "premium index": lambda: exchange.funding_rate(SYMBOL),
        "query order": lambda: exchange.order_by_client_id(SYMBOL, client_id(OrderRole.ENTRY)),
        "cancel": lambda: exchange.cancel(SYMBOL, client_id(OrderRole.STOP_LOSS)),
        "place": lambda: exchange.place(market(Side.BUY, "0.01", seq=9)),
        "place stop": lambda: exchange.place(stop_loss(Side.SELL, "49000", seq=9)),
        "listen key": lambda: exchange.create_listen_key(),
        "keepalive": lambda: exchange.keep_alive_listen_key("key"),
        "leverage": lambda: exchange.set_leverage(SYMBOL, 3),
        "exchange info": lambda: exchange.refresh_rules(),
    }


@pytest.mark.parametrize("status", [429, 418])
async def test_nothing_is_sent_on_any_path_inside_the_retry_after_window(fake, exchange, clock,
                                                                         status):
    fake.inject_fault("GET /fapi/v3/positionRisk", code=-1003, http_status=status,
                      retry_after=4)
    with pytest.raises(ExchangeError) as first:
        await exchange.position(SYMBOL)
    assert first.value.http_status == status
    assert exchange.circuit().is_open(clock.now())
    sent = len(fake.request_log)

    for name, call in every_call(exchange).items():
        with pytest.raises(CircuitOpen) as refused:
            await call()
        assert classify(refused.value, sending=False).outcome is Outcome.CIRCUIT_OPEN, name
        # the ban is named as the ban: a 418 is not "http=429" in the alerts and /health
        assert refused.value.http_status == status, name
        assert f"http={status}" in str(refused.value), str(refused.value)
    assert len(fake.request_log) == sent, "a request reached Binance inside Retry-After"

    clock.advance(timedelta(seconds=3.9))
    with pytest.raises(CircuitOpen):
        await exchange.book_ticker(SYMBOL)
    assert len(fake.request_log) == sent
    clock.advance(timedelta(seconds=0.2))
    assert not exchange.circuit().is_open(clock.now())
    await exchange.book_ticker(SYMBOL)
    assert len(fake.request_log) == sent + 1


async def test_a_429_on_an_order_opens_the_same_circuit_for_reads(fake, exchange, clock):
    fake.inject_fault("POST /fapi/v1/order", code=-1015, http_status=429, retry_after=10)
    with pytest.raises(ExchangeError):
        await exchange.place(market(Side.BUY, "0.01"))
    sent = len(fake.request_log)
    with pytest.raises(CircuitOpen):
        await exchange.open_orders(SYMBOL)
    assert len(fake.request_log) == sent
    assert exchange.circuit().reason.startswith("rate limited (HTTP 429, code -1015)")


async def test_a_429_without_retry_after_waits_a_whole_minute(fake, exchange, clock):
    fake.inject_fault("GET /fapi/v2/account", code=-1003, http_status=429)
    with pytest.raises(ExchangeError):
        await exchange.balance()
    circuit = exchange.circuit()
    assert circuit.open_until is not None
    assert (circuit.open_until - clock.now()) == timedelta(seconds=60)


async def test_a_short_burst_of_503_on_a_read_is_retried_and_answers(fake, exchange):
    fake.clear_request_log()
    fake.inject_fault("GET /fapi/v3/positionRisk", http_status=503, times=3)
    position = await exchange.position(SYMBOL)
    assert position.symbol == SYMBOL
    assert len(fake.requests("GET /fapi/v3/positionRisk")) == 4


async def test_a_long_burst_of_503_on_a_read_ends_as_an_exchange_error_after_the_policy(
        fake, exchange):
    fake.clear_request_log()
    fake.inject_fault("GET /fapi/v3/positionRisk", http_status=503, times=6)
    with pytest.raises(ExchangeError) as caught:
        await exchange.position(SYMBOL)
    assert caught.value.http_status == 503
    assert len(fake.requests("GET /fapi/v3/positionRisk")) == FAST.attempts


async def test_a_timeout_on_a_cancel_is_retried(fake, clock):
    async with started_exchange(fake, clock=clock, retry_policy=FAST,
                                request_timeout=0.3) as exchange:
        await exchange.place(stop_loss(Side.SELL, "49000"))
        fake.inject_fault("DELETE /fapi/v1/algoOrder", delay=0.6, execute=False)
        await exchange.cancel(SYMBOL, client_id(OrderRole.STOP_LOSS))
        assert len(fake.requests("DELETE /fapi/v1/algoOrder")) == 2


async def test_an_order_is_never_resent_after_a_503(fake, exchange):
    fake.inject_fault("POST /fapi/v1/order", http_status=503, times=3)
    with pytest.raises(UnknownOutcome):
        await exchange.place(market(Side.BUY, "0.01"))
    assert len(fake.requests("POST /fapi/v1/order")) == 1


async def test_the_price_a_fee_is_valued_with_is_read_once_and_not_retried(fake, exchange):
    """A close waits for it and does without it (trader/fee_prices.py): one try, no
    backoff (review9 item 3: four tries held a close 44 s)."""
    fake.clear_request_log()
    fake.inject_fault("GET /fapi/v1/premiumIndex", http_status=503, times=3)
    with pytest.raises(ExchangeError):
        await exchange.asset_price("BNB")
    assert len(fake.requests("GET /fapi/v1/premiumIndex")) == 1


async def test_the_funding_rate_on_the_same_path_is_still_retried(fake, exchange):
    """Negative: `once` is the fee price's alone; the same endpoint read for the funding
    rate keeps the gate's retries."""
    fake.clear_request_log()
    fake.inject_fault("GET /fapi/v1/premiumIndex", http_status=503, times=1)
    await exchange.funding_rate(SYMBOL)
    assert len(fake.requests("GET /fapi/v1/premiumIndex")) == 2


async def test_a_slow_fee_price_read_gives_up_after_its_short_bound(fake, exchange):
    fake.inject_fault("GET /fapi/v1/premiumIndex", delay=PRICE_READ_SECONDS + 1.5,
                      only={"symbol": "BNBUSDT"})
    started = time.monotonic()
    with pytest.raises(UnknownOutcome):
        await exchange.asset_price("BNB")
    assert time.monotonic() - started < PRICE_READ_SECONDS + 1

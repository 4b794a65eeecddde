"""Binance errors through the real client and the fake server: every code of the policy
table arrives as ExchangeError with its code and is classified to its Outcome; timeouts,
drops and 5xx on place are UNKNOWN and probed by client id; 429/418 carry Retry-After;
and the request log proves one request per call when nothing fails (the request gate's
retries on transient errors are tested in tests/test_request_gate.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes.binance_harness import (
    SYMBOL,
    client_id,
    limit,
    market,
    settings_for,
    started_exchange,
    stop_loss,
)
from tests.fakes.binance_server import FakeBinance
from trader.clock import ManualClock
from trader.domain import OrderRole, OrderStatus, Side
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.exchange.binance import BinanceExchange
from trader.exchange.errors import TABLE, Outcome, Retry, classify
from trader.exchange.gate import RetryPolicy

ORDER = "POST /fapi/v1/order"
ALGO_ORDER = "POST /fapi/v1/algoOrder"
QUICK_RETRIES = RetryPolicy(initial=0.01, cap=0.05, jitter=0.01)


@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


@pytest.fixture
async def exchange(fake):
    """The default request timeout: a 0.3 s one timed out now and then on a loaded machine
    (a test of error codes read UnknownOutcome(TimeoutError), or a start-up read retried)."""
    async with started_exchange(fake) as started:
        yield started


@pytest.fixture
async def impatient(fake):
    """A 0.3 s request timeout, for the tests of timeouts alone (their faults answer later);
    backoff shrunk (the retries themselves: tests/test_request_gate.py)."""
    async with started_exchange(fake, request_timeout=0.3, retry_policy=QUICK_RETRIES) as started:
        yield started


# --- the table, code by code -------------------------------------------------------------

@pytest.mark.parametrize("code", sorted(TABLE))
async def test_each_table_code_reaches_the_caller_with_its_code_and_outcome(fake, exchange,
                                                                            code):
    policy = TABLE[code]
    fake.inject_fault(ORDER, code=code, times=2 if code == -1021 else 1)
    request = market(Side.BUY, "0.01")

    with pytest.raises((ExchangeError, UnknownOutcome)) as caught:
        await exchange.place(request)

    verdict = classify(caught.value, request.role)
    if policy.outcome is Outcome.UNKNOWN:   # "execution status unknown": the order may exist
        assert isinstance(caught.value, UnknownOutcome) and caught.value.code == code
        assert verdict.outcome is Outcome.UNKNOWN
    else:
        assert isinstance(caught.value, ExchangeError) and caught.value.code == code
        assert (verdict.outcome, verdict.retry) == (policy.outcome, policy.retry)
    # one request per call; -1021 alone is resent once, after a time resync
    assert len(fake.requests(ORDER)) == (2 if code == -1021 else 1)
    assert len(fake.requests("GET /fapi/v1/time")) == (2 if code == -1021 else 1)


@pytest.mark.parametrize("code", [-4164, -4130])
async def test_min_notional_and_existing_stop_are_success_to_verify_for_a_stop_loss_only(
        fake, exchange, code):
    await exchange.place(market(Side.BUY, "0.01"))
    fake.inject_fault(ALGO_ORDER, code=code)
    with pytest.raises(ExchangeError) as caught:
        await exchange.place(stop_loss(Side.SELL, "49000"))

    protective = classify(caught.value, OrderRole.STOP_LOSS)
    assert (protective.outcome, protective.verify) == (Outcome.DONE, True)
    assert classify(caught.value, OrderRole.ENTRY).outcome is Outcome.SKIPPED


async def test_matching_engine_rejections_arrive_with_binance_codes(fake, exchange):
    async def rejection(request) -> int:
        with pytest.raises(ExchangeError) as caught:
            await exchange.place(request)
        return caught.value.code

    assert await rejection(market(Side.BUY, "50", seq=1)) == -2019          # margin
    assert await rejection(market(Side.BUY, "0.001", seq=2)) == -4164       # 50 USDT < 100
    assert await rejection(market(Side.SELL, "0.01", OrderRole.FLATTEN,
                                  reduce_only=True)) == -2022               # nothing to reduce
    await exchange.place(market(Side.BUY, "0.01", seq=3))
    assert await rejection(stop_loss(Side.SELL, "50100")) == -2021          # would trigger
    await exchange.place(limit(Side.BUY, "0.01", "40000", seq=4))
    assert await rejection(limit(Side.BUY, "0.01", "40000", seq=4)) == -4116   # duplicate id


async def test_an_unknown_code_is_fatal_for_the_action(fake, exchange):
    fake.inject_fault(ORDER, code=-9999, msg="Something new.")
    with pytest.raises(ExchangeError) as caught:
        await exchange.place(market(Side.BUY, "0.01"))
    assert classify(caught.value, OrderRole.ENTRY).outcome is Outcome.FAILED


async def test_a_wrong_secret_is_refused_with_1022(fake):
    settings = settings_for(fake, binance_api_secret="not-the-secret-at-all")
    exchange = BinanceExchange(settings, ManualClock(datetime.now(UTC)), streams=False)
    with pytest.raises(ExchangeError) as caught:
        await exchange.start([SYMBOL], 5)
    await exchange.close()
    assert (caught.value.code, caught.value.http_status) == (-1022, 401)
    assert classify(caught.value).outcome is Outcome.FAILED


async def test_a_clock_jump_is_healed_by_one_resync_and_one_resend(fake, exchange):
    fake.set_clock_skew(30_000)            # the server clock is now 30 s ahead of ours
    fake.clear_request_log()
    order = await exchange.place(market(Side.BUY, "0.01"))

    assert order.status is OrderStatus.FILLED
    assert [(r.method, r.path) for r in fake.request_log] == [
        ("POST", "/fapi/v1/order"), ("GET", "/fapi/v1/time"), ("POST", "/fapi/v1/order")]
    assert len(fake.sim.fills(SYMBOL)) == 1


# --- unknown outcomes ----------------------------------------------------------------------

async def test_5xx_timeout_and_dropped_connection_on_place_are_unknown_outcomes(fake, impatient):
    fake.inject_fault(ORDER, http_status=503)
    fake.inject_fault(ALGO_ORDER, delay=0.6)             # answered after our 0.3 s timeout
    with pytest.raises(UnknownOutcome) as server_error:
        await impatient.place(market(Side.BUY, "0.01"))
    assert server_error.value.http_status == 503
    await impatient.place(market(Side.BUY, "0.01", seq=2))
    with pytest.raises(UnknownOutcome):
        await impatient.place(stop_loss(Side.SELL, "49000"))
    fake.inject_fault(ORDER, drop_connection=True)
    with pytest.raises(UnknownOutcome):
        await impatient.place(market(Side.BUY, "0.01", seq=3))
    assert classify(server_error.value, OrderRole.ENTRY).outcome is Outcome.UNKNOWN


async def test_5xx_and_timeouts_on_reads_are_retryable_not_unknown(fake, impatient):
    attempts = impatient.gate.policy.attempts
    fake.inject_fault("GET /fapi/v3/positionRisk", http_status=503, times=attempts)
    fake.inject_fault("GET /fapi/v2/account", delay=0.6, times=attempts)
    with pytest.raises(ExchangeError) as server_error:
        await impatient.position(SYMBOL)
    with pytest.raises(UnknownOutcome) as timeout:
        await impatient.balance()
    for error in (server_error.value, timeout.value):
        verdict = classify(error, sending=False)
        assert (verdict.outcome, verdict.retry) == (Outcome.SKIPPED, Retry.BACKOFF)


async def test_probe_finds_an_order_whose_answer_was_lost(fake, impatient):
    fake.inject_fault(ORDER, delay=0.6)                  # executed, answer too late
    fake.inject_fault(ALGO_ORDER, drop_connection=True)  # executed, connection dropped
    with pytest.raises(UnknownOutcome):
        await impatient.place(market(Side.BUY, "0.01"))
    with pytest.raises(UnknownOutcome):
        await impatient.place(stop_loss(Side.SELL, "49000"))

    entry = await impatient.order_by_client_id(SYMBOL, client_id(OrderRole.ENTRY))
    stop = await impatient.order_by_client_id(SYMBOL, client_id(OrderRole.STOP_LOSS))
    assert entry is not None and entry.status is OrderStatus.FILLED
    assert stop is not None and stop.status is OrderStatus.NEW


# --- rate limiting -------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "meaning"), [(429, "rate limited"), (418, "IP banned")])
async def test_429_and_418_carry_retry_after_and_open_the_circuit(fake, exchange, status,
                                                                  meaning):
    fake.inject_fault("GET /fapi/v2/account", code=-1003, http_status=status, retry_after=7)
    with pytest.raises(ExchangeError) as caught:
        await exchange.balance()
    assert (caught.value.http_status, caught.value.retry_after) == (status, 7.0)
    verdict = classify(caught.value, sending=False)
    assert (verdict.outcome, verdict.retry_after, verdict.meaning) == (
        Outcome.CIRCUIT_OPEN, 7.0, meaning)
    assert len(fake.requests("GET /fapi/v2/account")) == 1


async def test_the_fake_answers_429_with_retry_after_past_its_weight_limit(fake, exchange):
    fake.add_used_weight(fake.usage.weight_per_minute)
    with pytest.raises(ExchangeError) as caught:
        await exchange.book_ticker(SYMBOL)
    assert (caught.value.code, caught.value.http_status) == (-1003, 429)
    assert 0 < caught.value.retry_after <= 60


# --- one request per call --------------------------------------------------------------------

async def test_every_call_sends_exactly_its_own_requests(fake, exchange):
    since = datetime.now(UTC) - timedelta(minutes=1)
    calls = [
        (lambda: exchange.place(market(Side.BUY, "0.01")), 1),
        (lambda: exchange.place(stop_loss(Side.SELL, "49000")), 1),
        (lambda: exchange.order_by_client_id(SYMBOL, client_id(OrderRole.STOP_LOSS)), 1),
        (lambda: exchange.cancel(SYMBOL, client_id(OrderRole.STOP_LOSS)), 1),
        (lambda: exchange.cancel(SYMBOL, client_id(OrderRole.STOP_LOSS)), 1),   # -2011
        (lambda: exchange.open_orders(SYMBOL), 2),       # openOrders + openAlgoOrders
        (lambda: exchange.position(SYMBOL), 1),
        (lambda: exchange.balance(), 1),
        (lambda: exchange.fills(SYMBOL, since), 1),
        (lambda: exchange.klines(SYMBOL, "1m", limit=5), 1),
        (lambda: exchange.book_ticker(SYMBOL), 1),
        (lambda: exchange.funding_rate(SYMBOL), 1),
        (lambda: exchange.set_leverage(SYMBOL, 3), 1),
    ]
    for call, expected in calls:
        before = len(fake.request_log)
        await call()
        assert len(fake.request_log) - before == expected


def test_fake_control_api_is_usable_without_a_running_loop():
    fake = FakeBinance()
    fake.inject_fault("/fapi/v1/order", code=-2019, times=3)
    assert fake.faults[0].method is None and fake.faults[0].times == 3
    assert fake.faults[0].http_status == 400

"""A 418/429 whose Retry-After is absurd or malformed still opens the circuit.

Binance (general info, LIMITS): "A Retry-After header is sent with a 418 or 429 responses and
will give the number of seconds required to wait", and "IP bans are tracked and scale in
duration for repeat offenders, from 2 minutes to 3 days". Found by review9
(test_rv9_absurd_retry_after.py): a 418 with Retry-After 1e12 or 1e15 (a proxy's, a bug's)
raised OverflowError out of `RequestGate._open_circuit` instead of the ExchangeError: the
circuit stayed shut, nothing was saved, and the next try went out inside the ban. Now a
Retry-After is cut to 3 days before it becomes a time; one that is not a number of seconds
is read as none (the gate's default: the shortest ban for a 418, a minute for a 429).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL
from trader.clock import ManualClock
from trader.engine_setup import build_engine, start_exchange
from trader.exchange.base import LONGEST_BAN, CircuitOpen, ExchangeError
from trader.exchange.binance_codec import error_from_answer
from trader.exchange.gate import DEFAULT_BAN_SECONDS, DEFAULT_RETRY_AFTER, RequestGate
from trader.exchange.ratelimit import RateLimiter

BANNED = "Way too many requests; IP banned until 1700000000000."


def _gate(clock: ManualClock) -> RequestGate:
    async def resync() -> None:
        return None
    return RequestGate(clock, RateLimiter(), resync=resync)


async def _answered(gate: RequestGate, error: ExchangeError) -> None:
    async def request() -> None:
        raise error
    with pytest.raises(ExchangeError):
        await gate.send("server time", request)


@pytest.mark.parametrize("seconds", [1e8, 1e12, 1e15])
async def test_an_absurd_retry_after_opens_the_circuit_for_binances_longest_ban(tmp_path,
                                                                                seconds):
    """Through python-binance and the fake: the 418 opens the circuit (3 days, not an
    OverflowError), and the next call is refused locally, nothing sent."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        engine, close = await build_engine(settings_for(fake, db_path=tmp_path / "a.db"),
                                           start=False)
        try:
            fake.inject_fault("/fapi/v1/time", http_status=418, code=-1003, retry_after=seconds)
            with pytest.raises(ExchangeError) as answered:
                await start_exchange(engine.exchange, engine.settings)
            assert not isinstance(answered.value, CircuitOpen)
            circuit, now = engine.exchange.circuit(), engine.clock.now()
            assert circuit.is_open(now) and circuit.open_until is not None
            assert now + LONGEST_BAN - timedelta(seconds=5) <= circuit.open_until \
                <= now + LONGEST_BAN
            sent = len(fake.request_log)
            with pytest.raises(CircuitOpen):
                await start_exchange(engine.exchange, engine.settings)
            assert len(fake.request_log) == sent, "a request went out inside the ban"
        finally:
            await close()


async def test_an_error_built_elsewhere_with_a_huge_retry_after_does_not_overflow_the_gate():
    clock = ManualClock(datetime(2026, 12, 2, 7, 0, tzinfo=UTC))
    gate = _gate(clock)
    await _answered(gate, ExchangeError(-1003, BANNED, 418, retry_after=1e15))
    assert gate.circuit().open_until == clock.now() + LONGEST_BAN


@pytest.mark.parametrize("header", ["soon", "", "nan", "-5",
                                    "Wed, 21 Oct 2026 07:28:00 GMT"])
@pytest.mark.parametrize(("status", "default"), [(418, DEFAULT_BAN_SECONDS),
                                                 (429, DEFAULT_RETRY_AFTER)])
async def test_a_malformed_retry_after_is_read_as_a_missing_one(header, status, default):
    """Not a number of seconds (an HTTP-date is RFC 9110's other form; Binance sends
    seconds): the gate waits its default and says no Retry-After was given."""
    error = error_from_answer(status, -1003, BANNED, header, sending=False)
    assert isinstance(error, ExchangeError) and error.retry_after is None
    clock = ManualClock(datetime(2026, 12, 2, 7, 0, tzinfo=UTC))
    gate = _gate(clock)
    await _answered(gate, error)
    circuit = gate.circuit()
    assert circuit.open_until == clock.now() + timedelta(seconds=default)
    assert not circuit.told


@pytest.mark.parametrize("header", ["120", "0.5", "259200"])
async def test_negative_a_retry_after_up_to_three_days_is_waited_as_given(header):
    error = error_from_answer(418, -1003, BANNED, header, sending=False)
    assert isinstance(error, ExchangeError) and error.retry_after == float(header)
    clock = ManualClock(datetime(2026, 12, 2, 7, 0, tzinfo=UTC))
    gate = _gate(clock)
    await _answered(gate, error)
    assert gate.circuit().open_until == clock.now() + timedelta(seconds=float(header))
    assert gate.circuit().told

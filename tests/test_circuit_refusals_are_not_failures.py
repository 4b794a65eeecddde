"""A request our own gate refuses inside a Retry-After (exchange/gate.py, CircuitOpen) is what
the circuit is for: logged once per circuit, not as an ERROR on every tick, and not counted
as an API failure (nothing reached Binance). The 429/418 answer that opened the circuit, and
any other exchange trouble, still counts.

Found by review5 (exp_commands_during_ban.py, a 418 with Retry-After 60 s): an `ERROR ...
failed what=candle feed ... not sent: API circuit open` line every 2 s filled /logs, and the
agent's own refused requests tripped the API breaker ("5 API failures in a row").

The refusals come from the real gate (the Binance adapter against the fake server); the
boundary that meets them is the engine's (trader/containment.py).
"""

from datetime import UTC, datetime, timedelta

import pytest

from tests.engine_world import SYMBOL, make_world
from tests.fakes.binance_harness import started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.log_capture import logged
from trader.clock import ManualClock
from trader.exchange.base import ExchangeError
from trader.exchange.gate import RetryPolicy
from trader.guard_state import API_BREAKER

FAST = RetryPolicy(attempts=2, initial=0.01, cap=0.05)


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


async def banned(fake, exchange, engine) -> None:
    """A 418 with Retry-After 40 s on a position read, met inside the engine's boundary."""
    fake.inject_fault("GET /fapi/v3/positionRisk", code=-1003, http_status=418, retry_after=40)
    await engine.contained(f"tick {SYMBOL}", exchange.position(SYMBOL), SYMBOL)


async def test_refusals_inside_a_ban_are_logged_once_and_are_no_api_failures(
        fake, exchange, clock, tmp_path):
    world = await make_world(tmp_path)
    engine = world.engine
    with logged("WARNING") as lines:
        await banned(fake, exchange, engine)
        for _ in range(10):                      # the candle feed, every 2 s of the ban
            clock.advance(timedelta(seconds=2))
            await engine.contained("candle feed", exchange.klines(SYMBOL, "1m", limit=5))
    assert engine.guard_state.api_failures == 1, "only the 418 that opened the circuit"
    assert API_BREAKER not in engine.guard_state.breakers
    assert not [line for line in lines if line.startswith("failed what=candle feed")], lines
    said = [line for line in lines if "circuit is open what=candle feed" in line]
    assert len(said) == 1, lines
    assert engine.last_error is not None and "IP ban" in engine.last_error   # /status


async def test_the_next_circuit_is_logged_again(fake, exchange, clock, tmp_path):
    world = await make_world(tmp_path)
    engine = world.engine
    with logged("WARNING") as lines:
        await banned(fake, exchange, engine)
        await engine.contained("candle feed", exchange.klines(SYMBOL, "1m", limit=5))
        clock.advance(timedelta(seconds=41))
        await banned(fake, exchange, engine)
        await engine.contained("candle feed", exchange.klines(SYMBOL, "1m", limit=5))
    assert len([line for line in lines if "circuit is open what=candle feed" in line]) == 2


async def test_exchange_failures_still_trip_the_api_breaker(tmp_path):
    """Negative: answers Binance did give (errors, no answer) count as before."""
    world = await make_world(tmp_path)

    async def failing() -> None:
        raise ExchangeError(-1001, "Internal error; unable to process your request.", 503)

    for _ in range(5):
        await world.engine.contained("candle feed", failing())
    assert API_BREAKER in world.engine.guard_state.breakers

"""A user-data stream that goes silent without closing is not trusted for more than
TRADEBOT_STREAM_VERIFY_SECONDS while a position is open (trader/exchange_view.py): the
open orders are read over REST on that period whatever the stream says, so a stop cancelled
by hand meanwhile is replaced within the period and a tick, not at the 180 s silence check
or the 45 s ping timeout. A healthy stream costs only those reads (the REST budget), and a
read refused with Retry-After sends nothing more inside the window.

Binance pushes listenKeyExpired when a key in a connection expires ("This event will be
received only when a valid listenKey in connection got expired": https://developers.
binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-User-Data-Stream-
Expired) and answers a keepalive PUT of a gone key with -1125 ("This listenKey does not
exist."). The docs do not say what a connection whose event never came looks like, so both
are played: the event (tests of the user stream) and its absence here (a silent key; all
sockets frozen).

Through the real python-binance client against the fake Binance, with the engine's own
loop running (tests/test_binance_protection.py's `running_agent`).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import PRICE, SYMBOL, live_stops, running_agent

VERIFY_SECONDS = 1.0
TICK_SECONDS = 0.5
# the period, the tick that notices it is due, and the snapshot + probe + placement
BOUND = VERIFY_SECONDS + TICK_SECONDS + 1.0


async def silent_listen_key(fake: FakeBinance) -> None:
    """Expired without listenKeyExpired: the socket stays open, answers pings, says nothing."""
    await fake.expire_listen_key(silent=True)


async def frozen_streams(fake: FakeBinance) -> None:
    """Half-open sockets: nothing sent, pings unanswered (noticed after the ping timeout)."""
    fake.freeze_streams()


@asynccontextmanager
async def quotes_pushed(fake: FakeBinance) -> AsyncIterator[None]:
    """A live market: a price a tick apart every 0.2 s (pushed on the book-ticker and mark
    streams), far from the stop and the target, so the tick needs no book over REST."""
    async def wiggle() -> None:
        for step in range(10_000):
            await fake.move_price(SYMBOL, PRICE + Decimal("0.1") * (step % 2))
            await asyncio.sleep(0.2)
    task = asyncio.create_task(wiggle())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def stop_back_after(fake: FakeBinance, stop_id: str, within: float) -> float | None:
    """Seconds from cancelling `stop_id` by hand until another stop is live; None if none
    within `within`."""
    await fake.cancel_order_by_hand(SYMBOL, stop_id)
    cancelled = time.monotonic()

    async def replaced() -> bool:
        return any(o.client_id != stop_id for o in await live_stops(fake))
    while time.monotonic() - cancelled < within:
        if await replaced():
            return time.monotonic() - cancelled
        await asyncio.sleep(0.05)
    return None


@pytest.mark.parametrize("silence", [silent_listen_key, frozen_streams])
async def test_a_stop_cancelled_by_hand_on_a_silent_stream_is_back_within_the_period(
        tmp_path, silence: Callable[[FakeBinance], Awaitable[None]]):
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, tick=TICK_SECONDS,
                          stream_verify_seconds=VERIFY_SECONDS) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        await silence(fake)
        await asyncio.sleep(0.2)
        assert engine.exchange.streaming, "the stream must still look healthy (the case)"
        naked = await stop_back_after(fake, stop_id, within=BOUND + 5.0)
        assert naked is not None and naked < BOUND, f"without a stop for {naked} s"
        assert len(await live_stops(fake)) == 1
        assert engine.view.stream_misses >= 1


async def test_a_change_the_stream_missed_has_its_listen_key_checked_at_once(tmp_path):
    """The check that found the stream wrong has the key checked with one PUT: -1125 ->
    a new key and a reconnect now, not at the 180 s silence check; the next stop cancelled
    by hand is back at stream speed."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, tick=TICK_SECONDS,
                          stream_verify_seconds=VERIFY_SECONDS) as engine:
        user = engine.exchange.streams.user
        await fake.expire_listen_key(silent=True)
        await asyncio.sleep(0.2)
        assert await stop_back_after(fake, engine.positions[SYMBOL].stop.order.client_id,
                                     within=BOUND + 5.0) is not None
        assert await eventually(lambda: user.listen_keys_created == 2 and user.live, 3.0), \
            "the stream that missed the cancel still runs on its dead key"
        await asyncio.sleep(0.5)
        naked = await stop_back_after(fake, engine.positions[SYMBOL].stop.order.client_id,
                                      within=BOUND + 5.0)
        assert naked is not None and naked < 1.0, f"without a stop for {naked} s"


async def test_a_healthy_stream_costs_only_the_periodic_open_order_reads(tmp_path):
    """The negative: with the stream healthy nothing else is read (no position, no probe, no
    book), the open orders at most once per period, and no read ever finds the stream
    wrong (no snapshot follows)."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, tick=TICK_SECONDS,
                          stream_verify_seconds=VERIFY_SECONDS) as engine, \
            quotes_pushed(fake):
        await asyncio.sleep(VERIFY_SECONDS)            # past the boot's own reads
        first, started = len(fake.request_log), time.monotonic()
        misses, ticks = engine.view.stream_misses, engine.ticks
        await asyncio.sleep(4 * VERIFY_SECONDS)
        window = time.monotonic() - started
        sent = [f"{r.method} {r.path}" for r in fake.request_log[first:]]
        periods = int(window / VERIFY_SECONDS) + 1
        assert engine.ticks - ticks >= 6, "the loop did not tick"
        assert set(sent) <= {"GET /fapi/v1/openOrders", "GET /fapi/v1/openAlgoOrders"}, sent
        assert 1 <= sent.count("GET /fapi/v1/openAlgoOrders") <= periods, sent
        assert sent.count("GET /fapi/v1/openOrders") == sent.count("GET /fapi/v1/openAlgoOrders")
        assert engine.view.stream_misses == misses      # so no listen key PUT either


async def test_a_check_refused_with_retry_after_sends_nothing_inside_the_window(tmp_path):
    """The check's read answered 429 Retry-After: nothing at all is sent until it has
    passed (exchange/gate.py), the tick goes on with the tracker's view, and the check after
    the window still finds the stop cancelled meanwhile."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, tick=TICK_SECONDS,
                          stream_verify_seconds=VERIFY_SECONDS) as engine:
        stop_id = engine.positions[SYMBOL].stop.order.client_id
        await fake.expire_listen_key(silent=True)
        fake.inject_fault("GET /fapi/v1/openAlgoOrders", code=-1003, http_status=429,
                          retry_after=2)
        assert await eventually(lambda: engine.exchange.circuit().open_until is not None, 5.0)
        naked = await stop_back_after(fake, stop_id, within=BOUND + 8.0)
        assert naked is not None, "the stop never came back after the window"
        assert not fake.retry_after_watch.violations
        assert len(await live_stops(fake)) == 1

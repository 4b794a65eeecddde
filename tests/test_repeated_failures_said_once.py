"""A failure that repeats for as long as it lasts is said once per outage (trader/
outage_log.py), as a stream's outage is (trader/exchange/websocket_stream.py StreamHealth):
a WARNING when it starts, an INFO with how long it lasted when it ends.

- No mark to be had (no mark pushed, GET /fapi/v1/premiumIndex failing): the WARNING "no
  mark price this tick" came on every tick for every symbol.
- An IP ban ("from 2 minutes to 3 days", USD-M General Info, LIMITS) on a quiet account:
  the listenKey PUT is refused locally (circuit open) at every silence check (180 s) and
  every keepalive retry (<= 60 s): "keepalive failed ... circuit open" and the silence
  check's two INFO lines each time, thousands of lines over a 3-day ban.
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.log_capture import logged
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from tests.test_mark_is_binances_mark import (
    PREMIUM_INDEX,
    held,
    market_stream_down,
    short_quote_age,  # noqa: F401  (a fixture)
)
from tests.test_silence_check_inside_ban import QUIET
from trader.clock import ManualClock
from trader.exchange.base import CircuitOpen, ExchangeError, ExchangeEvent, UnknownOutcome
from trader.exchange.binance_user_stream import UserDataStream
from trader.exchange.websocket_stream import BoundedQueue

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BANNED = CircuitOpen(259_000.0, "IP banned (HTTP 418, code -1003)", http_status=418)


# --- no mark to be had --------------------------------------------------------------------

async def test_no_mark_to_be_had_is_said_once_and_its_end_with_how_long_it_lasted(
        tmp_path, short_quote_age):  # noqa: F811
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True) as engine:
        await market_stream_down(fake, engine)
        fake.inject_fault(PREMIUM_INDEX, code=-1000, http_status=400, times=10_000,
                          msg="An unknown error occured while processing the request.")
        with logged("DEBUG", "no mark price this tick") as every, \
                logged("WARNING", "no mark price this tick") as warned:
            await asyncio.sleep(4.0)               # 8 ticks of 0.5 s
        assert len(every) >= 4, every              # each tick still tries, and says so in DEBUG
        assert len(warned) == 1, warned
        assert f"symbol={SYMBOL}" in warned[0] and "nothing is judged" in warned[0]
        with logged("INFO", "mark price read again") as back, \
                logged("WARNING", "no mark price this tick") as again:
            fake.clear_faults()
            assert await eventually(lambda: back, 3.0), "the end of the gap was not said"
            await asyncio.sleep(1.0)
        [line] = back
        assert f"symbol={SYMBOL}" in line and " after " in line and " s (" in line, line
        assert again == []
        assert held(fake) == Decimal("0.100")
        assert not engine.view.no_mark.failing(SYMBOL)


# --- the listenKey's PUT inside an IP ban -------------------------------------------------

class Answers:
    """A ListenKeyApi whose PUTs give `answers` in turn (raises the exceptions)."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)

    async def create_listen_key(self) -> str:
        raise AssertionError("no key is created here")

    async def keep_alive_listen_key(self, listen_key: str) -> str | None:
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer if isinstance(answer, str) else None


def stream_for(api: Answers, session: aiohttp.ClientSession,
               clock: ManualClock) -> UserDataStream:
    events: BoundedQueue[ExchangeEvent] = BoundedQueue("events", 10)
    stream = UserDataStream("ws://unused/", api, session, clock,
                            replace(QUIET, user_silence_seconds=180.0), events)
    stream.listen_key = "key-1"
    stream.health.up = True
    return stream


async def test_a_ban_long_enough_for_many_silence_checks_and_keepalives_says_so_once():
    """A quiet account in a ban: 20 silence checks and 20 keepalive retries, all refused
    locally: one WARNING, the silence check's INFO lines once; the first PUT answered
    after it says the outage ended and how long it lasted. The socket stays all along."""
    clock = ManualClock(T0)
    async with aiohttp.ClientSession() as session:
        stream = stream_for(Answers(*[BANNED] * 40, "key-1"), session, clock)
        with logged("INFO", "stream=user-data") as lines:
            for _ in range(20):
                assert await stream._on_silence() is None
                clock.advance(60)
                assert await stream._keep_alive_once() is False
                clock.advance(120)
            assert await stream._keep_alive_once() is True
        [warning] = [line for line in lines if "keepalive failed" in line]
        assert "circuit open" in warning, warning
        assert sum("checking the listen key" in line for line in lines) == 1, lines
        assert sum("keeping the stream" in line for line in lines) == 1, lines
        [ended] = [line for line in lines if "keepalive answered again" in line]
        assert "after 1 h (40 failed)" in ended, ended
        assert stream.listen_key == "key-1" and stream.health.up
        assert len(lines) == 4, lines


async def test_a_second_ban_after_an_answer_is_said_again():
    clock = ManualClock(T0)
    async with aiohttp.ClientSession() as session:
        stream = stream_for(Answers(BANNED, BANNED, "key-1", UnknownOutcome("timeout"),
                                    "key-1"), session, clock)
        with logged("WARNING", "stream=user-data keepalive") as warned:
            for _ in range(5):
                await stream._keep_alive_once()
                clock.advance(30)
        assert len(warned) == 2 and "outcome unknown" in warned[1], warned


@pytest.mark.parametrize("gone", [ExchangeError(-1125, "This listenKey does not exist."),
                                  "key-2"])
async def test_a_key_found_gone_is_said_and_acted_on_each_time_as_before(gone):
    """Negative: a definite "gone" (-1125, another key extended) after refused PUTs is a
    WARNING of its own and closes the socket, as before."""
    clock = ManualClock(T0)
    async with aiohttp.ClientSession() as session:
        stream = stream_for(Answers(BANNED, gone), session, clock)
        await stream._check_listen_key("key-1")
        clock.advance(300)
        with logged("INFO", "stream=user-data") as lines:
            reason = await stream._on_silence()
        assert reason is not None and stream.listen_key is None and not stream.health.up
        assert any("gone (-1125)" in line or "another listen key" in line
                   for line in lines), lines


async def test_a_quiet_account_outside_a_ban_still_says_each_silence_check():
    """Negative: the key answered at each check: each check is said, as before (INFO), and
    no outage is."""
    clock = ManualClock(T0)
    async with aiohttp.ClientSession() as session:
        stream = stream_for(Answers("key-1", "key-1", "key-1"), session, clock)
        with logged("INFO", "stream=user-data") as lines:
            for _ in range(3):
                assert await stream._on_silence() is None
                clock.advance(180)
        assert lines == ["stream=user-data no event for 180.0s, checking the listen key"] * 3

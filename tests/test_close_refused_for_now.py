"""A market close Binance refuses for a reason that waiting cures is sent again on a capped
backoff for as long as the refusal lasts, and only refusals that waiting does not cure count
towards the three closes of the give-up.

Binance documents the refusals "for now" as failures to retry: HTTP 503 "Service
Unavailable." ("Service temporarily unavailable; 100% failure", "Retry with exponential
backoff") and -1008 ("System overload; 100% failure", "Retry with backoff"; the Error Codes
page's SERVER_BUSY "Please try again in a few minutes"): General Info, "HTTP 503 Status:
Message Variants & Handling", https://developers.binance.com/docs/derivatives/usds-margined-
futures/general-info. Before the fix such a close was given up after three closes in ~1.5 s
("failed, send /close again"; a time exit's close dropped, the position back to PROTECTED).

Through the real engine and python-binance against the fake Binance; the engine's clock is
a ManualClock moved 2 s a tick (the live loop's period)."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.format import format_result
from tests.test_close_during_an_outage import (
    ORDER,
    alerts,
    given_up,
    market_closes,
    outage_agent,
)
from tests.test_first_command_after_boot import SYMBOL
from trader.clock import ManualClock
from trader.commands import CommandKind
from trader.domain import CloseReason
from trader.engine import Engine
from trader.position import PositionState

CLOSES = {"type": "MARKET", "reduceOnly": "true"}
TICK = timedelta(seconds=2)                   # TRADEBOT_TICK_SECONDS' default


def refused_for_long(engine: Engine) -> list[str]:
    """The one alert of a close refused for over a minute."""
    return [text for text in alerts(engine, "PROTECTION") if "refuses" in text]


async def ticks_for(engine: Engine, clock: ManualClock, span: timedelta,
                    reason: CloseReason) -> None:
    """The live loop's ticks over `span`: the close stays under way with its reason."""
    end = clock.now() + span
    while clock.now() < end:
        clock.advance(TICK)
        await engine.tick()
        position = engine.positions[SYMBOL]
        assert position.state is PositionState.CLOSING, position.state
        assert position.closing_reason is reason
    assert not given_up(engine)


async def ticks_until_closed(engine: Engine, clock: ManualClock, ticks: int = 20) -> bool:
    for _ in range(ticks):
        clock.advance(TICK)
        await engine.tick()
        if SYMBOL not in engine.positions:
            return True
    return False


def closed_with(engine: Engine) -> list[CloseReason | None]:
    return [p.close_reason for p in engine.store.closed_positions()]


async def test_a_close_during_a_service_unavailable_outage_is_sent_again_until_it_ends(
        tmp_path):
    clock = ManualClock(datetime.now(UTC))
    async with outage_agent(tmp_path, clock) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.outage("error_503_service_unavailable")
        result = await agent.run(CommandKind.CLOSE)
        reply = format_result(CommandKind.CLOSE, result)
        assert not result.ok and result.waiting, reply
        assert reply.startswith("⏳ <b>Close: waiting</b>"), reply
        assert "⏳ waiting: Binance refuses for now (503 Service Unavailable); retrying" \
            in reply, reply
        assert "failed" not in reply and "send /close" not in reply, reply

        await ticks_for(engine, clock, timedelta(seconds=20), CloseReason.COMMAND)
        sent = market_closes(fake)
        # 0, 0.5, 1.5 s (in the command), then on the backoff: ~4, 8, 16 s; not every tick
        assert 5 <= len(sent) <= 7, sent
        assert len(set(sent)) == len(sent), sent          # each under its own id

        fake.clear_faults()
        assert await ticks_until_closed(engine, clock), engine.positions.get(SYMBOL)
        assert fake.sim.position(SYMBOL).quantity == 0
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")
        assert not given_up(engine) and not refused_for_long(engine)
        assert closed_with(engine) == [CloseReason.COMMAND]


async def test_a_time_exit_refused_by_a_service_unavailable_outage_closes_once_it_ends(
        tmp_path):
    clock = ManualClock(datetime.now(UTC))
    async with outage_agent(tmp_path, clock, time_in_trade_minutes=40) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.outage("error_503_service_unavailable")
        clock.advance(timedelta(minutes=41))
        await engine.tick()                               # the time exit, refused
        assert market_closes(fake)
        await ticks_for(engine, clock, timedelta(seconds=20), CloseReason.TIME_EXIT)

        fake.clear_faults()
        assert await ticks_until_closed(engine, clock), engine.positions.get(SYMBOL)
        assert fake.sim.position(SYMBOL).quantity == 0
        assert closed_with(engine) == [CloseReason.TIME_EXIT]
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")


async def test_a_burst_of_server_busy_refusals_delays_the_close_and_counts_for_nothing(
        tmp_path):
    """-1008 five times on the closes (reads answer): the sixth close goes through."""
    clock = ManualClock(datetime.now(UTC))
    async with outage_agent(tmp_path, clock) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.answer_documented(ORDER, "error_server_busy", times=5, only=CLOSES)
        result = await agent.run(CommandKind.CLOSE)
        reply = format_result(CommandKind.CLOSE, result)
        assert not result.ok and result.waiting, reply
        assert "Binance refuses for now (-1008" in reply and "retrying" in reply, reply
        assert len(market_closes(fake)) == 3, market_closes(fake)

        assert await ticks_until_closed(engine, clock), engine.positions.get(SYMBOL)
        assert len(market_closes(fake)) == 6, market_closes(fake)
        assert fake.sim.position(SYMBOL).quantity == 0
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")
        assert not given_up(engine)


async def test_a_close_refused_for_over_a_minute_is_said_once_not_at_every_retry(tmp_path):
    clock = ManualClock(datetime.now(UTC))
    async with outage_agent(tmp_path, clock) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.outage("error_503_service_unavailable")
        await agent.run(CommandKind.CLOSE)
        await ticks_for(engine, clock, timedelta(seconds=150), CloseReason.COMMAND)
        [said] = refused_for_long(engine)
        assert "503 Service Unavailable" in said and "stop-loss" in said, said
        # on the backoff's cap (10 s), not at every tick (2 s)
        assert len(market_closes(fake)) <= 3 + 3 + 15, market_closes(fake)

        fake.clear_faults()
        assert await ticks_until_closed(engine, clock)
        assert len(refused_for_long(engine)) == 1
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")


@pytest.mark.parametrize(("code", "message"), [
    (-2022, "ReduceOnly Order is rejected."),
    (-4164, "Order's notional must be no smaller than 5.0 (unless you choose reduce only)."),
    (-2019, "Margin is insufficient."),
])
async def test_a_close_refused_for_good_is_still_given_up_after_three(tmp_path, code,
                                                                      message):
    """The negative: a refusal waiting does not cure (Error Codes page: the order as it
    stands) counts: three closes on the refusals' schedule, then the give-up."""
    async with outage_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.inject_fault(ORDER, code, 400, msg=message, times=3, only=CLOSES)
        result = await agent.run(CommandKind.CLOSE)
        reply = format_result(CommandKind.CLOSE, result)
        assert reply.startswith("⚠️ <b>Close: failed</b>"), reply
        assert "after 3 market closes" in reply and "send /close BTCUSDT again" in reply, reply
        assert "refuses for now" not in reply, reply
        assert len(set(market_closes(fake))) == 3, market_closes(fake)
        assert len(given_up(engine)) == 1
        assert engine.positions[SYMBOL].state is not PositionState.CLOSING

"""The market exits that share /close's path (trader/market_exit.py through the state
machine's CLOSING) while Binance's REST API answers every route HTTP 503 "Unknown error"
(execution status UNKNOWN: https://developers.binance.com/docs/derivatives/usds-margined-
futures/general-info): the time exit, the close of a stop stuck in TRIGGERING and
/shutdown's flatten. Each close whose answer was lost waits: nothing is sent again blind,
no tick of the outage counts as a close attempt, the position stays CLOSING with its reason
(no "still open after 3 market closes" give-up) and, once Binance answers and the lost close
is known never placed, one new close goes and the close is recorded with its reason.

Before the fix the tick's probe of the lost close raised, each such tick counted as a close
sent, and the third gave the close up (ATTACHING, its reason cleared, a PROTECTION alert);
/shutdown's flatten answered "failed ... send /close again" (tests/test_close_during_an_
outage.py tells the /close case)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.format import format_result
from tests.test_close_during_an_outage import (
    ORDER,
    after_the_outage,
    alerts,
    market_closes,
    outage_agent,
    outage_ticks,
    ticked_until,
)
from tests.test_first_command_after_boot import SYMBOL
from tests.test_stop_stuck_triggering import stuck_stop
from trader.clock import ManualClock
from trader.commands import Command, CommandKind
from trader.domain import CloseReason

LOST = {"type": "MARKET", "reduceOnly": "true"}      # the close's request, answered 503


def closed_with(engine) -> list[CloseReason | None]:  # type: ignore[no-untyped-def]
    return [p.close_reason for p in engine.store.closed_positions()]


async def test_a_time_exit_whose_close_is_lost_in_an_outage_waits_then_closes(tmp_path):
    clock = ManualClock(datetime.now(UTC))
    async with outage_agent(tmp_path, clock, time_in_trade_minutes=40) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.outage()
        clock.advance(timedelta(minutes=41))
        await engine.tick()                        # the time exit: its close, answer lost
        [lost] = market_closes(fake)
        await outage_ticks(engine, CloseReason.TIME_EXIT)
        assert market_closes(fake) == [lost], "sent again blind during the outage"

        fake.clear_faults()
        clock.advance(timedelta(seconds=20))       # past recvWindow and the probe's grace
        assert await ticked_until(engine, lambda: SYMBOL not in engine.positions)
        assert len(market_closes(fake)) == 2 and fake.sim.position(SYMBOL).quantity == 0
        assert closed_with(engine) == [CloseReason.TIME_EXIT]
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")


async def test_the_close_of_a_stuck_stop_lost_in_an_outage_waits_then_closes(tmp_path,
                                                                             monkeypatch):
    async with outage_agent(tmp_path, trigger_grace_seconds=1) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.outage()
        await stuck_stop(fake, engine)
        assert await ticked_until(engine, lambda: bool(market_closes(fake)), 8.0)
        [lost] = market_closes(fake)
        await outage_ticks(engine, CloseReason.STOP_LOSS)
        assert market_closes(fake) == [lost], "sent again blind during the outage"

        await after_the_outage(fake, engine, monkeypatch)
        assert len(market_closes(fake)) == 2 and fake.sim.position(SYMBOL).quantity == 0
        assert closed_with(engine) == [CloseReason.STOP_LOSS]


async def test_a_shutdown_flatten_lost_in_an_outage_answers_waiting_then_closes(
        tmp_path, monkeypatch):
    async with outage_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.outage()
        result = await agent.controller.run(Command(
            CommandKind.SHUTDOWN, "tg:1:9", datetime.now(UTC), flatten=True, source="telegram"))
        reply = format_result(CommandKind.SHUTDOWN, result)
        assert not result.ok and result.waiting, reply
        assert reply.startswith("⏳ <b>Shutdown: waiting</b>"), reply
        assert "not known closed yet" in reply and "send /close" not in reply, reply
        assert "asleep" in reply, reply
        [lost] = market_closes(fake)
        await outage_ticks(engine, CloseReason.EMERGENCY)
        assert market_closes(fake) == [lost], "sent again blind during the outage"

        await after_the_outage(fake, engine, monkeypatch)
        assert len(market_closes(fake)) == 2 and fake.sim.position(SYMBOL).quantity == 0
        assert closed_with(engine) == [CloseReason.EMERGENCY]
        assert engine.guard_state.asleep


async def test_a_flatten_that_closes_in_the_outage_sends_one_close(tmp_path, monkeypatch):
    """The negative of the above: the flatten's close executed, its answer the 503: the
    stream tells the fill and nothing more is sent."""
    async with outage_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.answer_documented(ORDER, "error_503_unknown", execute=True, only=LOST)
        fake.outage()
        await agent.controller.run(Command(CommandKind.SHUTDOWN, "tg:1:9", datetime.now(UTC),
                                           flatten=True, source="telegram"))
        assert fake.sim.position(SYMBOL).quantity == Decimal(0)
        await after_the_outage(fake, engine, monkeypatch)
        assert len(market_closes(fake)) == 1
        assert closed_with(engine) == [CloseReason.EMERGENCY]

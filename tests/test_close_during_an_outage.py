"""/close while Binance's REST API fails as a whole: every route answers HTTP 503 "Unknown
error, please check your request or try again later.", which Binance documents as
execution status UNKNOWN (https://developers.binance.com/docs/derivatives/usds-margined-
futures/general-info, "HTTP 503 Status: Message Variants & Handling", A), while the streams
stay up. A close whose answer is unknown, or whose read-back cannot be read, waits: the
reply says "⏳ waiting" and what is known, nothing is sent again blind, a probe or a read
that fails is no close attempt, and the position stays CLOSING with its reason however long
the outage lasts; once Binance answers, the lost close is known (never placed: a new close
goes, under a new client id; filled: none goes), and the phone hears CLOSE once.

Found from outside (h-review15, s04 A): the reply said "⚠️ Close: failed ... send /close
BTCUSDT again", a PROTECTION alert 8 s later "still open (0.504) after 3 market closes"
though one close only was sent (each tick whose probe raised counted as one), then the close
was given up (ATTACHING, its reason cleared): when Binance answered again the lost close was
found never placed and nothing was sent; the position was still open a minute later.

Through the real engine and python-binance against the fake Binance, ticked by hand."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.format import format_result
from tests.fakes.binance_harness import eventually, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import (
    FAST_STREAMS,
    SYMBOL,
    Agent,
    market_up_to_now,
)
from trader import executor as executor_module
from trader.alerter import Alerter
from trader.clock import Clock, SystemClock
from trader.commands import CommandKind, CommandResult
from trader.control import Controller
from trader.domain import CloseReason
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.exchange.gate import RetryPolicy
from trader.market.live import ExchangeFeed
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

ORDER = "POST /fapi/v1/order"
FAST = RetryPolicy(attempts=3, initial=0.01, cap=0.02)    # a failing read fails in ~30 ms
OUTAGE_TICKS = 6             # twice the close attempts a give-up counts (Policy.flatten_attempts)
BOUND = 20.0


@asynccontextmanager
async def outage_agent(tmp_path: Path, clock: Clock | None = None, **env: Any
                       ) -> AsyncIterator[tuple[FakeBinance, Agent]]:
    """A fake Binance with its candles up to now and an agent booted on it with its
    user-data stream up, the gate's retries shortened (FAST); `clock`: the engine's."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        settings = settings_for(fake, db_path=tmp_path / "t.db", **env)
        exchange = BinanceExchange(settings, SystemClock(), stream_options=FAST_STREAMS,
                                   retry_policy=FAST)
        await exchange.start([SYMBOL], settings.leverage)
        store = TradeStore.open(settings.db_path)
        engine = Engine(settings, exchange, store, clock or SystemClock(), Alerter(store))
        try:
            await boot(engine)
            assert await eventually(lambda: exchange.streaming, timeout=5.0)
            agent = Agent(Controller(engine), ExchangeFeed(exchange, engine.symbols,
                                                           settings.interval))
            await agent.poll_feed()
            yield fake, agent
        finally:
            await exchange.close()
            store.close()


def market_closes(fake: FakeBinance) -> list[str]:
    """The client ids of the reduce-only market orders sent (the closes)."""
    return [r.params["newClientOrderId"] for r in fake.requests(ORDER)
            if r.params.get("type") == "MARKET" and r.params.get("reduceOnly") == "true"]


def alerts(engine: Engine, name: str) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(200) if a.name == name]


def given_up(engine: Engine) -> list[str]:
    """The alerts of a close given up ("still open (0.5) after 3 market closes; ...")."""
    return [text for name in ("PROTECTION", "POSITION_UNPROTECTED")
            for text in alerts(engine, name) if "market closes;" in text]


async def ticked_until(engine: Engine, condition: Callable[[], bool], bound: float = BOUND
                       ) -> bool:
    """A tick at a time (the live loop's) until `condition` holds, at most `bound` s."""
    deadline = asyncio.get_running_loop().time() + bound
    while asyncio.get_running_loop().time() < deadline:
        await engine.tick()
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


def assert_waiting(result: CommandResult) -> str:
    reply = format_result(CommandKind.CLOSE, result)
    assert not result.ok and result.waiting, reply
    assert reply.startswith("⏳ <b>Close: waiting</b>"), reply
    assert "failed" not in reply and "send /close" not in reply, reply
    return reply


async def outage_ticks(engine: Engine, closing_reason: CloseReason) -> None:
    """Ticks through the outage: nothing more is sent, nothing is given up."""
    for _ in range(OUTAGE_TICKS):
        await engine.tick()
        position = engine.positions[SYMBOL]
        assert position.state is PositionState.CLOSING, position.state
        assert position.closing_reason is closing_reason
    assert not given_up(engine)


async def after_the_outage(fake: FakeBinance, engine: Engine, monkeypatch) -> None:
    """Binance answers again, and the lost close can no longer land (past recvWindow and
    the probe's grace: set to the past instead of waited for)."""
    fake.clear_faults()
    monkeypatch.setattr(executor_module, "PROBE_GRACE", timedelta(seconds=-3600))
    assert await ticked_until(engine, lambda: SYMBOL not in engine.positions), \
        engine.positions.get(SYMBOL)


async def test_a_close_during_a_503_outage_waits_then_is_sent_again_once_known_not_placed(
        tmp_path, monkeypatch):
    async with outage_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.outage()
        for _ in range(2):                     # the agent meets the outage first
            await engine.tick()
        result = await agent.run(CommandKind.CLOSE)
        reply = assert_waiting(result)
        assert "could not be read back" in reply and "not known closed yet" in reply, reply
        [lost] = market_closes(fake)
        await outage_ticks(engine, CloseReason.COMMAND)
        assert market_closes(fake) == [lost], "sent again blind during the outage"

        await after_the_outage(fake, engine, monkeypatch)
        closes = market_closes(fake)
        assert len(closes) == 2 and closes[0] == lost and closes[1] != lost, closes
        assert fake.sim.position(SYMBOL).quantity == 0
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")
        assert not given_up(engine)


async def test_an_outage_that_starts_as_the_close_is_sent_loses_its_answer_and_waits(
        tmp_path, monkeypatch):
    """The close's request gets no answer at all (the connection dropped before it reached
    the matching engine: nothing placed), and from then on every route answers 503."""
    async with outage_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.inject_fault(ORDER, drop_connection=True, execute=False,
                          only={"type": "MARKET", "reduceOnly": "true"})
        fake.outage()
        result = await agent.run(CommandKind.CLOSE)
        assert_waiting(result)
        [lost] = market_closes(fake)
        await outage_ticks(engine, CloseReason.COMMAND)
        assert market_closes(fake) == [lost]

        await after_the_outage(fake, engine, monkeypatch)
        assert len(market_closes(fake)) == 2
        assert fake.sim.position(SYMBOL).quantity == 0
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")


async def test_a_close_that_landed_during_the_outage_is_not_sent_again(tmp_path,
                                                                       monkeypatch):
    """The close executed, its answer was the 503, and every read fails: the stream tells
    the fill, and no second close is ever sent."""
    async with outage_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.answer_documented(ORDER, "error_503_unknown", execute=True,
                               only={"type": "MARKET", "reduceOnly": "true"})
        fake.outage()
        result = await agent.run(CommandKind.CLOSE)
        assert_waiting(result)
        assert fake.sim.position(SYMBOL).quantity == 0
        for _ in range(OUTAGE_TICKS):
            await engine.tick()
        assert len(market_closes(fake)) == 1

        await after_the_outage(fake, engine, monkeypatch)
        assert len(market_closes(fake)) == 1, market_closes(fake)
        assert not given_up(engine)


async def test_a_close_taken_whose_read_back_fails_waits_for_the_stream_not_a_second_close(
        tmp_path):
    """Binance took the close (answered FILLED), then answers no read: the reply says the
    close was taken and what it left is not known yet; the stream tells the fill, and the
    next tick records the close. No second close."""
    async with outage_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        fake.outage(sparing=(ORDER,))
        result = await agent.run(CommandKind.CLOSE)
        reply = assert_waiting(result)
        assert "-&gt; done" in reply and "not known closed yet" in reply, reply
        assert fake.sim.position(SYMBOL).quantity == 0
        assert await ticked_until(engine, lambda: SYMBOL not in engine.positions)
        assert len(market_closes(fake)) == 1, market_closes(fake)
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")

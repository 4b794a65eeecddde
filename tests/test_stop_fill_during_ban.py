"""A stop that fills during an IP ban is closed from what the user-data stream told.

Binance bans an IP with HTTP 418 and Retry-After ("IP bans are tracked and scale in duration
for repeat offenders, from 2 minutes to 3 days", Binance's general info, LIMITS); nothing may
be sent until it ends (trader/exchange/gate.py). The stop filling meanwhile is told at once
by the user-data stream (ORDER_TRADE_UPDATE with the fill's price "L", fee "n" and realised
PnL "rp"; ACCOUNT_UPDATE with the position at 0). Found by review5 (exp_ban_stop_fills.py):
`Engine._tick` ticked no symbol while the circuit was open, so /status showed the closed
position open, PROTECTED, at a loss past its stop, /trades "no closed trades yet", and the
CLOSE came when the ban ended. Now terminal detection runs on the stream's view inside the
window (trader/engine.py `_heard_in_ban`) and the close is recorded from the stream
(trader/closing.py `_told_by_stream`), with no request.
"""

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import (
    FAST_STREAMS,
    SYMBOL,
    Agent,
    streaming_agent,
)
from trader.commands import CommandKind
from trader.domain import CloseReason
from trader.engine import Engine
from trader.exchange.base import ExchangeError, ExchangeEvent, OrderUpdate
from trader.position import PositionState
from trader.startup import reconcile

STREAMS = FAST_STREAMS   # (other test files import it from here)


async def banned(agent: Agent, fake: FakeBinance, seconds: float) -> int:
    """A read answered 418 with Retry-After `seconds`: the circuit opens. The fake's request
    count then (nothing more may reach it until the window ends)."""
    engine = agent.engine
    fake.inject_fault("GET /fapi/v1/openOrders", http_status=418, code=-1003,
                      retry_after=seconds)
    with pytest.raises(ExchangeError):
        await engine.executor.read(engine.exchange.open_orders, SYMBOL)
    assert engine.executor.circuit_open()
    return len(fake.request_log)


async def ticks(engine: Engine, count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0.2)
        await engine.tick()


def alerts(engine: Engine, name: str) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(200) if a.name == name]


async def long_open(agent: Agent) -> Decimal:
    result = await agent.run(CommandKind.LONG)
    assert result.ok, result.lines
    await agent.engine.tick()
    return agent.engine.positions[SYMBOL].entry_price


async def test_a_stop_filled_during_an_ip_ban_is_seen_from_the_stream(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        key = engine.positions[SYMBOL].key
        sent = await banned(agent, fake, 120)
        # the price falls through the stop: it fills, the stream says so
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        assert fake.sim.position(SYMBOL).quantity == 0
        await ticks(engine)
        status = (await agent.run(CommandKind.STATUS)).status
        assert status is not None
        shown = [(p.symbol, p.state, str(p.quantity)) for p in status.positions]
        assert shown == [], (
            "the stop filled about 1 s ago (the stream said so); /status still shows "
            f"{shown} during the ban; positions: {engine.positions}")
        # recorded from the stream: the sim's own fills give the same result
        [record] = engine.store.closed_positions()
        assert record.key == key and record.close_reason is CloseReason.STOP_LOSS
        fills = fake.sim.fills(SYMBOL)
        assert record.exit_price == next(f.price for f in fills if f.side.value == "SELL")
        assert record.realized_pnl == sum(f.realized_pnl for f in fills) < 0
        assert record.fees == sum(f.fee for f in fills) > 0
        [close] = alerts(engine, "CLOSE")
        assert "LONG closed (STOP_LOSS) at " in close and "PnL -" in close, close
        assert "unknown" not in close, close
        trades = (await agent.run(CommandKind.TRADES)).trades
        assert trades is not None and [t.reason for t in trades] == ["STOP_LOSS"]
        # nothing reached the exchange inside Retry-After
        assert len(fake.request_log) == sent, fake.request_log[sent:]
        assert fake.retry_after_watch.violations == []


async def test_a_position_whose_stop_did_not_fill_stays_as_it_was_during_the_ban(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        before = engine.positions[SYMBOL]
        sent = await banned(agent, fake, 120)
        await fake.move_price(SYMBOL, entry * Decimal("0.999"))    # above the stop
        await ticks(engine)
        assert engine.positions[SYMBOL] is before
        assert before.state is PositionState.PROTECTED
        assert engine.store.closed_positions() == [] and alerts(engine, "CLOSE") == []
        status = (await agent.run(CommandKind.STATUS)).status
        assert status is not None and [p.symbol for p in status.positions] == [SYMBOL]
        assert len(fake.request_log) == sent, fake.request_log[sent:]


async def test_after_the_ban_the_close_is_neither_recorded_nor_announced_again(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        sent = await banned(agent, fake, 2)
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await ticks(engine, 3)
        [during] = engine.store.closed_positions()
        assert len(fake.request_log) == sent
        assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await ticks(engine, 3)
        await reconcile(engine)           # the live loop's periodic one, fills read again
        await ticks(engine, 2)
        assert engine.store.closed_positions() == [during]
        assert len(alerts(engine, "CLOSE")) == 1, alerts(engine, "CLOSE")
        assert SYMBOL not in engine.positions
        assert fake.sim.open_orders(SYMBOL) == []
        assert fake.retry_after_watch.violations == []


def dropping_fills(engine: Engine) -> Callable[[], list[ExchangeEvent]]:
    """The exchange's `drain_events` without the stream's fills: the ORDER_TRADE_UPDATE of
    the stop's trade not heard (yet) when its ACCOUNT_UPDATE is."""
    drain = engine.exchange.drain_events

    def drained() -> list[ExchangeEvent]:
        return [e for e in drain() if not (isinstance(e, OrderUpdate) and e.fill is not None)]
    return drained


async def test_a_close_without_its_fill_is_recorded_unknown_then_completed_after_the_ban(
        tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        sent = await banned(agent, fake, 2)
        engine.exchange.drain_events = dropping_fills(engine)   # type: ignore[method-assign]
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await ticks(engine, 3)
        [during] = engine.store.closed_positions()
        assert during.exit_price is None and during.realized_pnl == 0
        [close] = alerts(engine, "CLOSE")
        assert "exit price and PnL unknown" in close and "once requests to the " \
            "exchange resume" in close, close
        assert len(fake.request_log) == sent
        assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await ticks(engine, 2)
        await reconcile(engine)           # the live loop's periodic one
        [final] = engine.store.closed_positions()
        assert final.key == during.key and final.exit_price is not None
        assert final.close_reason is CloseReason.STOP_LOSS
        assert final.realized_pnl == sum(f.realized_pnl for f in fake.sim.fills(SYMBOL))
        read = [t for t in alerts(engine, "CLOSE") if "is now read" in t]
        assert len(read) == 1 and "(STOP_LOSS) is now read" in read[0], read
        await reconcile(engine)
        assert len(alerts(engine, "CLOSE")) == 2


async def test_an_order_not_heard_ended_is_named_and_cancelled_only_after_the_ban(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        target = engine.positions[SYMBOL].take_profit.order
        assert target is not None
        sent = await banned(agent, fake, 2)
        drain = engine.exchange.drain_events

        def without_the_targets_end() -> list[ExchangeEvent]:
            return [e for e in drain() if not (isinstance(e, OrderUpdate)
                                               and e.order.client_id == target.client_id)]
        engine.exchange.drain_events = without_the_targets_end  # type: ignore[method-assign]
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await ticks(engine, 3)
        [close] = alerts(engine, "CLOSE")
        assert f"not cancelled yet, no request may be sent: {target.client_id}" in close
        assert "(STOP_LOSS) at " in close, close
        assert [o.client_id for o in engine.tracker.ours_live(SYMBOL)] == [target.client_id]
        assert len(fake.request_log) == sent
        engine.exchange.drain_events = drain     # type: ignore[method-assign]
        assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await ticks(engine, 2)                    # the flat symbol's orphan sweep
        assert engine.tracker.ours_live(SYMBOL) == []
        assert len(alerts(engine, "CLOSE")) == 1
        assert fake.retry_after_watch.violations == []

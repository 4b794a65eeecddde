"""The account's margin settings changed while the agent runs (found by a reviewer, rv16/03).

The agent risks each position on its own isolated margin: it set ISOLATED per symbol and
refused Multi-Assets mode (cross margin only) at start, and noticed neither change after.
Binance tells them on the user-data stream: ACCOUNT_CONFIG_UPDATE "ai": {"j": true} when
Multi-Assets mode is switched (https://developers.binance.com/docs/derivatives/
usds-margined-futures/user-data-streams/Event-Account-Configuration-Update-previous-
Leverage-Update), ACCOUNT_UPDATE reason MARGIN_TYPE_CHANGE with the position row's "mt" when
a symbol's margin type is (.../user-data-streams/Event-Balance-and-Position-Update). The
codec dropped the first, never read the second: /long opened on cross margin, and the next
start refused to run with that position open, leaving it with nobody managing it.

Through the real engine, python-binance and the user-data socket against the fake Binance
(its controls send the events as those pages show them: tests/fakes/binance_acts.py).
"""

import asyncio
import time
from decimal import Decimal

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import payload
from tests.test_first_command_after_boot import (
    FAST_STREAMS,
    SYMBOL,
    Agent,
    booted,
    market_up_to_now,
    streaming_agent,
)
from trader.commands import CommandKind
from trader.domain import OrderType, Side
from trader.exchange.base import MarginTypeChanged
from trader.exchange.binance_event_codec import margin_types_from_account_event
from trader.startup import reconcile


def test_the_documented_fill_update_tells_no_margin_type_and_a_margin_type_change_does():
    """The page's example (reason ORDER, every row "mt": "isolated") is the usual fill: no
    margin type news. The same rows under MARGIN_TYPE_CHANGE, and a row on cross whatever
    the reason, are told."""
    event = payload("event_account_update")
    assert margin_types_from_account_event(event) == []
    event["a"]["P"][1]["mt"] = "cross"
    told = margin_types_from_account_event(event)
    assert [(t.symbol, t.isolated, t.held) for t in told] == [("BTCUSDT", False, True)]
    event["a"]["m"] = "MARGIN_TYPE_CHANGE"
    assert [t.isolated for t in margin_types_from_account_event(event)] == [True, False, True]
    assert isinstance(margin_types_from_account_event(event)[0], MarginTypeChanged)


async def taken_in(agent: Agent) -> None:
    """The next user-data event has arrived and a tick took it in."""
    engine = agent.engine
    assert await eventually(lambda: len(engine.exchange.streams.events) > 0, 2.0)
    await engine.tick()


async def next_second() -> None:
    """A manual entry's key is its second: a second /long waits for the next one."""
    second = int(time.time())
    while int(time.time()) == second:
        await asyncio.sleep(0.02)


def alerts(agent: Agent, name: str) -> list:
    return [a for a in agent.engine.store.recent_alerts(100) if a.name == name]


async def test_multi_assets_mode_switched_on_blocks_entries_until_it_is_switched_off(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        await agent.engine.tick()
        await fake.switch_asset_mode_by_hand(True)
        await taken_in(agent)
        refused = await agent.run(CommandKind.LONG)
        assert not refused.ok
        assert "Multi-Assets mode" in refused.lines[0] and "Single-Asset Mode" in refused.lines[0]
        assert fake.sim.position(SYMBOL).quantity == 0
        assert fake.requests("POST /fapi/v1/order") == []
        status = await agent.run(CommandKind.STATUS)
        assert status.status is not None
        assert any("Multi-Assets mode" in block for block in status.status.entry_blocks)
        await agent.engine.tick()
        said = alerts(agent, "ACCOUNT_MODE")
        assert len(said) == 1 and said[0].severity == "CRITICAL", said
        assert "Switch it off in the Binance app" in said[0].text

        await fake.switch_asset_mode_by_hand(False)
        await taken_in(agent)
        await next_second()
        entered = await agent.run(CommandKind.LONG)
        assert entered.ok, entered.lines
        assert fake.endpoints.margin_types[SYMBOL] == "ISOLATED"   # set again before it
        assert fake.sim.position(SYMBOL).quantity > 0
        assert len(alerts(agent, "ACCOUNT_MODE_RESTORED")) == 1
        assert len(alerts(agent, "ACCOUNT_MODE")) == 1


async def test_protection_and_exits_go_on_in_multi_assets_mode(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        await engine.tick()
        await fake.switch_asset_mode_by_hand(True)
        await taken_in(agent)
        stop = engine.positions[SYMBOL].stop.order
        assert stop is not None
        await fake.cancel_order_by_hand(SYMBOL, stop.client_id)

        def stop_on_the_exchange() -> bool:
            return any(o.type is OrderType.STOP_MARKET for o in fake.sim.open_orders(SYMBOL))

        for _ in range(20):
            await engine.tick()
            if stop_on_the_exchange():
                break
            await asyncio.sleep(0.05)
        assert stop_on_the_exchange()
        assert (await agent.run(CommandKind.CLOSE)).ok
        assert fake.sim.position(SYMBOL).quantity == 0


async def test_a_flat_symbol_switched_to_cross_by_hand_is_set_isolated_before_its_next_entry(
        tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        await agent.engine.tick()
        await fake.change_margin_type_by_hand(SYMBOL, "CROSSED")
        await taken_in(agent)
        fake.clear_request_log()
        assert (await agent.run(CommandKind.LONG)).ok
        assert fake.endpoints.margin_types[SYMBOL] == "ISOLATED"
        sent = [(r.method, r.path) for r in fake.request_log if r.method == "POST"
                and r.path in ("/fapi/v1/marginType", "/fapi/v1/order")]
        assert sent[:2] == [("POST", "/fapi/v1/marginType"), ("POST", "/fapi/v1/order")]
        assert alerts(agent, "MARGIN_TYPE") == []


async def test_isolated_margin_refused_blocks_that_symbols_entries_with_one_alert(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        await agent.engine.tick()
        await fake.change_margin_type_by_hand(SYMBOL, "CROSSED")
        await taken_in(agent)
        fake.inject_fault("POST /fapi/v1/marginType", -4047, times=5,
                          msg="Margin type cannot be changed if there exists open orders.")
        refused = await agent.run(CommandKind.LONG)
        assert not refused.ok
        assert "refused ISOLATED margin" in refused.lines[0], refused.lines
        assert fake.requests("POST /fapi/v1/order") == []
        assert fake.endpoints.margin_types[SYMBOL] == "CROSSED"
        asked = len(fake.requests("POST /fapi/v1/marginType"))
        again = await agent.run(CommandKind.LONG)      # within the pause: not asked again
        assert not again.ok and "refused ISOLATED margin" in again.lines[0]
        assert len(fake.requests("POST /fapi/v1/marginType")) == asked
        said = alerts(agent, "MARGIN_TYPE")
        assert len(said) == 1 and "-4047" in said[0].text, said


async def test_a_position_on_cross_margin_is_said_once_and_left_as_it_is(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await engine.tick()
        await fake.change_margin_type_by_hand(SYMBOL, "CROSSED")
        await taken_in(agent)
        fake.clear_request_log()
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.01"))
        await taken_in(agent)
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.01"))
        await taken_in(agent)
        for _ in range(3):
            await engine.tick()
        said = alerts(agent, "MARGIN_TYPE")
        assert len(said) == 1 and "on cross margin" in said[0].text, said
        assert fake.requests("POST /fapi/v1/marginType") == []
        assert fake.endpoints.margin_types[SYMBOL] == "CROSSED"


async def test_multi_assets_mode_switched_while_polling_is_read_by_the_reconciliation(
        tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:       # no user-data stream
            engine = agent.engine
            await engine.tick()
            fake.set_multi_assets_mode(True)              # no socket hears it
            await reconcile(engine)                       # the periodic one
            assert len(fake.requests("GET /fapi/v1/multiAssetsMargin")) == 2   # boot, now
            assert "Multi-Assets mode" in engine.entry_refusal(SYMBOL)
            assert not (await agent.run(CommandKind.LONG)).ok
            fake.set_multi_assets_mode(False)
            await reconcile(engine)
            assert engine.entry_refusal(SYMBOL) == ""


async def test_a_start_in_multi_assets_mode_with_a_position_open_protects_it_without_entries(
        tmp_path):
    """A restart (the host's daily one) after Multi-Assets mode was switched on: the agent
    starts, keeps its position protected and managed, takes no entry, and says why."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            assert (await agent.run(CommandKind.LONG)).ok
            stop = agent.engine.positions[SYMBOL].stop.order
            assert stop is not None
        fake.set_multi_assets_mode(True)
        await fake.cancel_order_by_hand(SYMBOL, stop.client_id)     # while it was away
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            engine = agent.engine
            assert SYMBOL in engine.positions
            assert any(o.type is OrderType.STOP_MARKET for o in fake.sim.open_orders(SYMBOL))
            await engine.tick()
            said = alerts(agent, "ACCOUNT_MODE")
            assert len(said) == 1 and "read from Binance" in said[0].text, said
            status = await agent.run(CommandKind.STATUS)
            assert status.status is not None
            assert any("Multi-Assets mode" in block for block in status.status.entry_blocks)
            assert "Multi-Assets mode" in engine.entry_refusal(SYMBOL)
        assert fake.sim.position(SYMBOL).quantity > 0

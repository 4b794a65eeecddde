"""What the user-data stream tells after a reconnect inside an IP ban is acted on.

Binance closes a connection at its 24-hour mark ("A single connection is only valid for 24
hours; expect to be disconnected at the 24 hour mark", USD-M market streams page) or on any
drop, and bans an IP "from 2 minutes to 3 days" (General Info, LIMITS). Inside a ban the
stream reconnects at once on its still-valid listenKey, with no REST request. Found by
review12 (test_rv12_reconnect_inside_ban): the engine's reconnect callback cleared the
tracker's "synced" symbols, `ExchangeView.streamed_view` needed a REST snapshot to trust the
stream again, and the ban forbids one: a stop that filled after the reconnect, told in full
by the stream, was heard only when the ban ended. What the gap hid stays unknown, but a
position the stream tells after the reconnect is the exchange's: it is closed or takes
that size (📡 on /status) at once, with no request; nothing is placed or cancelled on it;
the position is read over REST as soon as the ban ends, and the reconciliation the
reconnect asked for (fills, funding and intents of the gap) waits for the ban's end instead
of being spent on a refusal. Outside a ban a reconnect still waits for the REST snapshot, as
before.
"""

from decimal import Decimal

from bot.format import format_position
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, Agent, streaming_agent
from tests.test_size_heard_during_ban import HEARD, shown, stop_filled_in_part
from tests.test_stop_fill_during_ban import alerts, banned, long_open, ticks
from trader.agent_loops import live_iteration
from trader.domain import CloseReason, OrderType
from trader.position import PositionState


async def reconnected(fake: FakeBinance, agent: Agent) -> None:
    """Binance closes every socket (the 24-hour mark); they are all back at once."""
    engine = agent.engine
    connections = fake.hub.connections_opened
    outages = engine.exchange.streams.user.health.outages
    await fake.drop_streams()
    assert await eventually(lambda: fake.hub.connections_opened >= connections + 3
                            and engine.exchange.streams.user.health.outages == outages + 1
                            and engine.exchange.streaming, 5.0), "no reconnect"
    assert not engine.tracker.synced(SYMBOL)


async def test_a_stop_filled_after_a_reconnect_inside_a_ban_is_closed_at_once(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        user = engine.exchange.streams.user
        sent = await banned(agent, fake, 120)
        await reconnected(fake, agent)
        assert user.listen_keys_created == 1              # the same key: nothing sent for it
        await ticks(engine, 2)
        assert engine.positions[SYMBOL].state is PositionState.PROTECTED   # nothing told
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))            # the stop fills
        assert fake.sim.position(SYMBOL).quantity == 0
        await ticks(engine, 5)
        closed = engine.store.closed_positions()
        assert [c.close_reason for c in closed] == [CloseReason.STOP_LOSS], (
            "the stream, reconnected on its valid key, told the stop's fill; ignored until "
            f"the ban ends: closed={closed}, open={list(engine.positions)}")
        [close] = alerts(engine, "CLOSE")
        assert "(STOP_LOSS) at " in close and "unknown" not in close, close
        assert [p.symbol for p in await shown(agent)] == []
        assert len(fake.request_log) == sent, fake.request_log[sent:]
        assert fake.retry_after_watch.violations == []


async def test_a_size_told_after_a_reconnect_inside_a_ban_is_followed_then_read_after_it(
        tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        stop = engine.positions[SYMBOL].stop.order
        assert stop is not None
        sent = await banned(agent, fake, 2)
        await reconnected(fake, agent)
        held = await stop_filled_in_part(fake, agent)
        await ticks(engine, 3)
        [view] = await shown(agent)
        assert (view.quantity, view.state) == (held, "PROTECTED"), (
            f"/status during the ban: {view.quantity} {view.state}; the exchange holds {held}")
        assert view.size_heard and HEARD in "\n".join(format_position(view))
        assert engine.store.open_positions()[0].quantity == held
        # nothing sent: the stop on the exchange stays as it is until the ban ends
        assert len(fake.request_log) == sent, fake.request_log[sent:]
        assert [o.client_id for o in fake.sim.open_orders(SYMBOL)
                if o.type is OrderType.STOP_MARKET] == [stop.client_id]
        # the ban ends: the position is read over REST first thing, the legs follow it
        snapshots = engine.view.rest_snapshots
        assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await ticks(engine, 3)
        assert engine.view.rest_snapshots > snapshots
        assert "/fapi/v3/positionRisk" in [r.path for r in fake.request_log[sent:]]
        assert engine.tracker.synced(SYMBOL)
        [view] = await shown(agent)
        assert view.quantity == held and not view.size_heard
        assert sorted((o.type, o.quantity - o.filled_qty)
                      for o in fake.sim.open_orders(SYMBOL)) == \
            [(OrderType.STOP_MARKET, held), (OrderType.TAKE_PROFIT_MARKET, held)]
        assert fake.retry_after_watch.violations == []


async def test_outside_a_ban_a_reconnect_still_waits_for_the_rest_snapshot(tmp_path):
    """The negative: with requests allowed the stream is trusted again only after a REST
    snapshot, whatever it told since the reconnect."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        await reconnected(fake, agent)
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))            # the stop fills

        def told() -> bool:     # the tick's first step, the stream's events into the tracker
            events = engine.exchange.drain_events()
            engine.view.on_events(events)
            engine.journal.record_stream_fills(events, engine.symbols)
            return engine.tracker.told_since_reconnect(SYMBOL)

        assert await eventually(told, 2.0)
        assert engine.view.pushed_view(SYMBOL) is None     # not trusted for the tick
        snapshots, sent = engine.view.rest_snapshots, len(fake.request_log)
        await ticks(engine, 3)
        assert engine.view.rest_snapshots > snapshots
        assert "/fapi/v3/positionRisk" in [r.path for r in fake.request_log[sent:]]
        [closed] = engine.store.closed_positions()
        assert closed.close_reason is CloseReason.STOP_LOSS


async def test_the_resync_a_reconnect_asks_inside_a_ban_runs_when_the_ban_ends(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        sent = await banned(agent, fake, 1.5)
        await reconnected(fake, agent)
        assert engine.resync_due
        last_reconcile = [engine.clock.now()]
        await live_iteration(engine, agent.controller, agent.feed, last_reconcile)
        assert engine.resync_due, "the resync was spent on a refusal inside the ban"
        assert len(fake.request_log) == sent, fake.request_log[sent:]
        assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await live_iteration(engine, agent.controller, agent.feed, last_reconcile)
        assert not engine.resync_due
        assert fake.requests("GET /fapi/v1/userTrades")[-1] in fake.request_log[sent:]
        assert fake.retry_after_watch.violations == []

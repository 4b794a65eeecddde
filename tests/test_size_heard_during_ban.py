"""A position whose size changes during an IP ban takes the size the user-data stream told.

During a 418 ban (Retry-After; Binance's general info, LIMITS: "IP bans are tracked and scale
in duration for repeat offenders, from 2 minutes to 3 days") nothing may be sent. A stop that
fills in part meanwhile (a triggered STOP_MARKET meeting too little liquidity) is told at
once by the stream: ORDER_TRADE_UPDATE PARTIALLY_FILLED with the fill, ACCOUNT_UPDATE with
the smaller position. Found by review6 (test_rv6_partial_stop_fill_during_ban_status):
`Engine._closes_heard` acted on a position gone only, so /status showed "LONG 0.507
PROTECTED" (and the PnL of 0.507) until the ban ended while the exchange held 0.253. Now the
record takes the size heard (trader/position_keeper.py `follow_heard`), /status says it is
the stream's word, the position is read over REST first thing after the ban, and the legs
follow the size then (new-first), as they do outside a ban.
"""

from decimal import Decimal

from bot.format import format_position
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, Agent, streaming_agent
from tests.test_stop_fill_during_ban import alerts, banned, long_open, ticks
from trader.commands import CommandKind, PositionView
from trader.domain import CloseReason, OrderType, Side
from trader.position import Position, PositionState

HEARD = "📡 size as the user-data stream told it"


async def stop_filled_in_part(fake: FakeBinance, agent: Agent) -> Decimal:
    """Half the stop fills; the rest stays live. What the exchange holds then."""
    stop = agent.engine.positions[SYMBOL].stop.order
    assert stop is not None
    part = (fake.sim.position(SYMBOL).quantity / 2).quantize(Decimal("0.001"))
    await fake._publish(fake.sim.fill_partly(SYMBOL, stop.client_id, part, fake.now()))
    return fake.sim.position(SYMBOL).quantity


async def shown(agent: Agent) -> list[PositionView]:
    status = (await agent.run(CommandKind.STATUS)).status
    assert status is not None
    return status.positions


def reduced(before: Decimal, after: Decimal) -> str:
    return (f"{SYMBOL}: LONG reduced by a partial fill of its stop-loss from "
            f"{before.normalize()} to {after.normalize()}; protection follows the new size")


async def test_status_during_a_ban_shows_the_size_a_partial_stop_fill_left(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        before = engine.positions[SYMBOL].quantity
        sent = await banned(agent, fake, 120)
        held = await stop_filled_in_part(fake, agent)
        await ticks(engine, 3)
        [view] = await shown(agent)
        assert (view.quantity, view.state) == (held, "PROTECTED"), (
            f"/status during the ban: {view.quantity} {view.state}; the exchange holds {held}")
        assert view.size_heard and HEARD in "\n".join(format_position(view))
        assert view.unrealized_pnl == engine.positions[SYMBOL].unrealized_pnl(view.mark_price)
        # the record took it (a restart reads the smaller size back) and the phone was told
        assert engine.store.open_positions()[0].quantity == held
        assert alerts(engine, "POSITION_REDUCED") == [reduced(before, held)]
        # nothing was sent for it: the legs wait for the ban's end
        assert len(fake.request_log) == sent, fake.request_log[sent:]
        assert fake.retry_after_watch.violations == []


async def test_a_size_added_by_hand_during_a_ban_is_shown_and_said(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        sent = await banned(agent, fake, 120)
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        held = fake.sim.position(SYMBOL).quantity
        await ticks(engine, 3)
        [view] = await shown(agent)
        assert view.quantity == held and view.size_heard
        [added] = alerts(engine, "RECONCILE_MISMATCH")
        assert "increased outside the agent" in added, added
        assert len(fake.request_log) == sent, fake.request_log[sent:]


def legs_on_the_exchange(fake: FakeBinance) -> list[tuple[OrderType, Decimal]]:
    return sorted((o.type, o.quantity - o.filled_qty) for o in fake.sim.open_orders(SYMBOL))


async def partial_then_rest(tmp_path, ban: bool) -> tuple[Position, list[str], FakeBinance]:
    """The stop fills in part (inside a 2 s ban, or not); the ban ends; the legs follow the
    size left; then the rest of the stop fills. The trade's record and the alerts."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        sent = await banned(agent, fake, 2) if ban else 0
        held = await stop_filled_in_part(fake, agent)
        await ticks(engine, 2)
        if ban:
            assert len(fake.request_log) == sent, fake.request_log[sent:]
            assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await ticks(engine, 3)
        after = [r.path for r in fake.request_log[sent:]] if ban else []
        assert not ban or "/fapi/v3/positionRisk" in after, after   # the read confirming it
        [view] = await shown(agent)
        assert view.quantity == held and not view.size_heard
        assert HEARD not in "\n".join(format_position(view))
        assert engine.positions[SYMBOL].state is PositionState.PROTECTED
        # the resize path: one stop and one take-profit, each for what is held
        assert legs_on_the_exchange(fake) == [(OrderType.STOP_MARKET, held),
                                              (OrderType.TAKE_PROFIT_MARKET, held)]
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await ticks(engine, 3)
        assert fake.sim.position(SYMBOL).quantity == 0
        [record] = engine.store.closed_positions()
        assert fake.retry_after_watch.violations == []
        return record, [a.name + ": " + a.text for a in engine.store.recent_alerts(200)], fake


async def test_after_the_ban_the_legs_follow_the_size_left_and_the_record_adds_up(tmp_path):
    record, texts, fake = await partial_then_rest(tmp_path, ban=True)
    fills = fake.sim.fills(SYMBOL)
    assert record.close_reason is CloseReason.STOP_LOSS
    assert record.traded_quantity == sum(f.quantity for f in fills if f.side is Side.BUY)
    assert record.realized_pnl == sum(f.realized_pnl for f in fills) < 0
    assert record.fees == sum(f.fee for f in fills)
    assert len([t for t in texts if t.startswith("POSITION_REDUCED")]) == 1, texts
    assert len([t for t in texts if t.startswith("CLOSE")]) == 1, texts


async def test_a_partial_stop_fill_outside_a_ban_is_followed_as_before(tmp_path):
    """The negative: no ban, the same fill: no note on /status, the same alerts, record and
    orders as the ban's path."""
    record, texts, fake = await partial_then_rest(tmp_path / "plain", ban=False)
    banned_record, banned_texts, _ = await partial_then_rest(tmp_path / "ban", ban=True)
    fills = fake.sim.fills(SYMBOL)
    assert record.realized_pnl == sum(f.realized_pnl for f in fills)
    assert (record.close_reason, record.traded_quantity) == \
        (banned_record.close_reason, banned_record.traded_quantity)

    def kinds(lines: list[str]) -> list[str]:
        return sorted(t.split(":")[0] for t in lines if "CIRCUIT" not in t)
    assert kinds(texts) == kinds(banned_texts), (texts, banned_texts)


async def tp1_filled(tmp_path, ban: bool) -> tuple[list, list[str]]:
    """The two-TP plan's TP1 fills (inside a 2 s ban, or not); the ban ends. The orders
    left on the exchange and the alerts' names and texts."""
    async with streaming_agent(tmp_path, exit_plan="two") as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        first = engine.positions[SYMBOL].take_profit_1.order
        assert first is not None
        sent = await banned(agent, fake, 2) if ban else 0
        order = fake.sim.order(SYMBOL, first.client_id)
        await fake.move_price(SYMBOL, (order.price or order.trigger_price) * Decimal("1.0005"))
        await ticks(engine, 2)
        if ban:
            assert len(fake.request_log) == sent, fake.request_log[sent:]
            assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await ticks(engine, 4)
        assert fake.retry_after_watch.violations == []
        left = sorted((o.type, o.quantity - o.filled_qty, o.trigger_price)
                      for o in fake.sim.open_orders(SYMBOL))
        return left, [f"{a.name}: {a.text}" for a in engine.store.recent_alerts(50)
                      if "CIRCUIT" not in a.name]


async def test_tp1_filled_during_a_ban_ends_as_outside_one(tmp_path):
    """TP1's fill makes the position smaller too: the plan, not news (no POSITION_REDUCED);
    after the ban the stop goes to breakeven for the rest, as without a ban."""
    banned_left, banned_said = await tp1_filled(tmp_path / "ban", ban=True)
    plain_left, plain_said = await tp1_filled(tmp_path / "plain", ban=False)
    assert banned_left == plain_left and len(banned_left) == 2, (banned_left, plain_left)
    assert banned_said == plain_said, (banned_said, plain_said)
    assert not [t for t in banned_said if t.startswith("POSITION_REDUCED")]


async def test_a_close_held_by_the_ban_closes_what_the_partial_fill_left(tmp_path):
    """/close during the ban waits for its end (nothing sent); the stop fills in part
    meanwhile: the record takes the size (still CLOSING), and at the ban's end the held
    close closes the rest, recorded with every fill."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        sent = await banned(agent, fake, 2)
        assert not (await agent.run(CommandKind.CLOSE)).ok          # held: "not sent yet"
        held = await stop_filled_in_part(fake, agent)
        await ticks(engine, 2)
        [view] = await shown(agent)
        assert (view.quantity, view.state, view.size_heard) == (held, "CLOSING", True)
        assert len(fake.request_log) == sent, fake.request_log[sent:]
        assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await ticks(engine, 4)
        assert fake.sim.position(SYMBOL).quantity == 0 and fake.sim.open_orders(SYMBOL) == []
        [record] = engine.store.closed_positions()
        fills = fake.sim.fills(SYMBOL)
        assert record.close_reason is CloseReason.COMMAND
        assert (record.realized_pnl, record.fees) == (sum(f.realized_pnl for f in fills),
                                                      sum(f.fee for f in fills))
        assert len(alerts(engine, "CLOSE")) == 1
        assert fake.retry_after_watch.violations == []

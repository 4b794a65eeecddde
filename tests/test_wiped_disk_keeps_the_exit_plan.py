"""A restart on a wiped disk picks the agent's own position up again with the exit plan and
the progress its orders and fills show (trader/reconcile.py `adopted_position`).

Found by the review (s10, s5 C): with TRADEBOT_EXIT_PLAN=two the pickup got the one-TP
plan: TP1 cancelled as a leftover, TP2 resized to the whole position, and the one-TP
plan's market partial (a taker order the two-TP plan never sends) fired after boot. And
a stop missing at boot came back 1 % below the mark although the stop had been at
breakeven since the first profit was taken: until a later tick moved it again (plan
one), or for good (plan two: the pickup did not read TP1's fill)."""

from decimal import Decimal

from tests.engine_world import SYMBOL, World, long_signal, make_world, settings_for
from trader.alerter import Alerter
from trader.control import Controller
from trader.domain import OrderRequest, OrderRole, OrderType, Side
from trader.engine import Engine
from trader.events import Policy
from trader.management import breakeven_price
from trader.position import ExitPlan, Position
from trader.startup import boot
from trader.trade_store import TradeStore

# A trail 2 % behind the best price stays below breakeven here: the stop is at breakeven.
ONE = {"TRADEBOT_TRAILING_DISTANCE": "2%"}
TWO = {"TRADEBOT_EXIT_PLAN": "two", **ONE}
PARTIAL_MARK = Decimal("1.006")    # past the one-TP plan's partial trigger, below TP1 (1 R)


async def opened(tmp_path, **env) -> tuple[World, list[OrderRequest]]:
    """A long of the agent's own (1 % stop, 2 % target; plan two: TP1 at 1 %), and every
    order request the exchange receives from then on, across restarts (one exchange)."""
    world = await make_world(tmp_path, **env)
    sent: list[OrderRequest] = []
    place = world.paper.place

    async def recorded(request: OrderRequest):  # type: ignore[no-untyped-def]
        sent.append(request)
        return await place(request)
    world.paper.place = recorded                  # type: ignore[method-assign]
    await world.warm_up()
    world.strategy.next = long_signal("0.01", "0.02")
    await world.step()
    return world, sent


async def wiped(world: World, tmp_path, **env) -> World:
    """A new process on an empty database (the host wiped the disk), the same exchange
    account, booted."""
    db_path = tmp_path / "wiped.db"
    settings = settings_for(db_path, **env)
    store = TradeStore.open(db_path)
    engine = Engine(settings, world.paper, store, world.clock, Alerter(store, world.clock),
                    strategy=world.strategy)
    again = World(db_path, settings, world.clock, store, world.paper, engine, world.strategy,
                  Controller(engine), world.last_close, world.candles)
    await boot(engine)
    return again


async def stop_cancelled_by_hand(world: World) -> None:
    """While the agent is down, its stop is cancelled by hand."""
    [stop] = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    await world.paper.cancel(SYMBOL, stop.client_id)


def breakeven(world: World, position: Position) -> Decimal:
    return breakeven_price(position, Policy().taker_fee, world.paper.rules(SYMBOL))


def stops_sent(sent: list[OrderRequest]) -> list[Decimal | None]:
    return [r.trigger_price for r in sent if r.type is OrderType.STOP_MARKET]


def market_sent(sent: list[OrderRequest]) -> list[str]:
    return [r.client_id for r in sent if r.type is OrderType.MARKET]


async def legs(world: World) -> dict[str, tuple[Decimal | None, Decimal]]:
    return {o.client_id: (o.trigger_price, o.quantity) for o in await world.open_orders()}


async def test_a_two_tp_position_keeps_tp1_and_tp2_and_sends_no_market_partial(tmp_path):
    world, sent = await opened(tmp_path, **TWO)
    position = world.engine.positions[SYMBOL]
    assert position.exit_plan is ExitPlan.TWO
    before, count = await legs(world), len(sent)
    again = await wiped(world, tmp_path, **TWO)
    for _ in range(3):
        await again.step(position.entry_price * PARTIAL_MARK)
    picked = again.engine.positions[SYMBOL]
    assert (picked.key, picked.exit_plan, picked.partial_taken) == \
        (position.key, ExitPlan.TWO, False)
    assert picked.take_profit_1 is not None
    assert picked.take_profit_1.order.client_id == position.take_profit_1.order.client_id
    assert market_sent(sent[count:]) == [], "the two-TP plan sends no market partial"
    assert await legs(again) == before, "TP1, TP2 and the stop kept as they were"


async def test_after_tp1_filled_a_missing_stop_comes_back_at_breakeven(tmp_path):
    """TP1 filled and the stop went to breakeven; the stop is cancelled by hand while the
    agent is down, the disk wiped. TP1's fill (journaled again at boot) says the plan is
    past TP1: the stop comes back at breakeven, never at 1 % below the mark; TP2 stays."""
    world, sent = await opened(tmp_path, **TWO)
    position = world.engine.positions[SYMBOL]
    first = position.take_profit_1.trigger_price
    await world.step(first + 10, high=first + 50)           # TP1 fills
    await world.step(first + 10)
    after = world.engine.positions[SYMBOL]
    assert after.partial_taken and after.take_profit_1 is None
    at_breakeven = breakeven(world, after)
    assert after.stop.order.trigger_price == at_breakeven
    await stop_cancelled_by_hand(world)
    count = len(sent)
    again = await wiped(world, tmp_path, **TWO)
    for _ in range(2):
        await again.step(first + 10)
    picked = again.engine.positions[SYMBOL]
    assert (picked.exit_plan, picked.partial_taken, picked.take_profit_1) == \
        (ExitPlan.TWO, True, None)
    assert stops_sent(sent[count:]) == [at_breakeven], "straight to breakeven, nothing looser"
    assert market_sent(sent[count:]) == []
    live = await legs(again)
    assert [q for cid, (_, q) in live.items() if "-tp" in cid] == [after.quantity]


async def test_after_the_partial_take_a_missing_stop_comes_back_at_breakeven(tmp_path):
    """Plan one: the market partial was taken and the stop went to breakeven; the stop is
    cancelled by hand while the agent is down, the disk wiped. pt1 on the exchange says
    the partial was taken: the first stop placed is at breakeven, not 1 % below the mark."""
    world, sent = await opened(tmp_path, **ONE)
    position = world.engine.positions[SYMBOL]
    mark = position.entry_price * PARTIAL_MARK
    await world.step(mark)
    await world.step(mark)
    after = world.engine.positions[SYMBOL]
    at_breakeven = breakeven(world, after)
    assert after.partial_taken and after.stop.order.trigger_price == at_breakeven
    await stop_cancelled_by_hand(world)
    count = len(sent)
    again = await wiped(world, tmp_path, **ONE)
    for _ in range(2):
        await again.step(mark)
    assert stops_sent(sent[count:]) == [at_breakeven], "straight to breakeven, nothing looser"
    assert market_sent(sent[count:]) == [], "the partial is not taken twice"


async def test_a_hand_position_under_plan_two_gets_the_one_tp_plan_at_one_percent(tmp_path):
    """Not the agent's own (no client id of ours): adopted as before, one take-profit, the
    stop 1 % below the mark, the plan's partial and breakeven still to come."""
    world = await make_world(tmp_path, **TWO)
    await world.warm_up()
    await world.paper.place(OrderRequest(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.1"),
                                         "by-hand-1", OrderRole.ENTRY))
    again = await wiped(world, tmp_path, **TWO)
    picked = again.engine.positions[SYMBOL]
    assert picked.adopted and picked.exit_plan is ExitPlan.ONE
    assert picked.take_profit_1 is None and not picked.partial_taken
    assert picked.stop.trigger_price < picked.entry_price


async def test_a_two_tp_position_picked_up_under_plan_one_keeps_its_two_targets(tmp_path):
    """The plan is fixed when a position is planned (a known database keeps it whatever
    TRADEBOT_EXIT_PLAN says now): its TP1 on the exchange says two-TP, so TP1 stays and no
    market partial is sent, as for the database that knew it. A position of plan one has
    no TP1 and keeps plan one (`test_after_the_partial_take_...`)."""
    world, sent = await opened(tmp_path, **TWO)
    position = world.engine.positions[SYMBOL]
    before, count = await legs(world), len(sent)
    again = await wiped(world, tmp_path, **ONE)
    for _ in range(3):
        await again.step(position.entry_price * PARTIAL_MARK)
    assert again.engine.positions[SYMBOL].exit_plan is ExitPlan.TWO
    assert market_sent(sent[count:]) == []
    assert await legs(again) == before


async def test_a_tp1_cancelled_by_hand_is_no_fill_and_no_reason_for_a_market_partial(tmp_path):
    """TP1 was sent (its id is known to the exchange) but is neither live nor filled: no
    proof the plan is past TP1 (the stop keeps its level), and still the two-TP plan: TP2
    closes everything, no market partial."""
    world, sent = await opened(tmp_path, **TWO)
    position = world.engine.positions[SYMBOL]
    await world.paper.cancel(SYMBOL, position.take_profit_1.order.client_id)
    count = len(sent)
    again = await wiped(world, tmp_path, **TWO)
    for _ in range(3):
        await again.step(position.entry_price * PARTIAL_MARK)
    picked = again.engine.positions[SYMBOL]
    assert (picked.exit_plan, picked.take_profit_1, picked.partial_taken) == \
        (ExitPlan.TWO, None, False)
    assert market_sent(sent[count:]) == []
    live = await legs(again)
    assert [q for cid, (_, q) in live.items() if "-tp" in cid] == [position.quantity]
    assert [p for cid, (p, _) in live.items() if "-sl" in cid] == \
        [position.stop.order.trigger_price]


async def test_a_trailed_stop_cancelled_by_hand_comes_back_at_its_level(tmp_path):
    """The stop trailed past breakeven (0.3 % behind the best price), then was cancelled
    by hand while the agent was down, and the disk wiped: the exchange still answers for
    that stop by its client id (cancelled), and its level is what the agent had reached.
    The stop comes back there, the first and only stop sent, not at breakeven or 1 %."""
    world, sent = await opened(tmp_path)
    position = world.engine.positions[SYMBOL]
    mark = position.entry_price * PARTIAL_MARK
    await world.step(mark)
    await world.step(mark)
    after = world.engine.positions[SYMBOL]
    trailed = after.stop.order.trigger_price
    assert after.trailing_active and trailed > breakeven(world, after)
    await stop_cancelled_by_hand(world)
    count = len(sent)
    again = await wiped(world, tmp_path)
    for _ in range(2):
        await again.step(mark)
    assert stops_sent(sent[count:]) == [trailed]
    assert market_sent(sent[count:]) == []


async def test_a_breakeven_level_passed_while_down_closes_as_that_stop_would_have(tmp_path):
    """Breakeven reached, the stop cancelled by hand, the price back below breakeven
    while the agent is down, the disk wiped: as on a known database, the stop at its level
    is refused (-2021, it would trigger at once) and the rest is closed at market; no
    looser stop is placed to keep it open."""
    world, sent = await opened(tmp_path, **ONE)
    position = world.engine.positions[SYMBOL]
    mark = position.entry_price * PARTIAL_MARK
    await world.step(mark)
    await world.step(mark)
    at_breakeven = breakeven(world, world.engine.positions[SYMBOL])
    await stop_cancelled_by_hand(world)
    low = position.entry_price * Decimal("0.998")
    candle = world.candle(low)                 # the market moves while nobody watches
    world.candles.append(candle)
    world.clock.set(candle.close_time)
    world.paper.feed_candle(candle)
    world.last_close = low
    count = len(sent)
    again = await wiped(world, tmp_path, **ONE)
    for _ in range(2):
        await again.step(low)
    assert SYMBOL not in again.engine.positions
    assert set(stops_sent(sent[count:])) == {at_breakeven}
    assert len(market_sent(sent[count:])) == 1
    assert (await again.paper.position(SYMBOL)).side is None

"""Maker-first entries through the real engine on the paper exchange (tests/engine_world.py):
a post-only quote at the touch, re-quoted when the touch moves away, the position from its
first fill with legs for what filled, the fallback at the timeout, and restarts in the
middle of a re-quote that never send an order twice."""

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import pytest

from tests.engine_world import SYMBOL, World, long_signal, make_world, restart
from trader.domain import (
    ClientId,
    CloseReason,
    Fill,
    Intent,
    Order,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.exchange.base import UnknownOutcome
from trader.executor import ActionResult
from trader.position import Position, PositionState
from trader.startup import boot

D = Decimal
MAKER = {"TRADEBOT_ENTRY_MODE": "maker", "TRADEBOT_MAKER_REQUOTES": 3,
         "TRADEBOT_MAKER_TIMEOUT_SECONDS": 30}


class ProcessKilled(BaseException):
    """The process dies here (not an Exception: no boundary of the engine catches it)."""


# --- helpers -------------------------------------------------------------------------------

async def quoting_long(world: World) -> tuple[Position, Order]:
    """Warm up, then a long signal: the engine quotes at the best bid (ENTERING)."""
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    position = world.engine.positions[SYMBOL]
    quotes = await live_quotes(world)
    assert position.state is PositionState.ENTERING and len(quotes) == 1
    return position, quotes[0]


async def live_quotes(world: World) -> list[Order]:
    return [o for o in await world.open_orders() if o.role is OrderRole.ENTRY]


async def later(world: World, seconds: float, price: str | None = None) -> None:
    """Inside the candle: `seconds` pass, the price trades at `price`, the engine ticks."""
    world.clock.set(world.clock.now() + timedelta(seconds=seconds))
    if price is not None:
        world.paper.publish(world.paper.sim.set_price(SYMBOL, D(price), world.clock.now()))
    await world.engine.tick()


def fill_part(world: World, client_id: str, quantity: Decimal) -> None:
    """Part of the queue at our price trades away: the quote fills partly, as maker."""
    world.paper.publish(world.paper.sim.fill_partly(SYMBOL, client_id, quantity,
                                                    world.clock.now()))


def entry_fills(world: World) -> list[Fill]:
    return [f for f in world.paper.sim.fills(SYMBOL) if "-en" in f.client_id]


async def stops(world: World) -> list[Order]:
    return [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]


async def assert_protected_for(world: World, quantity: Decimal) -> None:
    """One stop and one take-profit on the exchange, each for exactly `quantity`."""
    held = await world.paper.position(SYMBOL)
    assert held.quantity == quantity
    legs = [o for o in await world.open_orders() if o.type.conditional]
    assert sorted(o.type for o in legs) == [OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET]
    assert all(o.quantity == quantity and o.reduce_only for o in legs)
    position = world.engine.positions[SYMBOL]
    assert position.quantity == quantity and position.state is PositionState.PROTECTED


TAKER = D("0.0005")         # what the planner counts at each end of a trade (trader/risk.py)


def loss_at_stop(position: Position, fills: list[tuple[Decimal, Decimal]]) -> Decimal:
    """What `fills` (quantity, price) lose if the long's stop fills, as the planner counts
    it: the price distance plus the taker fee at both ends."""
    stop = position.stop.trigger_price
    return sum(((price - stop) + TAKER * (price + stop)) * quantity
               for quantity, price in fills) if fills else D(0)


def plan_budget(planned: Position) -> Decimal:
    """The risk the plan of an ENTERING long was sized for (trader/risk.py `risk_amount`):
    its quantity's loss at the stop from the planned price (the mark then)."""
    return loss_at_stop(planned, [(planned.initial_quantity, planned.entry_price)])


def budget_rest(planned: Position, fills: list[tuple[Decimal, Decimal]],
                price: Decimal) -> Decimal:
    """What the budget of an ENTERING long's plan leaves for an order at `price` once
    `fills` are in: never more than the planned rest, down to BTCUSDT's step (0.001)."""
    position = planned
    stop = position.stop.trigger_price
    left = plan_budget(planned) - loss_at_stop(position, fills)
    affordable = (left / ((price - stop) + TAKER * (price + stop))).quantize(
        D("0.001"), rounding=ROUND_DOWN)
    return min(affordable, position.initial_quantity - sum((q for q, _ in fills), D(0)))


def placements(world: World) -> list[str]:
    """Every client id the agent sends to the exchange, in order (a spy on the wire)."""
    sent: list[str] = []
    original = world.paper.place

    async def place(request: OrderRequest) -> Order:
        sent.append(request.client_id)
        return await original(request)

    world.paper.place = place  # type: ignore[method-assign]
    return sent


# --- filled as maker ---------------------------------------------------------------------------

async def test_a_maker_entry_fills_as_maker_and_pays_less_fee_than_a_market_entry(tmp_path):
    world = await make_world(tmp_path / "maker", **MAKER)
    position, quote = await quoting_long(world)
    book = world.paper.sim.book(SYMBOL)
    assert (quote.type, quote.price, quote.quantity) == (OrderType.LIMIT, book.bid,
                                                         position.quantity)
    await world.step()                    # the next candle trades below the bid
    maker_fill = entry_fills(world)[-1]
    assert maker_fill.maker and maker_fill.price == quote.price
    await assert_protected_for(world, position.quantity)

    market = await make_world(tmp_path / "market")
    await market.warm_up()
    market.strategy.next = long_signal()
    await market.step()
    taker_fill = entry_fills(market)[-1]
    assert not taker_fill.maker and taker_fill.quantity == maker_fill.quantity
    assert maker_fill.fee == (maker_fill.quantity * maker_fill.price * D("0.0002")).quantize(
        D("0.00000001"))
    assert maker_fill.fee < taker_fill.fee * D("0.45")      # 0.02 % against 0.05 %
    assert maker_fill.price < taker_fill.price               # and no spread crossed


async def test_the_default_entry_mode_stays_a_market_order(tmp_path):
    world = await make_world(tmp_path)
    sent = placements(world)
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    entries = [o for o in world.paper.sim.orders.terminal.values() if o.role is OrderRole.ENTRY]
    assert [o.type for o in entries] == [OrderType.MARKET] and sent[0].endswith("-en1")
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED


# --- partly filled, re-quoted, filled ------------------------------------------------------------

async def test_a_partly_filled_quote_is_requoted_at_the_new_touch_and_legs_follow_each_fill(
        tmp_path):
    world = await make_world(tmp_path, **MAKER)
    sent = placements(world)
    position, first = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, first.client_id, part)
    await later(world, 5, price="100050")        # the bid rises away from our quote

    moved = world.engine.positions[SYMBOL]
    assert moved.state in (PositionState.ATTACHING, PositionState.PROTECTED)
    assert moved.quantity == part                 # the position exists from the first fill
    assert world.paper.sim.order(SYMBOL, first.client_id).status is OrderStatus.CANCELED
    [second] = await live_quotes(world)
    assert second.client_id.endswith("-en2") and second.price == world.paper.sim.book(SYMBOL).bid
    # the rest, as much of it as the risk budget leaves at the higher price
    assert second.quantity == budget_rest(position, [(part, first.price)], second.price) \
        < position.quantity - part
    await later(world, 2)
    await assert_protected_for(world, part)       # legs for what is filled, nothing more

    await later(world, 3, price="100040")         # trades through the new quote
    for _ in range(3):
        await later(world, 2)
    await assert_protected_for(world, part + second.quantity)
    assert all(f.maker for f in entry_fills(world))
    assert sent.count(second.client_id) == 1 and await live_quotes(world) == []
    assert [c for c in sent if "-en" in c] == [first.client_id, second.client_id]


async def test_after_n_requotes_the_last_quote_waits_and_then_the_rest_goes_at_market(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    sent = placements(world)
    position, _ = await quoting_long(world)
    price = D("100000")
    for _ in range(5):                            # the bid runs away five times
        price += 20
        await later(world, 4, price=str(price))
    quotes = [c for c in sent if "-en" in c]
    assert len(quotes) == 4 and quotes[-1].endswith("-en4")     # the first + 3 re-quotes
    assert len(await live_quotes(world)) == 1
    await later(world, 12)                        # 32 s after the entry began
    assert await live_quotes(world) == []
    [market] = [o for o in world.paper.sim.orders.terminal.values()
                if o.type is OrderType.MARKET and o.role is OrderRole.ENTRY]
    # the rest at market, as much as the risk budget leaves at the mark it ran to
    rest = budget_rest(position, [], price)
    assert market.client_id.endswith("-en5") and market.filled_qty == rest
    await later(world, 2)
    await assert_protected_for(world, rest)


# --- the timeout ---------------------------------------------------------------------------------

async def test_at_the_timeout_the_rest_goes_at_market_and_the_legs_cover_it_all(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.3"))
    fill_part(world, quote.client_id, part)
    await later(world, 5)
    assert world.engine.positions[SYMBOL].quantity == part
    await later(world, 26)                        # 31 s: the time is up
    fills = entry_fills(world)
    assert [f.maker for f in fills] == [True, False]
    assert fills[-1].quantity == position.quantity - part
    assert fills[-1].client_id.endswith("-en2")
    await later(world, 2)
    await later(world, 2)
    await assert_protected_for(world, position.quantity)
    assert await live_quotes(world) == []


async def test_timeout_with_fallback_cancel_keeps_a_partial_position_protected_for_its_size(
        tmp_path):
    world = await make_world(tmp_path, **MAKER, TRADEBOT_MAKER_FALLBACK="cancel")
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    await later(world, 5)
    await later(world, 26)
    assert world.paper.sim.order(SYMBOL, quote.client_id).status is OrderStatus.CANCELED
    assert await live_quotes(world) == []
    sent_before = world.sent
    for _ in range(3):
        await later(world, 2)
    await assert_protected_for(world, part)
    assert world.sent == sent_before              # settled: nothing more is sent
    await world.step()                            # a new candle far below: no fill any more
    assert (await world.paper.position(SYMBOL)).quantity == part


async def test_timeout_with_fallback_cancel_and_nothing_filled_leaves_nothing_behind(tmp_path):
    world = await make_world(tmp_path, **MAKER, TRADEBOT_MAKER_FALLBACK="cancel")
    await quoting_long(world)
    await later(world, 31)
    assert SYMBOL not in world.engine.positions
    assert await world.open_orders() == [] and (await world.paper.position(SYMBOL)).quantity == 0
    assert world.store.closed_positions()[-1].close_reason is not None


async def test_a_position_closed_while_its_rest_is_quoted_cancels_the_rest(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    fill_part(world, quote.client_id, world.paper.rules(SYMBOL).round_qty(position.quantity / 2))
    await later(world, 3)
    await later(world, 2)
    await world.engine.close(SYMBOL, CloseReason.COMMAND)
    await later(world, 2)
    assert SYMBOL not in world.engine.positions
    assert await world.open_orders() == []
    assert (await world.paper.position(SYMBOL)).quantity == 0


# --- a lost answer ------------------------------------------------------------------------------

async def test_a_quote_whose_answer_was_lost_is_not_replaced_until_it_is_known_gone(tmp_path):
    """The re-quote times out before reaching the exchange: while it could still land
    (recvWindow + skew), nothing else is quoted; then the next quote takes the next id."""
    world = await make_world(tmp_path, **MAKER)
    await quoting_long(world)
    attempts: list[str] = []
    reaches_exchange = world.paper.place

    async def place(request: OrderRequest) -> Order:
        attempts.append(request.client_id)
        if len(attempts) == 1:
            raise UnknownOutcome("read timeout")      # lost on the way: never arrived
        return await reaches_exchange(request)

    world.paper.place = place  # type: ignore[method-assign]
    await later(world, 5, price="100050")
    assert len(attempts) == 1 and attempts[0].endswith("-en2")
    assert await live_quotes(world) == []
    for seconds in (2, 5, 5):                         # 12 s after sending: it may still land
        await later(world, seconds)
    assert len(attempts) == 1
    await later(world, 5)                             # 17 s: the exchange never saw it
    assert len(attempts) == 2 and attempts[1].endswith("-en3")
    [quote] = await live_quotes(world)
    assert quote.client_id == attempts[1] and quote.price == world.paper.sim.book(SYMBOL).bid


# --- restarts in the middle of a re-quote ----------------------------------------------------------

async def die_on_submit(world: World, role_type: OrderType) -> None:
    """The process dies as it is about to journal and send the next order of that type."""
    original = world.engine.executor.submit

    async def submit(intent: Intent) -> ActionResult:
        if intent.role is OrderRole.ENTRY and intent.type is role_type:
            raise ProcessKilled
        return await original(intent)

    world.engine.executor.submit = submit  # type: ignore[method-assign]


async def restarted(world: World) -> World:
    again = restart(world)
    await boot(again.engine)
    return again


async def test_a_restart_between_the_cancel_and_the_next_quote_places_it_once(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    sent = placements(world)
    position, first = await quoting_long(world)
    await die_on_submit(world, OrderType.LIMIT)
    with pytest.raises(ProcessKilled):
        await later(world, 5, price="100050")     # cancel verified, then the process dies
    assert world.paper.sim.order(SYMBOL, first.client_id).status is OrderStatus.CANCELED
    assert await live_quotes(world) == []

    again = await restarted(world)
    await later(again, 2)
    quotes = await live_quotes(again)
    assert len(quotes) == 1 and quotes[0].price == world.paper.sim.book(SYMBOL).bid
    entry_ids = [c for c in sent if "-en" in c]
    assert len(entry_ids) == len(set(entry_ids)) == 2       # one intent per id, never resent
    assert entry_ids[-1] == quotes[0].client_id and entry_ids[-1] != first.client_id
    for _ in range(3):
        await later(again, 2)
    assert len(await live_quotes(again)) == 1                # and no second one


async def test_a_restart_after_a_quote_was_sent_but_its_answer_lost_never_resends_it(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    sent = placements(world)
    planned, _ = await quoting_long(world)
    accepted_then_die: Callable[[OrderRequest], Awaitable[Order]] = world.paper.place

    async def place(request: OrderRequest) -> Order:
        await accepted_then_die(request)          # the exchange takes it; the answer is lost
        raise ProcessKilled

    world.paper.place = place  # type: ignore[method-assign]
    with pytest.raises(ProcessKilled):
        await later(world, 5, price="100050")
    world.paper.place = accepted_then_die  # type: ignore[method-assign]   # the exchange lives on
    [second] = await live_quotes(world)

    again = await restarted(world)
    for _ in range(3):
        await later(again, 2)
    assert [o.client_id for o in await live_quotes(again)] == [second.client_id]
    entry_ids = [c for c in sent if "-en" in c]
    assert entry_ids.count(second.client_id) == 1 and len(entry_ids) == 2
    await later(again, 2, price="100040")         # it fills; the agent follows
    for _ in range(3):
        await later(again, 2)
    # the second quote, at the higher bid, was for what the risk budget leaves there
    assert second.quantity == budget_rest(planned, [], second.price) < planned.quantity
    await assert_protected_for(again, second.quantity)


async def test_a_restart_at_the_timeout_before_the_market_rest_sends_it_once(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    sent = placements(world)
    position, quote = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(position.quantity * D("0.5"))
    fill_part(world, quote.client_id, part)
    await later(world, 5)
    await die_on_submit(world, OrderType.MARKET)
    with pytest.raises(ProcessKilled):
        await later(world, 26)
    again = await restarted(world)
    for _ in range(3):
        await later(again, 2)
    markets = [c for c in sent if "-en" in c and c != quote.client_id]
    assert len(markets) == 1
    await assert_protected_for(again, position.quantity)


async def entered_at_market(tmp_path):  # type: ignore[no-untyped-def]
    """A world whose engine entered a long at market: (world, its maker quoter, the position)."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    return world, world.engine.entries.maker, world.engine.positions[SYMBOL]


async def test_what_the_quoter_remembers_stays_bounded_over_many_positions(tmp_path):
    """A year's backtest opens thousands of positions: finished entries of closed positions
    are forgotten (a restart would ask the journal again), open ones are kept."""
    world, maker, position = await entered_at_market(tmp_path)
    maker._finished = {("ETHUSDT", f"closed{n}") for n in range(1000)}
    view = await world.engine.view.view(SYMBOL)
    assert not maker.working(position, view)          # a market entry: nothing to work
    assert maker._finished == {(SYMBOL, position.key)}


async def test_a_live_quote_is_minded_even_once_quoting_is_over(tmp_path):
    """`working` asks the live orders first, also for a position whose quoting finished:
    an entry quote of its own still live (a cancel that did not take) is minded, never left
    behind; its stop and target alone are not quotes."""
    world, maker, position = await entered_at_market(tmp_path)
    view = await world.engine.view.view(SYMBOL)
    assert not maker.working(position, view)          # a market entry: finished
    assert (SYMBOL, position.key) in maker._finished
    quote = Order(SYMBOL, str(ClientId(SYMBOL, position.key, OrderRole.ENTRY, 7)), Side.BUY,
                  OrderType.LIMIT, OrderStatus.NEW, D("0.001"), price=D("100"))
    assert maker.working(position, replace(view, live=[*view.live, quote]))
    assert not maker.working(position, view)

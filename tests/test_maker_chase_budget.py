"""A maker-first entry that chases the price never outgrows its plan (trader/maker_entry.py
`EntryRisk`): the stop stays where it was planned whatever the fill price, so each re-quote
and the market rest is sized to what is left of the plan's risk budget at its own price,
and nothing is bought at a price whose stop distance is past the planner's 2 % clamp.

Found by h-makerfb21 (the plan: a long of 0.227 at 100,000, stop 99,000, TP 102,000): the
price ran up and the market rest bought all 0.227 at 101,261.2, the stop 2.23 % away and
513 USDT at risk, 2.26 x the plan's; a fill of the third re-quote (100,750) risked 1.75 x.
The budget here is the plan's `risk_amount` (trader/risk.py): the price distance plus the
taker fee at both ends, 249.59 for this plan. Through the real engine on the paper
exchange (tests/engine_world.py)."""

from decimal import Decimal

from tests.engine_world import SYMBOL, World, make_world
from tests.test_maker_engine import (
    MAKER,
    assert_protected_for,
    budget_rest,
    entry_fills,
    fill_part,
    later,
    live_quotes,
    loss_at_stop,
    plan_budget,
    quoting_long,
)
from trader.position import Position

D = Decimal
STOP_CLAMP = D("0.02")       # the planner's widest stop distance (trader/risk.py)


def held_fills(world: World) -> list[tuple[Decimal, Decimal]]:
    """Every entry fill on the exchange: (quantity, price)."""
    return [(f.quantity, f.price) for f in entry_fills(world)]


async def run_up(world: World, step: int, times: int = 5) -> Decimal:
    """The bid runs away `times` times by `step`, 4 s apart; the last price."""
    price = D("100000")
    for _ in range(times):
        price += step
        await later(world, 4, price=str(price))
    return price


async def assert_within_the_plan(world: World, planned: Position,
                                 mark: Decimal | None = None) -> None:
    """What the position holds risks no more than the plan at its (planned) stop, and the
    stop is no further than the clamp from the real entry; its legs cover it. A market
    part is priced at the `mark` it was sent at, as the planner prices a MARKET entry:
    what it paid beyond (half the spread and the slippage) is the taker's cost, which a
    MARKET entry pays over its plan too."""
    held = world.engine.positions[SYMBOL]
    fills = held_fills(world)
    assert held.quantity == sum((q for q, _ in fills), D(0)) > 0
    assert held.stop.trigger_price == planned.stop.trigger_price
    priced = [(f.quantity, f.price if f.maker or mark is None else mark)
              for f in entry_fills(world)]
    assert loss_at_stop(planned, priced) <= plan_budget(planned)
    distance = (held.entry_price - held.stop.trigger_price) / held.entry_price
    assert distance <= STOP_CLAMP
    await assert_protected_for(world, held.quantity)


# --- the run-up before the fallback ---------------------------------------------------------

async def test_a_run_up_past_the_clamp_before_the_fallback_buys_nothing_and_says_why(
        tmp_path):
    """The probe's case: the bid runs to 101,250, where the stop would be 2.22 % away. The
    rest is given up (nothing filled: nothing is open), and the phone hears why, once."""
    world = await make_world(tmp_path, **MAKER)
    planned, _ = await quoting_long(world)
    await run_up(world, 250)
    await later(world, 12)                 # 32 s: the time is up
    for _ in range(2):
        await later(world, 2)
    assert entry_fills(world) == []
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert SYMBOL not in world.engine.positions
    [told] = world.alerts("ENTRY_NOT_FILLED")
    assert "given up" in told and "2.22% away" in told
    assert world.alerts("FILL") == []


async def test_a_run_up_inside_the_clamp_buys_the_rest_the_budget_leaves_at_market(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    planned, _ = await quoting_long(world)
    price = await run_up(world, 150)       # 100,750: the stop 1.74 % away
    await later(world, 12)                 # 32 s: the rest at market, at the mark
    for _ in range(2):
        await later(world, 2)
    [market] = entry_fills(world)
    assert not market.maker and market.quantity == budget_rest(planned, [], price) \
        < planned.quantity
    await assert_within_the_plan(world, planned, mark=price)
    [filled] = world.alerts("FILL")
    assert str(market.quantity) in filled
    assert planned.risk_budget == plan_budget(planned)     # kept from trader/risk.py's plan


# --- a re-quote fill after a drift ----------------------------------------------------------

async def test_a_requote_filled_after_a_drift_holds_what_the_budget_leaves_at_its_price(
        tmp_path):
    """The third re-quote (the bid 250 higher each time) fills: before, all 0.227 at
    100,748.9, 1.75 x the plan's risk."""
    world = await make_world(tmp_path, **MAKER)
    planned, _ = await quoting_long(world)
    await run_up(world, 250, times=3)
    [third] = await live_quotes(world)
    assert third.client_id.endswith("-en4")
    assert third.quantity == budget_rest(planned, [], third.price) < planned.quantity
    await later(world, 2, price=str(third.price - 10))    # trades through it
    for _ in range(2):
        await later(world, 2)
    assert held_fills(world) == [(third.quantity, third.price)]
    await assert_within_the_plan(world, planned)


# --- a partial fill, then a run-up ----------------------------------------------------------

async def test_a_partial_fill_then_a_run_up_sizes_the_rest_to_the_budget_left(tmp_path):
    """40 % fills at the first bid; the bid runs to 100,300 (short of the partial
    take-profit's +0.35 %); the rest at market is what the budget leaves once the part is
    counted (before: the whole planned rest)."""
    world = await make_world(tmp_path, **MAKER)
    planned, first = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(planned.quantity * D("0.4"))
    fill_part(world, first.client_id, part)
    price = await run_up(world, 60)
    await later(world, 12)                 # 32 s: the rest at market
    for _ in range(2):
        await later(world, 2)
    maker, market = entry_fills(world)
    assert (maker.quantity, maker.price) == (part, first.price)
    assert market.quantity == budget_rest(planned, [(part, first.price)], price) \
        < planned.quantity - part
    await assert_within_the_plan(world, planned, mark=price)


# --- negative: no drift, and a run-down -----------------------------------------------------

async def test_a_fallback_with_no_drift_buys_the_planned_rest_as_before(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    planned, _ = await quoting_long(world)
    for _ in range(8):
        await later(world, 4)              # nothing trades through the quote for 32 s
    for _ in range(2):
        await later(world, 2)
    [market] = entry_fills(world)
    assert not market.maker and market.quantity == planned.quantity
    await assert_protected_for(world, planned.quantity)


async def test_a_partial_fill_and_no_drift_buys_the_exact_planned_rest(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    planned, first = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(planned.quantity * D("0.3"))
    fill_part(world, first.client_id, part)
    await later(world, 5)
    await later(world, 26)                 # 31 s: the rest at market
    for _ in range(2):
        await later(world, 2)
    maker, market = entry_fills(world)
    assert market.quantity == planned.quantity - part
    await assert_protected_for(world, planned.quantity)


async def test_a_run_down_buys_no_more_than_planned(tmp_path):
    """The price falls through the quote (it moves our way): the quote fills at its price,
    for the planned size, and nothing more is bought for the budget a cheaper fill frees."""
    world = await make_world(tmp_path, **MAKER)
    planned, first = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(planned.quantity * D("0.3"))
    fill_part(world, first.client_id, part)
    await later(world, 4, price="99800")
    for _ in range(10):
        await later(world, 4, price="99700")
    assert sum((q for q, _ in held_fills(world)), D(0)) == planned.quantity
    assert await live_quotes(world) == []
    await assert_protected_for(world, planned.quantity)


async def test_no_more_is_bought_once_the_part_held_took_its_first_profit(tmp_path):
    """40 % fills; the price runs +0.4 %: the part takes its partial profit and its stop
    goes to breakeven (~100,100). Before, the re-quote at the new bid bought more there
    (the whole rest, 0.137; 0.100 with the budget rule alone) on that stop 0.3 % below it,
    the partial already taken for good: the exit rules began, the entry is over."""
    world = await make_world(tmp_path, **MAKER)
    planned, first = await quoting_long(world)
    part = world.paper.rules(SYMBOL).round_qty(planned.quantity * D("0.4"))
    fill_part(world, first.client_id, part)
    await later(world, 4, price="100400")
    for _ in range(3):
        await later(world, 2)
    assert world.engine.positions[SYMBOL].partial_taken
    await later(world, 2, price="100380")          # trades through any quote at the bid
    for _ in range(12):
        await later(world, 2)                      # past the timeout
    assert held_fills(world) == [(part, first.price)]
    assert await live_quotes(world) == []
    held = world.engine.positions[SYMBOL]
    await assert_protected_for(world, held.quantity)

"""A maker entry given up (a /pause, a breaker, ...) whose quote's cancel goes unanswered
stays given up. Found by h-review17 (rv17-03): /pause replied that the quote "is not known
cancelled yet ... the agent cancels it once Binance does and buys nothing more"; a /resume
before the next tick, and that tick saw nothing holding the entry: the quote rested on and
filled the full planned size. The give-up was remembered only once the cancel was
confirmed; a timed pause or a breaker ending first did the same, and so would a restart.

Now the decision is kept the moment it is taken (`Position.giving_up`, journaled before the
cancel leaves): every later tick cancels and reads back until the quote is known ended,
whatever holds by then, after a restart too; what filled meanwhile is kept, protected;
nothing is quoted again nor bought at market."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from storage import codec
from tests.engine_world import SYMBOL as BTC
from tests.engine_world import World, make_world
from tests.positions import make
from tests.test_maker_engine import (
    MAKER,
    assert_protected_for,
    entry_fills,
    fill_part,
    later,
    live_quotes,
    quoting_long,
    restarted,
)
from tests.test_maker_entry import roomy
from tests.test_pause_while_the_maker_entry_quotes import first_cancel_lost
from trader.commands import CommandKind
from trader.domain import Side
from trader.exchange.sim_rules import rules_for
from trader.maker_entry import Complete, GiveUp, Hold, MakerPolicy, QuoteState, decide
from trader.position import Position, PositionState

D = Decimal
CRASH = f"crash:{BTC}"
ZERO = D(0)


async def price_reaches_the_quote(world: World) -> None:
    """The next tick (nothing holds the entry any more), then the price trades through the
    quote, past the 30 s maker timeout: a live quote fills in full."""
    await later(world, 2)
    for _ in range(3):
        await later(world, 12, price="99900")


async def assert_nothing_more_bought(world: World, part: Decimal = ZERO) -> None:
    assert await live_quotes(world) == [], "the quote given up was still live"
    held = (await world.paper.position(BTC)).quantity
    assert held == part, f"bought {held - part} after the entry was given up"
    assert sum(fill.quantity for fill in entry_fills(world)) == part
    if part:
        await assert_protected_for(world, part)
        record = world.engine.positions[BTC]
        assert record.state is PositionState.PROTECTED and record.quoting_over
        assert not world.engine.entries.maker.may_add(record)
    else:
        assert BTC not in world.engine.positions


# --- the pure rule ---------------------------------------------------------------------------

def test_an_entry_being_given_up_gives_up_whatever_holds_now():
    """`decide`: a give-up kept on the record (`giving_up`) is given up again on every tick,
    held or not, before the timeout or after it; only a quote's lost answer waits, and
    everything filled completes."""
    rules = rules_for(BTC)
    policy = MakerPolicy(requotes=3, timeout=timedelta(seconds=30))
    state = QuoteState(side=Side.BUY, planned=D("0.250"), filled=D("0.100"),
                       quote_price=D("99999"), unknown=False, quotes_sent=1,
                       elapsed=timedelta(seconds=5), risk=roomy(Side.BUY), mark=D("99999"))
    why = "entries are paused (/pause): no new entries"
    for touch, seconds in (("99999", 5), ("100010", 5), ("99999", 31)):
        kept = replace(state, giving_up=why, elapsed=timedelta(seconds=seconds))
        assert decide(kept, D(touch), rules, policy) == GiveUp(why)
        assert not isinstance(decide(replace(kept, giving_up=""), D(touch), rules, policy),
                              GiveUp)
    assert isinstance(decide(replace(state, giving_up=why, unknown=True, quote_price=None),
                             D("99999"), rules, policy), Hold)
    assert isinstance(decide(replace(state, giving_up=why, filled=D("0.250")), D("99999"),
                             rules, policy), Complete)


def test_a_record_from_before_giving_up_was_kept_loads_as_not_given_up():
    data = codec.dump(make())
    data.pop("giving_up")
    assert codec.load(Position, data).giving_up == ""


# --- on the paper exchange -------------------------------------------------------------------

@pytest.mark.parametrize("filled", [False, True])
async def test_resume_before_the_pauses_cancel_is_confirmed_revives_nothing(tmp_path, filled):
    """rv17-03: /pause, its cancel unanswered, /resume before the next tick."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(BTC).round_qty(position.quantity * D("0.4")) if filled else D(0)
    if filled:
        fill_part(world, quote.client_id, part)
    first_cancel_lost(world, quote.client_id)
    result = await world.command(CommandKind.PAUSE, symbol=BTC)
    assert any("buys nothing more" in line for line in result.lines), result.lines
    resumed = await world.command(CommandKind.RESUME, symbol=BTC)
    assert resumed.ok, resumed.lines
    await price_reaches_the_quote(world)
    await assert_nothing_more_bought(world, part)
    assert world.store.position(BTC, position.key).giving_up     # journaled


async def test_a_timed_pause_ending_before_its_cancel_is_confirmed_revives_nothing(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    _, quote = await quoting_long(world)
    first_cancel_lost(world, quote.client_id)
    result = await world.command(CommandKind.PAUSE, symbol=BTC,
                                 duration=timedelta(seconds=1))
    assert any("buys nothing more" in line for line in result.lines), result.lines
    await price_reaches_the_quote(world)          # the pause ended before the next tick
    assert not world.engine.guard_state.paused_symbols
    await assert_nothing_more_bought(world)


async def test_a_breaker_ending_before_its_cancel_is_confirmed_revives_nothing(tmp_path):
    """The crash breaker holds the entry for a few seconds: the tick that gives it up gets
    no answer to the cancel; by the next one the breaker has ended."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(BTC).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    first_cancel_lost(world, quote.client_id)
    guards = world.engine.guard_state
    world.engine.guard_state = replace(
        guards, breakers={**guards.breakers, CRASH: world.clock.now() + timedelta(seconds=3)})
    await later(world, 2)                 # held: given up, its cancel unanswered
    await price_reaches_the_quote(world)  # the breaker ended before this
    assert CRASH not in world.engine.guard_state.breakers
    await assert_nothing_more_bought(world, part)


async def test_a_restart_between_the_give_up_and_its_confirmed_cancel_keeps_cancelling(
        tmp_path):
    """/pause, its cancel unanswered, /resume, then the process restarts: the new one
    reads the give-up from the record, cancels the quote and buys nothing."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    first_cancel_lost(world, quote.client_id)
    await world.command(CommandKind.PAUSE, symbol=BTC)
    await world.command(CommandKind.RESUME, symbol=BTC)
    again = await restarted(world)
    await price_reaches_the_quote(again)
    await assert_nothing_more_bought(again)
    assert again.store.position(BTC, position.key).giving_up     # read from the record


async def test_a_requote_whose_cancel_is_unanswered_is_no_give_up(tmp_path):
    """Negative: with nothing giving the entry up, a cancel without an answer changes
    nothing: the touch moved, the re-quote waits for the cancel, then follows; at the
    timeout the rest is bought at market as before."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    first_cancel_lost(world, quote.client_id)
    await later(world, 2, price="100050")         # the bid rose: re-quote, cancel unanswered
    await later(world, 2, price="100050")         # cancelled now, re-quoted
    assert [q.client_id for q in await live_quotes(world)] != [quote.client_id]
    for _ in range(3):
        await later(world, 12)                    # past the 30 s maker timeout
    record = world.engine.positions[BTC]
    assert record.state is PositionState.PROTECTED and record.quoting_over
    # the rest at market, sized to the plan's budget at the higher price (EntryRisk)
    assert D(0) < record.quantity <= position.quantity
    assert (await world.paper.position(BTC)).quantity == record.quantity
    assert [fill.client_id.rsplit("-", 1)[-1] for fill in entry_fills(world)] == ["en3"]
    assert not world.store.position(BTC, position.key).giving_up


async def test_a_rest_given_up_to_keep_the_plan_is_not_bought_once_the_price_comes_back(
        tmp_path):
    """Another reason, the same gap: at the timeout the price ran so far (the stop 2.5 %
    away, outside the planner's 2 %) that the market rest is given up (`fall_back`); its
    quote's cancel unanswered, the price comes back by the next tick: the rest is not
    bought at market after all, and ENTRY_NOT_FILLED says why it was given up."""
    world = await make_world(tmp_path, **MAKER)
    _, quote = await quoting_long(world)
    first_cancel_lost(world, quote.client_id)
    await later(world, 31, price="101600")        # past the timeout, far above the plan
    await later(world, 2, price="100000")         # back within the clamp
    for _ in range(3):
        await later(world, 12, price="99900")
    await assert_nothing_more_bought(world)
    [text] = world.alerts("ENTRY_NOT_FILLED")
    assert "was given up" in text and "2%" in text, text

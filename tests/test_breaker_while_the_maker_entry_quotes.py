"""A breaker that trips while a maker-first entry still works (TRADEBOT_ENTRY_MODE=maker).

The guards gated only the next entry: a long's bid kept resting while the crash breaker
said the market went wild (it fills into the crash), and at the maker timeout the rest was
bought at market; with the spread breaker tripped that market rest paid the wide spread.
Now every gate that refuses a new entry on a symbol holds the entry still working there too
(trader/guards.py `entries_held`, one rule with `allow_entry`): a breaker on the symbol or
on every symbol, a failed save, the emergency cooldown after /wake, the symbol's loss
cooldown (lengthened by a close read back while an entry works), stale candles or a symbol
no longer trading. Its quotes give up as a /pause makes them: cancelled and read back,
nothing quoted again nor bought at the timeout, what filled kept and protected, and the
breaker's end does not revive it. A breaker on another symbol leaves the entry alone."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.engine_world import START, World, long_signal, make_world
from tests.engine_world import SYMBOL as BTC
from tests.test_close_while_the_maker_entry_quotes import nothing_bought_later
from tests.test_maker_engine import (
    MAKER,
    assert_protected_for,
    entry_fills,
    fill_part,
    later,
    live_quotes,
    quoting_long,
)
from tests.test_maker_entry import roomy
from tests.test_pause_while_the_maker_entry_quotes import ETH, quotes_of, two_symbols
from trader import cooldowns, guards
from trader.domain import Side
from trader.exchange.sim_rules import rules_for
from trader.guard_state import API_BREAKER, GuardState
from trader.maker_entry import GiveUp, MakerPolicy, QuoteState, decide
from trader.position import PositionState

D = Decimal
NOW = START + timedelta(hours=1)
SOON = NOW + timedelta(minutes=10)
CRASH = f"crash:{BTC}"


# --- the pure rules --------------------------------------------------------------------------

def test_a_breaker_covering_the_symbol_holds_its_entries_naming_itself_and_its_end():
    """`entries_held`: a breaker of the symbol, or one of every symbol (api), names itself
    and when it ends; one of another symbol, or one that ended, holds nothing."""
    crash = GuardState(breakers={CRASH: SOON})
    assert guards.entries_held(crash, BTC, NOW) == \
        f"crash breaker on {BTC} active until 01:10 UTC"
    assert guards.entries_held(crash, ETH, NOW) == ""
    assert guards.entries_held(crash, BTC, SOON) == ""          # ended (expire lifts it)
    api = GuardState(breakers={API_BREAKER: SOON})
    for symbol in (BTC, ETH):
        assert guards.entries_held(api, symbol, NOW) == \
            "API-failure breaker (all symbols) active until 01:10 UTC"


def test_a_failed_save_the_wake_cooldown_and_the_loss_cooldown_hold_entries_too():
    assert guards.entries_held(GuardState(save_failure=True), BTC, NOW) == \
        "state could not be saved: entries blocked until storage recovers"
    assert guards.entries_held(GuardState(entries_blocked_until=SOON), BTC, NOW) == \
        "emergency cooldown until 01:10 UTC"
    cooling = GuardState(cooldowns={BTC: SOON})
    assert guards.entries_held(cooling, BTC, NOW) == f"{BTC} cooling down until 01:10:00 UTC"
    assert guards.entries_held(cooling, ETH, NOW) == ""


STATES = [
    GuardState(), GuardState(asleep=True), GuardState(save_failure=True),
    GuardState(paused=True), GuardState(paused=True, paused_until=NOW),
    GuardState(paused_symbols={BTC: None}), GuardState(paused_symbols={ETH: SOON}),
    GuardState(entries_blocked_until=SOON), GuardState(entries_blocked_until=NOW),
    GuardState(breakers={CRASH: SOON}), GuardState(breakers={CRASH: NOW}),
    GuardState(breakers={f"spread:{ETH}": SOON}), GuardState(breakers={"api": SOON}),
    GuardState(cooldowns={BTC: SOON}), GuardState(cooldowns={ETH: SOON}),
]


@pytest.mark.parametrize("state", STATES)
def test_whatever_refuses_a_new_entry_holds_the_one_still_working(state):
    """One rule: `entries_held` says why exactly when `allow_entry` refuses."""
    allowed, _ = guards.allow_entry(state, BTC, NOW)
    assert bool(guards.entries_held(state, BTC, NOW)) is not allowed


def test_held_by_a_breaker_a_maker_entry_gives_up_saying_which_and_until_when():
    """`decide` (trader/maker_entry.py): the hold's words are the give-up's."""
    why = guards.entries_held(GuardState(breakers={CRASH: SOON}), BTC, NOW)
    state = QuoteState(side=Side.BUY, planned=D("0.250"), filled=D("0.100"),
                       quote_price=D("99999"), unknown=False, quotes_sent=1,
                       elapsed=timedelta(seconds=31), risk=roomy(Side.BUY), mark=D("99999"))
    decision = decide(replace(state, held=why), D("99999"), rules_for(BTC),
                      MakerPolicy(requotes=3, timeout=timedelta(seconds=30)))
    assert decision == GiveUp(f"crash breaker on {BTC} active until 01:10 UTC: no new entries")


# --- on the paper exchange -------------------------------------------------------------------

def widen_the_spread(world: World, symbol: str = BTC) -> None:
    """The book goes five times as wide as it was (the spread breaker trips at the next
    tick: 1.2 x its rolling median and more than two ticks)."""
    world.paper.sim.config.spread[symbol] = D("0.0001")


def not_filled(world: World) -> list[str]:
    return world.alerts("ENTRY_NOT_FILLED")


async def test_the_spread_breaker_tripping_while_a_quote_rests_cancels_it_and_buys_nothing(
        tmp_path):
    """Nothing filled: the quote is cancelled, nothing is bought at the timeout (no market
    rest across the wide spread), and ENTRY_NOT_FILLED says once which breaker, until when."""
    world = await make_world(tmp_path, **MAKER)
    await quoting_long(world)
    widen_the_spread(world)
    await later(world, 2)                # the tick's breakers trip after its entry step
    assert f"spread:{BTC}" in world.engine.guard_state.breakers
    await later(world, 2)                # the next one gives the entry up
    assert await live_quotes(world) == []
    await nothing_bought_later(world)
    [text] = not_filled(world)
    assert f"its quote was cancelled: spread breaker on {BTC} active until" in text, text
    assert "nothing is open" in text, text


async def test_the_crash_breaker_keeps_the_part_filled_protected_and_its_end_revives_nothing(
        tmp_path):
    """A spike of 3.1 % over the last candles trips the crash breaker while the quote
    rests (a maker timeout longer than a candle): the part filled stays, protected; the
    quote is cancelled, and once the breaker has ended nothing more is quoted or bought."""
    world = await make_world(tmp_path, **{**MAKER, "TRADEBOT_MAKER_TIMEOUT_SECONDS": 600})
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.05")     # the spike stays inside SL and TP
    await world.step()
    position, [quote] = world.engine.positions[BTC], await live_quotes(world)
    part = world.paper.rules(BTC).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    await later(world, 2)
    # a spike of 3.1 % within the candle, back near the quote at its close
    await world.step("100100", high="103100", low="100010")
    assert CRASH in world.engine.guard_state.breakers
    await later(world, 2)
    assert await live_quotes(world) == []
    await later(world, 2)
    await assert_protected_for(world, part)
    assert world.engine.positions[BTC].quoting_over       # on the record: never revived
    assert not_filled(world) == []       # open: FILL told it
    # the breaker lasts while the spike is among the last 5 candles, then its 10 minutes;
    # the maker timeout (10 minutes) passes meanwhile
    for _ in range(12):
        await world.step("100100", high="100150", low="100050")
        if CRASH not in world.engine.guard_state.breakers:
            break
    assert CRASH not in world.engine.guard_state.breakers
    await world.step("100100", high="100150", low="100050")
    assert await live_quotes(world) == []
    assert sum(fill.quantity for fill in entry_fills(world)) == part    # nothing more bought


async def test_a_failed_save_gives_the_working_entry_up(tmp_path):
    """The disk goes read-only while the quote rests; part of it fills, and its record
    cannot be saved: SAVE_STATE_FAILURE blocks entries, the one working included: its
    quote is cancelled, nothing more is bought, at the timeout neither."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    world.store.db.execute("PRAGMA query_only = ON")
    part = world.paper.rules(BTC).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    for _ in range(3):
        await later(world, 2)
        if world.engine.guard_state.save_failure:
            break
    assert world.engine.guard_state.save_failure
    await later(world, 2)
    assert await live_quotes(world) == []
    for _ in range(4):
        await later(world, 12, price="99900")
    assert await live_quotes(world) == []
    assert (await world.paper.position(BTC)).quantity == part


async def test_stale_candles_give_the_working_entry_up(tmp_path):
    """The feed watchdog finds the candles stale (STALE_DATA: "no new entries until candles
    resume"): the entry working stops buying too."""
    world = await make_world(tmp_path, **{**MAKER, "TRADEBOT_MAKER_TIMEOUT_SECONDS": 600})
    await quoting_long(world)
    for _ in range(40):                  # no candle closes: minutes pass, ticks only
        await later(world, 30)
        if world.alerts("STALE_DATA"):
            break
    assert world.alerts("STALE_DATA")
    await later(world, 2)
    assert await live_quotes(world) == []
    assert (await world.paper.position(BTC)).quantity == 0


async def test_a_breaker_on_another_symbol_leaves_this_symbols_entry_working(tmp_path):
    world = await two_symbols(tmp_path)
    btc_quote = await quotes_of(world, BTC)
    widen_the_spread(world, ETH)
    for _ in range(2):
        world.clock.set(world.clock.now() + timedelta(seconds=2))
        await world.engine.tick()
    assert f"spread:{ETH}" in world.engine.guard_state.breakers
    assert await quotes_of(world, ETH) == []
    assert await quotes_of(world, BTC) == btc_quote       # still working, as before
    assert world.engine.positions[BTC].state is PositionState.ENTERING
    world.clock.set(world.clock.now() + timedelta(seconds=30))
    await world.engine.tick()                            # its timeout: the rest at market
    assert (await world.paper.position(BTC)).quantity > 0
    assert (await world.paper.position(ETH)).quantity == 0


def test_a_close_read_back_can_lengthen_a_cooldown_over_an_entry_begun_after_it():
    """Why the loss cooldown holds a working entry too: a close whose result was unknown
    (its fills unread) left a 5 minute cooldown, which ended; an entry began; the close read
    back later is the third loss in a row, and the cooldown runs again (3 x 5 minutes from
    the close) while that entry still works."""
    closed_at = NOW - timedelta(minutes=6)
    state = GuardState(loss_streak={BTC: 2})     # its own cooldown ran out a minute ago
    counted = cooldowns.count_read_back(state, BTC, True, [], closed_at, NOW,
                                        base=timedelta(minutes=5))
    assert counted.cooldowns[BTC] == closed_at + timedelta(minutes=15)
    assert guards.entries_held(counted, BTC, NOW) == f"{BTC} cooling down until 01:09:00 UTC"


async def test_multi_assets_mode_switched_on_gives_the_working_entry_up(tmp_path):
    """Multi-Assets mode switched on while the quote rests (trader/margin_watch.py: cross
    margin only, new entries blocked): the quote would fill on cross margin, so it is given
    up as a breaker gives it up: cancelled, nothing bought at the timeout."""
    world = await make_world(tmp_path, **MAKER)
    await quoting_long(world)
    world.engine.margin.multi_assets = True
    await later(world, 2)
    assert await live_quotes(world) == []
    for _ in range(4):
        await later(world, 12, price="99900")
    assert await live_quotes(world) == []
    assert (await world.paper.position(BTC)).quantity == 0

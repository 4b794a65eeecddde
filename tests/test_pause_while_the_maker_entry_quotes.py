"""/pause while a maker-first entry is still quoting (TRADEBOT_ENTRY_MODE=maker): README
says a pause "stops new entries", yet the quote resting when the pause came went on: it
was re-quoted, and at the maker timeout the rest was bought at market, minutes after the
operator paused because the market went wild.

Now a pause that covers the entry's symbol (every symbol, or that one; timed or not) makes
its quotes give up as the sleep of a /shutdown does: the quote is cancelled and read back,
nothing is quoted again nor bought at the timeout, what filled is kept and protected; a
pause that ends (/resume, or its time) does not revive it, nor does a restart. The /pause
reply says what it did to the entry, and no more than is known: a quote whose cancel went
unanswered is "not known cancelled yet", not "cancelled" (the reply /shutdown shares said
it was). A pause of another symbol leaves the quote alone."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.format import format_result
from tests.engine_world import START, STEP, World, make_world, settings_for
from tests.engine_world import SYMBOL as BTC
from tests.test_close_while_the_maker_entry_quotes import (
    dies_before_the_quote_is_cancelled,
    nothing_bought_later,
)
from tests.test_maker_engine import (
    MAKER,
    assert_protected_for,
    fill_part,
    later,
    live_quotes,
    quoting_long,
    restarted,
)
from tests.test_maker_entry import roomy
from tests.test_rules_correlation import PerSymbolStrategy, buy
from trader import guards, operator_holds
from trader.alerter import Alerter
from trader.clock import ManualClock
from trader.commands import CommandKind
from trader.control import Controller
from trader.domain import Candle, Order, OrderRole, Side
from trader.engine import Engine
from trader.exchange.base import UnknownOutcome
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.exchange.sim_rules import rules_for
from trader.guard_state import GuardState
from trader.maker_entry import FallBack, GiveUp, MakerPolicy, QuoteState, decide
from trader.position import PositionState
from trader.trade_store import TradeStore

D = Decimal
ETH = "ETHUSDT"
NOW = START + timedelta(hours=1)

# Every way a pause covers BTCUSDT: (the /pause's symbol, its duration)
COVERING = [(None, None), (None, timedelta(hours=2)), (BTC, None), (BTC, timedelta(hours=2))]


# --- the pure rules --------------------------------------------------------------------------

def test_a_pause_holds_entries_on_the_symbols_it_covers_until_it_ends():
    """trader/guards.py `entries_held`: why entries are held on a symbol now, "" when not."""
    assert guards.entries_held(GuardState(), BTC, NOW) == ""
    assert guards.entries_held(GuardState(asleep=True), BTC, NOW) == \
        "the agent sleeps (/shutdown)"
    everywhere = operator_holds.pause(GuardState(), None)
    assert guards.entries_held(everywhere, BTC, NOW) == "entries are paused (/pause)"
    assert guards.entries_held(everywhere, ETH, NOW) == "entries are paused (/pause)"
    one = operator_holds.pause_symbol(GuardState(), ETH, None)
    assert guards.entries_held(one, ETH, NOW) == f"{ETH} is paused (/pause {ETH})"
    assert guards.entries_held(one, BTC, NOW) == ""
    timed = operator_holds.pause_symbol(operator_holds.pause(GuardState(), NOW + timedelta(hours=2)), ETH,
                                NOW + timedelta(minutes=30))
    assert guards.entries_held(timed, ETH, NOW) == "entries are paused (/pause)"
    assert guards.entries_held(timed, BTC, NOW + timedelta(hours=1)) == \
        "entries are paused (/pause)"
    assert guards.entries_held(timed, ETH, NOW + timedelta(hours=1)) == \
        "entries are paused (/pause)"
    assert guards.entries_held(timed, ETH, NOW + timedelta(hours=3)) == ""   # both ended


def test_held_a_maker_entry_gives_up_instead_of_quoting_or_falling_back():
    """Pure (trader/maker_entry.py `decide`): held by a pause, a quote at the touch, one the
    touch left and one past the timeout are all given up, saying why; not held, they hold,
    re-quote, fall back."""
    rules = rules_for(BTC)
    policy = MakerPolicy(requotes=3, timeout=timedelta(seconds=30))
    for seconds, touch in ((5, "99999"), (5, "100010"), (31, "99999")):
        kept = QuoteState(side=Side.BUY, planned=D("0.250"), filled=D("0.100"),
                          quote_price=D("99999"), unknown=False, quotes_sent=1,
                          elapsed=timedelta(seconds=seconds), risk=roomy(Side.BUY),
                          mark=D(touch))
        held = decide(replace(kept, held="entries are paused (/pause)"), D(touch), rules,
                      policy)
        assert held == GiveUp("entries are paused (/pause): no new entries")
        assert not isinstance(decide(kept, D(touch), rules, policy), GiveUp)
    past = QuoteState(side=Side.BUY, planned=D("0.250"), filled=D("0.100"),
                      quote_price=D("99999"), unknown=False, quotes_sent=1,
                      elapsed=timedelta(seconds=31), risk=roomy(Side.BUY), mark=D("99999"))
    assert isinstance(decide(past, D("99999"), rules, policy), FallBack)


# --- on the paper exchange -------------------------------------------------------------------

@pytest.mark.parametrize(("symbol", "duration"), COVERING)
async def test_pause_while_a_quote_works_cancels_it_and_buys_nothing(tmp_path, symbol,
                                                                      duration):
    world = await make_world(tmp_path, **MAKER)
    _, quote = await quoting_long(world)
    result = await world.command(CommandKind.PAUSE, symbol=symbol, duration=duration)
    text = format_result(CommandKind.PAUSE, result)
    assert result.ok, text
    assert await live_quotes(world) == [], text        # cancelled by the command itself
    assert f"{BTC}: the LONG maker entry is stopped: its quote {quote.client_id} was " \
        "cancelled; nothing had filled, nothing is open" in result.lines, text
    assert result.lines[-1].endswith("exits and protection keep running"), text
    await nothing_bought_later(world)
    # the reply said it: ENTRY_NOT_FILLED is kept for /alerts, not sent to the phone again
    assert all(a.name != "ENTRY_NOT_FILLED" for a in world.engine.alerter.pending())


@pytest.mark.parametrize("ended_by", ["resume", "its time", "a restart"])
async def test_pause_keeps_the_part_filled_protected_and_its_end_does_not_revive_the_quote(
        tmp_path, ended_by):
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(BTC).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    duration = timedelta(minutes=2) if ended_by == "its time" else None
    result = await world.command(CommandKind.PAUSE, duration=duration)
    assert await live_quotes(world) == [], result.lines
    assert f"{BTC}: the LONG maker entry is stopped: its quote {quote.client_id} was " \
        f"cancelled with {part.normalize()} of {position.quantity.normalize()} filled: that " \
        "position is open, protection places its stop" in result.lines, result.lines
    await later(world, 2)
    await later(world, 2)
    await assert_protected_for(world, part)
    if ended_by == "resume":
        await world.command(CommandKind.RESUME)
    elif ended_by == "a restart":
        world = await restarted(world)
        await world.command(CommandKind.RESUME)
    for _ in range(4):              # past the maker timeout and the pause's 2 minutes
        await later(world, 40, price="99900")
    assert not world.engine.guard_state.paused
    assert await live_quotes(world) == []
    await assert_protected_for(world, part)
    assert world.engine.positions[BTC].state is PositionState.PROTECTED


async def test_pause_with_nothing_working_says_only_that_entries_are_paused(tmp_path):
    world = await make_world(tmp_path, **MAKER)
    await world.warm_up()
    result = await world.command(CommandKind.PAUSE, symbol=BTC)
    assert result.lines == [f"{BTC}: entries paused until /resume {BTC}; exits and "
                            "protection keep running"], result.lines


async def test_a_restart_before_the_pauses_cancel_stays_paused_and_gives_the_quote_up(
        tmp_path):
    """The pause is kept before the cancel is sent: the process dies between the two, and
    the new one, paused, cancels the quote and buys nothing, at the maker timeout neither."""
    world = await dies_before_the_quote_is_cancelled(tmp_path, CommandKind.PAUSE,
                                                     symbol=BTC)
    again = await restarted(world)
    assert BTC in again.engine.guard_state.paused_symbols
    await later(again, 2)
    assert await live_quotes(again) == []
    await nothing_bought_later(again)


# --- two symbols: a pause of one leaves the other's quote alone ------------------------------

async def two_symbols(tmp_path: Path) -> World:
    """BTCUSDT and ETHUSDT on the paper exchange, each with a maker long quoting."""
    symbols = [BTC, ETH]
    settings = settings_for(tmp_path / "tradebot.db", TRADEBOT_SYMBOLS=",".join(symbols),
                            TRADEBOT_CORRELATION_THRESHOLD="1", **MAKER)
    clock = ManualClock(START)
    store = TradeStore.open(tmp_path / "tradebot.db")
    paper = PaperExchange(TradeStore.open(tmp_path / "exchange.db"), clock,
                          SimConfig(balance=D("10000"), seed=1, default_leverage=5))
    await paper.start(symbols, settings.leverage)
    strategy = PerSymbolStrategy()
    engine = Engine(settings, paper, store, clock, Alerter(store), strategy=strategy)
    world = World(tmp_path / "tradebot.db", settings, clock, store, paper, engine,
                  strategy, Controller(engine))    # type: ignore[arg-type]
    for index in range(31):
        if index == 30:
            strategy.next = {BTC: buy(), ETH: buy()}
        for symbol, close in ((BTC, D("100000")), (ETH, D("3000"))):
            paper_candle = Candle(symbol, START + STEP * index, STEP, close,
                                  close * D("1.002"), close * D("0.998"), close, D("10"))
            paper.feed_candle(paper_candle)
            engine.on_candle(paper_candle)
        clock.set(START + STEP * (index + 1))
        await engine.tick()
    for symbol in symbols:
        assert engine.positions[symbol].state is PositionState.ENTERING
        assert len(await quotes_of(world, symbol)) == 1
    return world


async def quotes_of(world: World, symbol: str) -> list[str]:
    return [o.client_id for o in await world.paper.open_orders(symbol)
            if o.role is OrderRole.ENTRY]


async def test_a_pause_of_one_symbol_leaves_another_symbols_quote_working(tmp_path):
    world = await two_symbols(tmp_path)
    btc_quote = await quotes_of(world, BTC)
    result = await world.command(CommandKind.PAUSE, symbol=ETH)
    assert result.ok, result.lines
    assert await quotes_of(world, ETH) == [], result.lines
    assert ETH not in world.engine.positions
    assert [line for line in result.lines if BTC in line] == [], result.lines
    world.clock.set(world.clock.now() + timedelta(seconds=5))
    await world.engine.tick()
    assert await quotes_of(world, BTC) == btc_quote       # still working, as before
    assert world.engine.positions[BTC].state is PositionState.ENTERING
    world.clock.set(world.clock.now() + timedelta(seconds=30))
    await world.engine.tick()                            # its timeout: the rest at market
    assert (await world.paper.position(BTC)).quantity > 0
    assert (await world.paper.position(ETH)).quantity == 0
    assert await quotes_of(world, ETH) == []


# --- a cancel without an answer: the reply claims no more than is known ----------------------

def first_cancel_lost(world: World, quote_id: str) -> None:
    """The quote's first cancel gets no answer (it never arrived: the quote reads back
    live); the next ones land."""
    cancel = world.paper.cancel
    calls = {"n": 0}

    async def cancelled(symbol: str, client_id: str) -> Order | None:
        if client_id == quote_id:
            calls["n"] += 1
            if calls["n"] == 1:
                raise UnknownOutcome("timeout: the DELETE got no answer (it never arrived)")
        return await cancel(symbol, client_id)
    world.paper.cancel = cancelled  # type: ignore[method-assign]


@pytest.mark.parametrize("seen", [True, False])
@pytest.mark.parametrize("kind", [CommandKind.PAUSE, CommandKind.SHUTDOWN])
async def test_a_hold_whose_cancel_is_unanswered_says_the_quote_is_not_known_cancelled(
        tmp_path, kind, seen):
    """Filled in part (seen and protected already, or not yet seen), the quote's cancel
    unanswered: the reply says the quote is not known cancelled yet, never "was cancelled";
    the next tick cancels it, and nothing more is bought."""
    world = await make_world(tmp_path, **MAKER)
    position, quote = await quoting_long(world)
    part = world.paper.rules(BTC).round_qty(position.quantity * D("0.4"))
    fill_part(world, quote.client_id, part)
    if seen:
        await later(world, 2)
        await later(world, 2)
        assert world.engine.positions[BTC].state is PositionState.PROTECTED
    first_cancel_lost(world, quote.client_id)
    result = await world.command(kind, flatten=False)
    assert f"{BTC}: the LONG maker entry is being stopped: its quote {quote.client_id} is " \
        f"not known cancelled yet (Binance has not told); {part.normalize()} of " \
        f"{position.quantity.normalize()} filled so far: that position is open, protection " \
        "places its stop; the agent cancels it once Binance does and buys nothing more" \
        in result.lines, result.lines
    assert not any("was cancelled" in line for line in result.lines), result.lines
    await later(world, 2)           # the next tick cancels it (the price has not reached it)
    assert await live_quotes(world) == []
    for _ in range(4):
        await later(world, 12, price="99900")
    assert await live_quotes(world) == []
    await assert_protected_for(world, part)

"""The shortcuts of the path every replayed candle takes change nothing but the time taken:
the simulator's books kept per price and a flat account's balance give what computing them
anew gives (digit for digit: reprs, not only values); the candle parser's price texts read
once give the Decimals of their texts, also past the point where it forgets them; the feed
watchdog says it has issues exactly when its check reports some; a replay at speed 0 sets
the clock to each batch's close as sleeping until it would."""

import asyncio
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trader.exchange.sim as sim_module
from trader.clock import ManualClock
from trader.domain import ZERO, Balance, Candle, OrderRequest, OrderRole, OrderType, Side, utc
from trader.exchange.base import ExchangeError
from trader.exchange.sim import SimConfig, Simulator, rules_for
from trader.exchange.sim_ledger import isolated_margin, unrealized_pnl
from trader.exchange.sim_path import book_at
from trader.exchange.sim_rules import spread_for
from trader.exchange.sim_state import load_state
from trader.market import candle_csv
from trader.market.feed import FeedIssueKind, FeedMonitor
from trader.market.replay import YIELD_EVERY, ReplayFeed, load_candles

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BTC = "BTCUSDT"
FIVE_MINUTES = timedelta(minutes=5)
ZERO_TD = timedelta(0)

# equal values written differently (their books may differ in digits) and the same objects
# coming back: the cache must tell them apart by identity
MARKS = [D("0.5"), D("0.50"), D("0.500"), D("70000"), D("7E+4"), D("70000.0"), D("1.2345"),
         D("0.0001"), D("123.4")]
TICKS = [D("0.0001"), D("0.1"), D("0.5"), D("1")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(MARKS) - 1), st.integers(0, len(TICKS) - 1),
                          st.booleans()), min_size=1, max_size=40),
       st.sampled_from([D("0"), D("0.0002"), D("0.001"), D("0.05")]), st.integers(1, 4))
def test_a_kept_book_is_the_book_of_its_price_spread_and_tick(
        steps: list[tuple[int, int, bool]], spread: D, kept: int) -> None:
    sim = Simulator(SimConfig(spread={BTC: spread}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sim_module, "BOOKS_KEPT", kept)   # forgetting is exercised too
        for index, tick_index, fresh in steps:
            mark = D(str(MARKS[index])) if fresh else MARKS[index]   # a new object, or not
            sim.set_rules(replace(rules_for(BTC), tick_size=TICKS[tick_index]))
            sim.set_price(BTC, mark, T0)
            assert sim.mark_price(BTC) is mark
            expected = book_at(BTC, mark, spread_for(BTC, sim.config.spread), TICKS[tick_index])
            assert repr(sim.book(BTC)) == repr(expected)
            assert repr(sim.book(BTC)) == repr(expected)   # asked again: kept


def balance_from_scratch(sim: Simulator) -> Balance:
    ledger, unrealized, margins = sim.ledger, ZERO, ZERO
    for symbol, held in ledger.positions.items():
        mark = sim.prices.get(symbol)
        if mark is not None:
            unrealized += unrealized_pnl(held, mark)
        margins += isolated_margin(held, ledger.leverage(symbol))
    return Balance(ledger.wallet, unrealized, ledger.wallet - margins - sim._reserved_margin())


actions = st.one_of(
    st.tuples(st.just("price"), st.sampled_from(["69000", "70000", "70000.0", "71000.5"])),
    st.tuples(st.just("market"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 3)),
    st.tuples(st.just("round trip"), st.integers(1, 30)),   # opened and closed unseen
    st.tuples(st.just("limit"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 30)),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("funding"), st.sampled_from(["0.0001", "-0.0003"])),
    st.tuples(st.just("leverage"), st.sampled_from([5, 20, 125])),
)


def act(sim: Simulator, action: tuple, n: int, now: datetime) -> None:   # type: ignore[type-arg]
    kind = action[0]
    if kind == "price":
        sim.set_price(BTC, D(action[1]), now)
    elif kind == "market":
        sim.place(OrderRequest(BTC, action[1], OrderType.MARKET, D("0.001") * action[2],
                               f"m{n}", OrderRole.ENTRY), now)
    elif kind == "round trip":
        for side in (Side.BUY, Side.SELL):
            sim.place(OrderRequest(BTC, side, OrderType.MARKET, D("0.001") * action[1],
                                   f"r{n}{side.value}", OrderRole.ENTRY), now)
    elif kind == "limit":
        away = D("0.9") if action[1] is Side.BUY else D("1.1")
        price = rules_for(BTC).round_price(sim.mark_price(BTC) * away, up=False)
        sim.place(OrderRequest(BTC, action[1], OrderType.LIMIT, D("0.001") * action[2],
                               f"l{n}", OrderRole.ENTRY, price=price), now)
    elif kind == "cancel":
        for order in sim.open_orders(BTC)[:1]:
            sim.cancel(BTC, order.client_id, now)
    elif kind == "funding":
        sim.set_funding_rate(BTC, D(action[1]))
        sim.apply_funding(BTC, now)
    else:
        sim.set_leverage(BTC, action[1])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(actions, st.integers(0, 2)), min_size=1, max_size=30))
def test_a_kept_flat_balance_is_the_balance_computed_anew(script: list[tuple]) -> None:   # type: ignore[type-arg]
    sim = Simulator(SimConfig(balance=D("2000")))
    sim.set_price(BTC, D("70000"), T0)
    now = T0
    for n, (action, reads) in enumerate(script):
        with suppress(ExchangeError):   # refused (margin, leverage): nothing changed
            act(sim, action, n, now)
        for _ in range(reads):   # none (a change unseen), once, or again: the kept one
            assert repr(sim.balance()) == repr(balance_from_scratch(sim))
        now += FIVE_MINUTES


def test_a_kept_flat_balance_follows_a_wallet_changed_without_a_read() -> None:
    """A restored state sets the wallet directly (no fill, no account update reads it)."""
    sim = Simulator(SimConfig(balance=D("2000")))
    sim.set_price(BTC, D("70000"), T0)
    assert sim.balance().wallet == D("2000")
    state = sim.to_state()
    state["ledger"]["wallet"] = "1500.5"
    load_state(sim, state)
    assert repr(sim.balance()) == repr(balance_from_scratch(sim))
    assert sim.balance().available == D("1500.5")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["1", "1.0", "1.00", "1E0", "2", "2.0", "1.5"]),
                          st.sampled_from(["2", "2.0", "2.50", "25E-1"]),
                          st.sampled_from(["0.5", "0.50", "1", "1.0"]),
                          st.sampled_from(["1", "1.0", "2", "1.5", "1.50"])),
                min_size=1, max_size=40),
       st.integers(1, 5))
def test_price_texts_read_once_are_the_decimals_of_their_texts(
        tmp_path: Path, rows: list[tuple[str, str, str, str]], kept: int) -> None:
    ms0 = int(T0.timestamp() * 1000)
    path = tmp_path / "XRPUSDT-5m.csv"
    path.write_text("open_time,open,high,low,close\n" + "".join(
        f"{ms0 + n * 300_000},{','.join(row)}\n" for n, row in enumerate(rows)))
    expected = [Candle("XRPUSDT", utc(ms0 + n * 300_000), FIVE_MINUTES, *map(D, row))
                for n, row in enumerate(rows)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(candle_csv._Prices, "KEPT", kept)     # forgotten again and again
        assert repr(load_candles(path)) == repr(expected)


def test_a_bad_price_after_good_ones_is_reported_with_its_line_and_column(
        tmp_path: Path) -> None:
    ms0 = int(T0.timestamp() * 1000)
    path = tmp_path / "XRPUSDT-5m.csv"
    path.write_text("open_time,open,high,low,close\n"
                    f"{ms0},1,2,1,1.5\n{ms0 + 300_000},1.5,2,x1,1\n")
    with pytest.raises(ValueError, match=r"line 3: a price is not a number: low 'x1'"):
        load_candles(path)


def check_from_scratch(monitor: FeedMonitor, now: datetime) -> list[str]:
    """The symbols `check(now)` reports stale, found from the watch state as the check was
    written before it kept each symbol's stale time."""
    late = []
    for symbol, state in sorted(monitor._watch.items()):
        due = FeedMonitor._due(state)
        if due is not None and now > due + monitor.stale_after:
            late.append(symbol)
    return late


feed_steps = st.lists(st.tuples(st.sampled_from(["BTCUSDT", "ETHUSDT", "XRPUSDT"]),
                                st.sampled_from(["watch", "candle"]), st.integers(-2, 4),
                                st.integers(0, 700)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(feed_steps)
def test_the_feed_watchdog_has_issues_exactly_when_its_check_reports_some(
        steps: list[tuple[str, str, int, int]]) -> None:
    monitor = FeedMonitor()
    opens: dict[str, int] = {}
    now = T0
    for symbol, kind, skip, wait in steps:
        now += timedelta(seconds=wait)
        if kind == "watch":
            monitor.watch(symbol, now, FIVE_MINUTES)
        else:   # the next candle, a gap (skip > 1), or a repeated/backfilled one (skip < 1)
            opens[symbol] = opens.get(symbol, 0) + skip
            monitor.on_candle(symbol, Candle(symbol, T0 + opens[symbol] * FIVE_MINUTES,
                                             FIVE_MINUTES, D(1), D(1), D(1), D(1)), now)
        stale = check_from_scratch(monitor, now)
        said = monitor.has_issues(now)
        issues = monitor.check(now)
        assert said == bool(issues)
        assert [i.symbol for i in issues if i.kind is FeedIssueKind.STALE] == stale


def test_a_replay_at_speed_0_puts_the_clock_on_each_close_and_yields() -> None:
    """Other tasks get a turn every YIELD_EVERY batches (trader/market/replay.py)."""
    candles = [Candle(BTC, T0 + n * FIVE_MINUTES + (timedelta(hours=2) if n > 2 else ZERO_TD),
                      FIVE_MINUTES, D(1), D(1), D(1), D(1)) for n in range(3 * YIELD_EVERY)]
    clock = ManualClock(T0)
    yielded = 0

    async def other() -> None:      # another task runs between batches
        nonlocal yielded
        while True:
            yielded += 1
            await asyncio.sleep(0)

    async def replay() -> list[datetime]:
        task = asyncio.create_task(other())
        seen = [clock.now() async for _ in ReplayFeed({BTC: candles}, clock)]
        task.cancel()
        return seen

    assert asyncio.run(replay()) == [c.close_time for c in candles]
    assert yielded >= len(candles) // YIELD_EVERY - 1


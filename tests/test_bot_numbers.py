"""Numbers, durations and names the operator reads: prices on the tick, quantities on the
step, durations in words, plurals right, breakers named in words (trader/display.py), in the
replies and in the alert texts the engine writes."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.positions import make
from trader import guards
from trader.alerter import Alerter
from trader.clock import ManualClock
from trader.closing import Finalized
from trader.commands import CommandKind
from trader.display import breaker_label, duration, money, on_step, percent, plural, price
from trader.domain import CloseReason
from trader.guard_book import GuardBook
from trader.guard_state import GuardConfig, GuardState
from trader.position import PositionState
from trader.position_journal import PositionJournal
from trader.telemetry import Counters
from trader.trade_store import FundingPayment, TradeStore

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
XRP_TICK, XRP_STEP = Decimal("0.0001"), Decimal("0.1")


# --- the rules ----------------------------------------------------------------------------
def test_an_average_price_is_shown_on_the_symbols_tick():
    assert price(Decimal("1.190099986090393258157504712"), XRP_TICK) == "1.1901"
    assert price(Decimal("43210.55"), Decimal("0.10")) == "43,210.6"
    assert price(Decimal("43000.00"), Decimal("0.10")) == "43,000"
    assert price(Decimal("2.123456789123"), None) == "2.12345679"     # tick unknown: 8 places


@given(st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("1000000"), places=12,
                   allow_nan=False, allow_infinity=False),
       st.sampled_from([Decimal("0.1"), Decimal("0.10"), Decimal("0.0001"), Decimal("0.5"),
                        Decimal("1"), Decimal("0.001"), Decimal("10")]))
def test_on_step_is_the_nearest_multiple_of_the_step(value, step):
    shown = on_step(value, step)
    assert shown % step == 0
    assert abs(shown - value) <= step / 2
    assert -shown.as_tuple().exponent <= max(-step.normalize().as_tuple().exponent, 0)


@pytest.mark.parametrize(("span", "words"), [
    (timedelta(seconds=45), "45 s"), (timedelta(minutes=30), "30 min"),
    (timedelta(hours=2, minutes=5), "2 h 5 min"), (timedelta(hours=3), "3 h"),
    (timedelta(days=1, hours=4, minutes=9), "1 d 4 h"), (timedelta(days=2), "2 d")])
def test_durations_read_as_words(span, words):
    assert duration(span) == words


def test_plurals_and_signed_money_and_percent():
    assert [plural(n, "trade") for n in (0, 1, 2)] == ["0 trades", "1 trade", "2 trades"]
    assert plural(1, "position") == "1 position" and plural(3, "position") == "3 positions"
    assert money(Decimal("-0.001"), signed=True) == "+0.00"         # never "-0.00"
    assert money(Decimal("1234.565"), signed=True) == "+1,234.57"
    assert percent(Decimal("0.0049")) == "+0.49%" and percent(Decimal("-0.02")) == "-2.00%"


@pytest.mark.parametrize(("name", "words"), [
    ("crash:XRPUSDT", "crash breaker on XRPUSDT"), ("spread:BTCUSDT", "spread breaker on BTCUSDT"),
    ("funding:ETHUSDT", "funding-rate breaker on ETHUSDT"),
    ("regime:BTCUSDT", "volatility breaker on BTCUSDT"), ("api", "API-failure breaker (all symbols)")])
def test_breakers_are_named_in_words(name, words):
    assert breaker_label(name) == words


def test_guard_texts_name_breakers_in_words():
    state = GuardState(breakers={"crash:XRPUSDT": NOW + timedelta(minutes=10)})
    allowed, why = guards.allow_entry(state, "XRPUSDT", NOW)
    assert not allowed and why == "crash breaker on XRPUSDT active until 12:10 UTC"
    assert guards.describe(state, NOW) == ["crash breaker on XRPUSDT until 12:10 UTC"]
    _, events = guards.expire(state, NOW + timedelta(minutes=11))
    assert [e.text for e in events] == ["crash breaker on XRPUSDT cleared; entries allowed again"]
    assert "crash:" not in " ".join(e.text for e in events)


# --- in the alerts ----------------------------------------------------------------------------
def test_close_alert_rounds_the_exit_to_the_tick_and_says_net_of_fees_and_funding(tmp_path):
    store = TradeStore.open(tmp_path / "t.db")
    clock = ManualClock(NOW)
    alerter = Alerter(store, clock)
    book = GuardBook(store, alerter, clock, Counters(), GuardConfig())
    rules = {"XRPUSDT": type("Rules", (), {"tick_size": XRP_TICK, "step_size": XRP_STEP})()}
    journal = PositionJournal(store, alerter, book, clock, rules.__getitem__)
    opened = NOW - timedelta(minutes=30)
    store.record_funding(FundingPayment(NOW - timedelta(minutes=10), "XRPUSDT", Decimal("-0.05")))
    store.record_funding(FundingPayment(NOW - timedelta(hours=2), "XRPUSDT", Decimal("-9")))
    closed = make("XRPUSDT", state=PositionState.CLOSED, quantity="0", entry="1.2", stop="1.18",
                  tp="1.25", opened_at=opened, closed_at=NOW, close_reason=CloseReason.STOP_LOSS,
                  exit_price=Decimal("1.190099986090393258157504712"),
                  realized_pnl=Decimal("-9.9"), fees=Decimal("0.4"))
    journal.close(Finalized(closed, []))
    [alert] = [a for a in store.recent_alerts(5) if a.name == "CLOSE"]
    assert alert.text == ("XRPUSDT: LONG closed (STOP_LOSS) at 1.1901; PnL -10.35 USDT net "
                          "(fees 0.40, funding -0.05), held 30 min")
    store.close()


async def test_shutdown_and_wake_answers_use_plurals_and_durations_in_words(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_EMERGENCY_COOLDOWN_MINUTES="30")
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    asleep = await world.command(CommandKind.SHUTDOWN)
    assert "asleep: no new entries; 1 position stays protected by exchange-side orders" \
        in asleep.lines
    assert not any("position(s)" in line for line in asleep.lines)
    awake = await world.command(CommandKind.WAKE)
    assert "awake: trading resumes after a 30 min cooldown" in awake.lines
    assert not any("0:30:00" in line for line in awake.lines)
    assert SYMBOL in world.engine.positions


# --- periods: the table adds up to the whole ------------------------------------------------------
@given(st.lists(st.tuples(st.integers(0, 9 * 24 * 60), st.integers(1, 600),
                          st.decimals(-50, 50, places=2), st.decimals(0, 2, places=2)),
                max_size=12),
       st.lists(st.tuples(st.integers(0, 9 * 24 * 60), st.sampled_from(["XRPUSDT", ""]),
                          st.decimals(-3, 3, places=2)), max_size=8))
def test_daily_rows_add_up_to_the_period_and_work_back_the_wallet(trades, payments):
    from trader.trade_history import period_pnl, period_start, period_table
    now = datetime(2024, 5, 10, 23, 0, tzinfo=UTC)
    origin = period_start("day", now) - timedelta(days=9)
    closed = [make("XRPUSDT", state=PositionState.CLOSED, quantity="0", entry="1", stop="0.9",
                   tp="1.2", opened_at=origin + timedelta(minutes=at - held),
                   closed_at=origin + timedelta(minutes=at), close_reason=CloseReason.TAKE_PROFIT,
                   exit_price=Decimal("1.1"), realized_pnl=pnl, fees=fee)
              for at, held, pnl, fee in trades]
    funding = [FundingPayment(origin + timedelta(minutes=at), symbol, amount)
               for at, symbol, amount in payments]
    wallet = Decimal("1000")
    table = period_table("day", 10, closed, funding, now, wallet)
    whole = period_pnl("all", closed, funding, origin)
    assert [row.start for row in table.rows] == [(origin + timedelta(days=9 - n)).date()
                                                 for n in range(10)]
    assert sum((row.net for row in table.rows), Decimal(0)) == whole.net
    assert sum(row.trades for row in table.rows) == whole.trades == len(closed)
    start_wallet = wallet - whole.net          # each row's % is of the wallet at its start
    for row in reversed(table.rows):
        if row.fraction is not None:
            assert row.fraction == row.net / start_wallet
        start_wallet += row.net


def test_the_fill_alert_shows_the_average_price_on_the_tick_and_plain_quantities() -> None:
    """The state machine writes the FILL alert where the symbol's tick is not at hand: the
    average fill price takes the decimals of the stop (already on the tick)."""
    from trader.alerts import Alert, AlertName
    from trader.events import EntryFilled, Policy
    from trader.lifecycle import step
    entering = make(state=PositionState.ENTERING, quantity="0", live_legs=False,
                    stop="49500.0", tp="51000.0")
    result = step(entering, EntryFilled(Decimal("0.0100"), Decimal("50011.0499999")), NOW,
                  Policy())
    [fill] = [a for a in result.actions if isinstance(a, Alert) and a.name is AlertName.FILL]
    assert fill.text == "BTCUSDT: LONG 0.01 filled at 50,011; SL 49,500, TP 51,000"


@given(st.lists(st.tuples(st.sampled_from(["BTCUSDT", "XRPUSDT"]), st.integers(0, 600),
                          st.integers(1, 120)), max_size=12),
       st.lists(st.tuples(st.sampled_from(["BTCUSDT", "XRPUSDT", ""]), st.integers(0, 720),
                          st.decimals("-5", "5", places=8)), max_size=30))
def test_trades_with_funding_count_what_trade_funding_counts(spans, payments):
    """The fast attribution (prefix sums, bisect) equals the per-trade sum, boundaries
    included: a payment at the opening or closing moment belongs to the trade."""
    from trader.trade_history import trade_funding, trades_with_funding
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    closed = [make(symbol=symbol, state=PositionState.CLOSED, key=f"k{index}",
                   opened_at=origin + timedelta(minutes=start),
                   closed_at=origin + timedelta(minutes=start + length),
                   exit_price=Decimal("50100"), close_reason=CloseReason.TAKE_PROFIT)
              for index, (symbol, start, length) in enumerate(spans)]
    funding = [FundingPayment(origin + timedelta(minutes=at), symbol, amount)
               for symbol, at, amount in payments]
    records = trades_with_funding(closed, funding)
    assert [r.funding for r in records] == [trade_funding(p, funding) for p in closed]

"""Message text: escaping, compact views, splitting under Telegram's limit, command-line parsing.

Telegram's own HTML rules are checked with the fake server's parser, which refuses what the
real Bot API refuses (unknown tags, unbalanced tags, bare <, > or &).
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.format import (
    escape,
    format_alert,
    format_pnl,
    format_result,
    format_status,
    split_message,
    utf16_length,
)
from bot.parsing import UsageError, command_name, parse_command, parse_duration
from tests.engine_world import make_world
from tests.fakes.telegram_html import ApiError, parse_telegram_html
from tests.test_bot_support import RecordingEngine, position
from trader.alerts import OutgoingAlert
from trader.commands import ALL_SYMBOLS, CommandKind, CommandResult, PnlView
from trader.views import status_view

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def plain(html_text: str) -> str:
    return parse_telegram_html(html_text)


# --- escaping and views -------------------------------------------------------------------------------
def test_escape_makes_html_characters_literal():
    assert plain(escape("qty < min & price > cap")) == "qty < min & price > cap"
    assert plain(escape("<b>not bold</b>")) == "<b>not bold</b>"


def test_unescaped_text_is_what_telegram_would_refuse():
    with pytest.raises(ApiError, match="can't parse entities"):
        plain("qty < min")
    with pytest.raises(ApiError):
        plain("<b>open")


def test_status_escapes_odd_symbols_breakers_and_errors():
    status = RecordingEngine(SYMBOLS).status()
    odd = position("A<B&C>USDT")
    status = replace(status, positions=[odd], breakers=["spread > 0.1% until 12:30"],
                     last_error="Binance -2019: margin < required & <b>",
                     paused_until=NOW + timedelta(hours=2), run_state="paused")
    shown = plain(format_status(status))
    assert "A<B&C>USDT LONG" in shown
    assert "Breakers spread > 0.1% until 12:30" in shown
    assert "Last error Binance -2019: margin < required & <b>" in shown
    assert "paused until 14:00 UTC" in shown


def test_status_says_when_the_exchange_api_is_paused_by_a_rate_limit():
    status = replace(RecordingEngine(SYMBOLS).status(),
                     api_circuit="rate limited (HTTP 429, code -1003) on position; requests "
                                 "resume at 12:00:04 UTC")
    shown = plain(format_status(status))
    assert "Exchange API paused rate limited (HTTP 429, code -1003)" in shown
    assert "Exchange API paused" not in plain(format_status(RecordingEngine(SYMBOLS).status()))


def test_status_says_the_positions_are_as_last_seen_while_the_exchange_fails():
    """Every REST path answering 503: /status still showed "SL ... ✅ PROTECTED" with
    nothing saying the view was old (found by a reviewer); it now says so above the
    positions. The negative: no failures, no such line."""
    failing = replace(RecordingEngine(SYMBOLS).status(), exchange_failures=6)
    shown = plain(format_status(failing))
    warning = "⚠️ Exchange not answering: 6 failures in a row; positions and orders below " \
              "are as last seen"
    assert warning in shown
    assert shown.index(warning) < shown.index("BTCUSDT LONG")
    assert "Exchange not answering" not in plain(format_status(RecordingEngine(SYMBOLS).status()))


async def test_the_status_view_counts_the_exchanges_failures_in_a_row(tmp_path):
    world = await make_world(tmp_path)
    assert status_view(world.engine).exchange_failures == 0
    world.engine.guard_state = replace(world.engine.guard_state, api_failures=4)
    assert status_view(world.engine).exchange_failures == 4


def test_position_line_says_whether_each_protective_leg_is_attached():
    shown = plain(format_status(RecordingEngine(SYMBOLS).status()))
    assert "SL 42,500 (-1.64%) ✅" in shown
    assert "TP 44,000 (+1.83%) ❌ not attached" in shown


def test_position_line_shows_pnl_percent_distance_to_each_leg_and_time_in_trade():
    """A long 0.01 @ 43,000 marked at 43,210.5: +0.49 % in its favour; the stop is 1.64 %
    below the mark, the target 1.83 % above; opened 2 h 5 min ago."""
    view = replace(position(), age=timedelta(hours=2, minutes=5))
    status = replace(RecordingEngine(SYMBOLS).status(), positions=[view])
    shown = plain(format_status(status))
    assert "PnL +2.11 (+0.49%) · 2 h 5 min" in shown
    short = replace(view, side="SHORT", unrealized_pnl=Decimal("-2.105"),
                    stop_trigger=Decimal("43500"), take_profit_trigger=Decimal("42000"),
                    age=timedelta(minutes=30))
    shown = plain(format_status(replace(status, positions=[short])))
    assert "PnL -2.11 (-0.49%) · 30 min" in shown
    assert "SL 43,500 (+0.67%)" in shown and "TP 42,000 (-2.80%)" in shown


def test_pnl_realised_is_net_of_fees_and_funding_with_its_parts_and_win_rate():
    shown = plain(format_pnl(PnlView("week", Decimal("100"), Decimal("4.5"), Decimal("-1.25"), 8, 6)))
    assert "PnL · last 7 days" in shown
    assert "Realised +94.25 USDT net of fees and funding" in shown
    assert "gross +100.00 · fees -4.50 · funding -1.25" in shown
    assert "8 trades · 6 won (75%)" in shown
    one = plain(format_pnl(PnlView("day", Decimal("1"), Decimal("0"), Decimal("0"), 1, 1)))
    assert "1 trade · 1 won (100%)" in one
    assert "unknown" not in one


def test_pnl_names_the_trades_whose_result_is_unknown():
    """A close whose fills could not be read has no PnL to add: /pnl says it left it out."""
    shown = plain(format_pnl(PnlView("day", Decimal("1"), Decimal("0"), Decimal("0"), 1, 1,
                                     unknown=2)))
    assert ("+ 2 trades closed with an unknown result (closing fills not read), not counted: "
            "see /trades and the Binance app") in shown


def test_a_trade_whose_result_is_unknown_is_listed_without_a_made_up_result():
    from bot.format_history import format_trades
    from trader.commands import TradeView
    trade = TradeView("BTCUSDT", "LONG", Decimal("0.01"), Decimal("50000"), None,
                      NOW - timedelta(minutes=5), NOW, None, None, "STOP_LOSS")
    shown = plain(format_trades([trade]))
    assert ("05-01 12:00 BTCUSDT LONG 0.01 · 50,000 → ? · PnL unknown (closing fills not "
            "read: see the Binance app) · STOP_LOSS · 5 min") in shown


def test_critical_alert_is_marked_prominently_and_info_is_not():
    critical = OutgoingAlert(1, NOW, "SL_MISSING", "CRITICAL", "BTCUSDT", "no stop for 3 cycles")
    info = OutgoingAlert(2, NOW, "FILL", "INFO", "BTCUSDT", "filled <ok>")
    assert plain(format_alert(critical)).startswith("🚨🚨 CRITICAL: SL_MISSING · BTCUSDT")
    assert "CRITICAL" not in plain(format_alert(info))
    assert "filled <ok>" in plain(format_alert(info))
    assert "01 May 12:00:00 UTC" in plain(format_alert(info))


def test_failed_and_duplicate_results_say_so():
    failed = format_result(CommandKind.CLOSE, CommandResult(False, ["rejected: -2019 <margin>"]))
    assert plain(failed) == "⚠️ Close: failed\nrejected: -2019 <margin>"
    duplicate = format_result(CommandKind.CLOSE, CommandResult(True, ["x"], duplicate=True))
    assert "Already done" in plain(duplicate)


# --- splitting ---------------------------------------------------------------------------------------
def test_short_text_is_one_part_unchanged():
    assert split_message("<b>hi</b>\nthere") == ["<b>hi</b>\nthere"]


def test_long_text_is_cut_at_line_boundaries_under_the_limit():
    lines = [f"line {n:03d} " + "x" * 40 for n in range(300)]
    parts = split_message("\n".join(lines), limit=1000)
    assert len(parts) > 10
    assert all(utf16_length(part) <= 1000 for part in parts)
    assert [line for part in parts for line in part.split("\n")] == lines


def test_tags_open_at_a_cut_are_closed_and_reopened():
    text = "<b>" + "\n".join(f"bold line {n}" for n in range(100)) + "</b>"
    parts = split_message(text, limit=200)
    assert len(parts) > 1
    for part in parts:
        plain(part)        # valid HTML on its own
        assert part.startswith("<b>") and part.endswith("</b>")


def test_a_single_huge_line_is_cut_without_breaking_entities():
    text = "&amp;" * 3000
    parts = split_message(text, limit=4096)
    assert all(utf16_length(part) <= 4096 for part in parts)
    assert "".join(plain(part) for part in parts) == "&" * 3000


def test_emoji_count_double_like_telegram_counts_them():
    parts = split_message("🚨" * 3000)
    assert len(parts) == 2
    assert all(utf16_length(part) <= 4096 for part in parts)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "b", "i", "code"]),
                          st.text(alphabet="ab <&>🚨é\t", max_size=300)), max_size=60),
       st.integers(min_value=80, max_value=5000))
def test_every_part_is_valid_html_under_the_limit_and_nothing_is_lost(lines, limit):
    html_lines = [f"<{tag}>{escape(text)}</{tag}>" if tag else escape(text) for tag, text in lines]
    text = "\n".join(html_lines)
    parts = split_message(text, limit)
    assert all(utf16_length(part) <= limit for part in parts)
    shown = "".join(plain(part) for part in parts)
    original = plain(text)
    assert "".join(shown.split()) == "".join(original.split())


# --- parsing command lines ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("1d", timedelta(days=1)),
    ("90M", timedelta(minutes=90)), ("30d", timedelta(days=30)),
])
def test_durations_in_minutes_hours_and_days(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "h", "2 h", "1.5h", "-1h", "0m", "31d", "2w", "soon"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_close_accepts_known_symbols_in_any_case_and_all():
    assert parse_command("close", ["ethusdt"], SYMBOLS).symbol == "ETHUSDT"
    assert parse_command("close", ["All"], SYMBOLS).symbol == ALL_SYMBOLS


def test_close_accepts_a_symbol_the_agent_does_not_trade():
    """/close closes a position opened by hand on any symbol (README); `/close DOGEUSDT`
    answered "unknown symbol". The engine says "nothing to close" when none is open there."""
    assert parse_command("close", ["dogeusdt"], SYMBOLS).symbol == "DOGEUSDT"
    assert parse_command("close", ["1000PEPEUSDT"], SYMBOLS).symbol == "1000PEPEUSDT"


@pytest.mark.parametrize(("name", "args", "problem"), [
    ("close", [], "name one symbol or all"),
    ("close", ["DOGE/USDT"], "unknown symbol DOGE/USDT"),
    ("close", ["BTCUSDT", "now"], "too many words"),
    ("pnl", ["year"], "unknown period year"),
    ("daily", ["0"], "n is a number from 1 to 90"),
    ("trades", ["51"], "n is a number from 1 to 50"),
    ("logs", ["ten"], "n is a number from 1 to 50"),
    ("long", [], "name one symbol"),
    ("short", ["DOGEUSDT"], "unknown symbol DOGEUSDT"),
    ("unlock", ["all"], "unknown symbol all"),
    ("pause", ["BTCUSDT", "2h", "now"], "too many words"),
    ("pause", ["2h", "3h"], "one duration only"),
    ("status", ["please"], "/status takes no arguments"),
])
def test_bad_arguments_give_a_one_line_usage(name, args, problem):
    with pytest.raises(UsageError) as caught:
        parse_command(name, args, SYMBOLS)
    assert problem in caught.value.text and "Usage: /" in caught.value.text
    assert "\n" not in caught.value.text


def test_command_name_ignores_the_bot_mention_and_case():
    assert command_name("/Close@tradebot_test_bot BTCUSDT") == "close"


# --- money views -------------------------------------------------------------------------------
def test_period_table_lines_up_dates_trades_net_and_percent():
    from datetime import date

    from bot.format_history import format_table
    from trader.commands import PeriodRow, PeriodTable
    table = PeriodTable("day", [PeriodRow(date(2024, 5, 1), 3, Decimal("12.4"), Decimal("0.00124")),
                                PeriodRow(date(2024, 4, 30), 0, Decimal("0"), None),
                                PeriodRow(date(2024, 4, 29), 1, Decimal("-1000.5"),
                                          Decimal("-0.0909"))])
    shown = plain(format_table(table))
    rows = shown.splitlines()
    assert rows[0] == "Daily PnL (UTC, net of fees and funding)"
    assert rows[2].split() == ["2024-05-01", "3", "+12.40", "+0.12%"]
    assert rows[3].split() == ["2024-04-30", "0", "+0.00", "-"]
    assert rows[4].split() == ["2024-04-29", "1", "-1,000.50", "-9.09%"]
    assert len({len(row) for row in rows[1:5]}) == 1          # columns line up in <pre>
    assert rows[-1] == "Total -988.10 USDT over 4 trades"
    monthly = plain(format_table(PeriodTable("month", [PeriodRow(date(2024, 5, 1), 1,
                                                                  Decimal("1"), None)])))
    assert "2024-05 " in monthly and "Total +1.00 USDT over 1 trade" in monthly


def test_performance_trades_logs_and_settings_escape_what_they_show():
    from bot.format_history import format_logs, format_performance, format_settings, format_trades
    from trader.commands import LogLine, PerformanceRow, TradeView
    odd = "A<B&C>USDT"
    rows = [PerformanceRow(odd, 2, 1, Decimal("5"), Decimal("1"), Decimal("-0.2"), Decimal("7"),
                           Decimal("-2")),
            PerformanceRow("", 0, 0, Decimal("-0.3"), Decimal("0"), Decimal("-0.3"), Decimal("0"),
                           Decimal("0"))]
    shown = plain(format_performance(rows))
    assert [odd, "2", "50%", "+5.00"] in [row.split() for row in shown.splitlines()]
    assert "funding*" in shown and "without naming a position" in shown
    trade = TradeView(odd, "SHORT", Decimal("0.5"), Decimal("1.2"), Decimal("1.19"),
                      NOW - timedelta(minutes=65), NOW, Decimal("0.004"), Decimal("0.0067"),
                      "TAKE_PROFIT")
    shown = plain(format_trades([trade, trade]))
    assert shown.splitlines()[0] == "Last 2 trades (net of fees and funding)"
    assert (f"05-01 12:00 {odd} SHORT 0.5 · 1.2 → 1.19 · +0.00 USDT (+0.67%) · TAKE_PROFIT · "
            "1 h 5 min") in shown
    logs = plain(format_logs([LogLine(NOW, "ERROR", "trader.engine", "qty < min & <b>")]))
    assert logs.splitlines() == ["Last 1 warning or error",
                                 "01 May 12:00:00 ❗ trader.engine: qty < min & <b>"]
    assert "no warnings or errors" in plain(format_logs([]))
    assert "X=<&>" in plain(format_settings({"X": "<&>"}))


def test_balance_view_reads_as_sentences():
    from bot.format_history import format_balance
    from trader.commands import BalanceView
    view = BalanceView(Decimal("10000"), Decimal("-12.345"), Decimal("9987.655"), Decimal("9000"),
                       NOW, PnlView("today", Decimal("3"), Decimal("1"), Decimal("-0.5"), 1, 1), 1)
    assert plain(format_balance(view)).splitlines() == [
        "Balance (read 12:00:00 UTC)", "Wallet 10,000.00 USDT · unrealised -12.35",
        "Equity 9,987.66 USDT · free margin 9,000.00",
        "Today realised +1.50 USDT net (1 trade) · 1 open position"]

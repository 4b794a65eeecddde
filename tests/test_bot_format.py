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
from bot.handlers import UsageError, command_name, parse_command, parse_duration
from tests.fakes.telegram_html import ApiError, parse_telegram_html
from tests.test_bot_support import RecordingEngine, position
from trader.alerts import OutgoingAlert
from trader.commands import ALL_SYMBOLS, CommandKind, CommandResult, PnlView

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


def test_position_line_says_whether_each_protective_leg_is_attached():
    view = position()
    shown = plain(format_status(RecordingEngine(SYMBOLS).status()))
    assert f"SL {view.stop_trigger:,} ✅" in shown
    assert "TP 44,000 ❌ not attached" in shown


def test_pnl_shows_net_after_fees_and_funding_and_win_rate():
    shown = plain(format_pnl(PnlView("week", Decimal("100"), Decimal("4.5"), Decimal("-1.25"), 8, 6)))
    assert "Realised +100.00 · fees 4.50 · funding -1.25" in shown
    assert "Net +94.25 USDT · 8 trades · win rate 75%" in shown


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


@pytest.mark.parametrize(("name", "args", "problem"), [
    ("close", [], "name one symbol or all"),
    ("close", ["DOGEUSDT"], "unknown symbol DOGEUSDT"),
    ("close", ["BTCUSDT", "now"], "too many words"),
    ("pnl", ["month"], "unknown period month"),
    ("status", ["please"], "/status takes no arguments"),
])
def test_bad_arguments_give_a_one_line_usage(name, args, problem):
    with pytest.raises(UsageError) as caught:
        parse_command(name, args, SYMBOLS)
    assert problem in caught.value.text and "Usage: /" in caught.value.text
    assert "\n" not in caught.value.text


def test_command_name_ignores_the_bot_mention_and_case():
    assert command_name("/Close@tradebot_test_bot BTCUSDT") == "close"

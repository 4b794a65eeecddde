"""Every Telegram command, through the real python-telegram-bot and the fake Bot API server.

Assertions are on what Telegram shows and on which commands reached the engine.
"""

import asyncio
import io
import time
from datetime import timedelta

import aiohttp
import matplotlib.image
import pytest
from PIL import Image

from bot.handlers import USAGE
from tests.fakes.telegram_server import PNG_SIGNATURE, FakeTelegram, SentItem, utf16_length
from tests.test_bot_support import (
    GROUP,
    MEMBER,
    OWNER,
    START,
    RecordingEngine,
    ask,
    position,
)
from trader.clock import ManualClock
from trader.commands import ALL_SYMBOLS, CommandKind, CommandResult

pytest_plugins = ["tests.test_bot_support"]
pytestmark = pytest.mark.usefixtures("bot")


async def prompt_for(telegram: FakeTelegram, text: str, chat: int = OWNER,
                     user: int | None = None) -> SentItem:
    prompt = await ask(telegram, text, chat, user)
    assert prompt.buttons, f"expected confirmation buttons, got {prompt.plain!r}"
    return prompt


def button(prompt: SentItem, label_start: str) -> str:
    return next(data for label, data in prompt.buttons if label.startswith(label_start))


async def press(telegram: FakeTelegram, prompt: SentItem, label_start: str,
                user: int | None = None) -> SentItem:
    """Press a button and return Telegram's callback answer (the toast the user sees)."""
    since = len(telegram.sent)
    query_id = telegram.press_button(prompt.chat_id or OWNER, user or prompt.chat_id or OWNER,
                                     prompt.message_id or 0, button(prompt, label_start))
    return await telegram.wait_for(lambda item: item.callback_query_id == query_id, since=since)


async def next_reply(telegram: FakeTelegram, chat: int, since: int, containing: str) -> SentItem:
    return await telegram.wait_for(
        lambda item: item.chat_id == chat and item.method == "sendMessage"
        and containing in (item.plain or ""), since=since)


# --- read-only commands ---------------------------------------------------------------------
async def test_status_shows_mode_equity_positions_protection_and_uptime(telegram, engine):
    reply = await ask(telegram, "/status")
    assert reply.parse_mode == "HTML"
    for fact in ("paper", "running", "up 3 h 12 min", "Equity 10,090.12 USDT", "free margin 9,004.50",
                 "BTCUSDT LONG 0.01 @ 43,000 → 43,210.5", "PnL +2.11 (+0.49%)",
                 "SL 42,500 (-1.64%) ✅", "TP 44,000 (+1.83%) ❌ not attached",
                 "BTCUSDT trend", "Cooldowns ETHUSDT until 12:05 UTC", "Breakers none",
                 "Last error none"):
        assert fact in reply.plain
    [command] = engine.received
    assert command.kind is CommandKind.STATUS
    assert command.command_id == f"tg:{OWNER}:{reply.message_id - 1}"
    assert command.issued_at == START


async def test_positions_lists_each_position_with_its_stop_and_target(telegram, engine):
    engine.positions = [position("BTCUSDT"), position("ETHUSDT")]
    reply = await ask(telegram, "/positions")
    assert "Positions (2)" in reply.plain
    assert reply.plain.index("BTCUSDT") < reply.plain.index("ETHUSDT")
    assert reply.plain.count("SL 42,500") == 2
    assert [c.kind for c in engine.received] == [CommandKind.POSITIONS]


@pytest.mark.parametrize(("text", "period", "shown"), [
    ("/pnl", "day", "last 24 h"), ("/pnl week", "week", "last 7 days"),
    ("/pnl month", "month", "last 30 days"), ("/pnl ALL", "all", "all time"),
    ("/profit", "day", "last 24 h"), ("/profit month", "month", "last 30 days")])
async def test_pnl_and_its_alias_profit_report_realised_net_of_fees_and_funding(
        telegram, engine, text, period, shown):
    reply = await ask(telegram, text)
    assert f"PnL · {shown}" in reply.plain
    assert "Realised +11.20 USDT net of fees and funding" in reply.plain
    assert "gross +12.50 · fees -1.20 · funding -0.10" in reply.plain
    assert "5 trades · 3 won (60%)" in reply.plain
    assert [(c.kind, c.period) for c in engine.received] == [(CommandKind.PNL, period)]


async def test_chart_sends_a_png_that_decodes(telegram, engine):
    reply = await ask(telegram, "/chart")
    assert reply.method == "sendPhoto"
    assert reply.photo is not None and reply.photo.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(reply.photo)) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 100
    pixels = matplotlib.image.imread(io.BytesIO(reply.photo), format="png")
    assert pixels.ndim == 3
    assert "max drawdown" in reply.plain
    assert [c.kind for c in engine.received] == [CommandKind.CHART]


async def test_chart_without_data_answers_in_text(telegram, engine):
    engine.next_result = CommandResult(True, lines=["no equity recorded yet"])
    reply = await ask(telegram, "/chart")
    assert reply.method == "sendMessage"
    assert "no equity recorded yet" in reply.plain


async def test_alerts_lists_recent_alerts(telegram, engine):
    reply = await ask(telegram, "/alerts")
    assert "Recent alerts (1)" in reply.plain
    assert "FILL BTCUSDT: LONG 0.010 filled at 43,000" in reply.plain


async def test_help_lists_every_command_in_groups_without_asking_the_engine(telegram, engine):
    reply = await ask(telegram, "/help")
    for name in USAGE:
        assert f"/{name}" in reply.plain
    shown = reply.plain
    assert shown.index("Watch") < shown.index("/status") < shown.index("Results") \
        < shown.index("/daily [n]") < shown.index("Trade") < shown.index("/long SYMBOL") \
        < shown.index("Agent") < shown.index("/version")
    assert engine.received == []


async def test_command_menu_is_registered_at_start_without_aliases(telegram):
    menu = {c["command"] for c in telegram.commands}
    assert menu == set(USAGE) - {"start", "profit"}
    assert {"balance", "daily", "weekly", "monthly", "performance", "trades", "logs",
            "version", "config", "long", "short", "unlock"} <= menu


async def test_start_answers_a_short_status_and_the_command_list(telegram, engine):
    reply = await ask(telegram, "/start")
    first = reply.plain.splitlines()[0]
    assert first == "tradebot · paper · running · equity 10,090.12 USDT · 1 open position"
    assert "BTCUSDT LONG PnL +2.11 (+0.49%)" in reply.plain
    assert "/status" in reply.plain and "/long SYMBOL" in reply.plain
    assert "Unknown command" not in reply.plain
    assert [c.kind for c in engine.received] == [CommandKind.STATUS]


async def test_unknown_command_points_to_help(telegram, engine):
    reply = await ask(telegram, "/moon")
    assert "/help" in reply.plain
    assert engine.received == []


async def test_allowed_member_of_allowed_group_is_obeyed(telegram, engine):
    reply = await ask(telegram, "/status@tradebot_test_bot", chat=GROUP, user=MEMBER)
    assert "running" in reply.plain
    assert [c.kind for c in engine.received] == [CommandKind.STATUS]


# --- direct actions ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "kind", "duration", "shown"), [
    ("/pause", CommandKind.PAUSE, None, "entries paused until /resume"),
    ("/pause 30m", CommandKind.PAUSE, timedelta(minutes=30), "until 12:30 UTC"),
    ("/pause 2h", CommandKind.PAUSE, timedelta(hours=2), "until 14:00 UTC"),
    ("/pause 1d", CommandKind.PAUSE, timedelta(days=1), "until 12:00 UTC"),
    ("/resume", CommandKind.RESUME, None, "resume: done"),
    ("/wake", CommandKind.WAKE, None, "wake: done"),
])
async def test_pause_resume_and_wake_are_executed_and_reported(telegram, engine, text, kind,
                                                               duration, shown):
    reply = await ask(telegram, text)
    assert "done" in reply.plain and shown in reply.plain
    [command] = engine.received
    assert (command.kind, command.duration) == (kind, duration)


@pytest.mark.parametrize("text", [
    "/status now", "/positions all", "/close", "/close DOGE/USDT", "/close BTCUSDT ETHUSDT",
    "/pnl year", "/pnl day week", "/profit month all", "/daily 0", "/daily 91",
    "/weekly x", "/monthly 25", "/trades 1.5", "/logs 51", "/logs -1", "/performance BTCUSDT",
    "/version now", "/config all", "/balance BTCUSDT", "/long", "/long DOGEUSDT",
    "/short BTCUSDT now", "/unlock", "/unlock all", "/pause DOGEUSDT", "/pause 2h 3h",
    "/resume DOGEUSDT", "/pause soon", "/pause 0m", "/pause 45d", "/pause 2h now",
    "/wake up", "/shutdown now", "/resume 1", "/chart big", "/alerts 5",
])
async def test_bad_arguments_get_a_one_line_usage_and_execute_nothing(telegram, engine, text):
    reply = await ask(telegram, text)
    assert "Usage: /" in reply.plain
    assert "\n" not in reply.plain
    assert not reply.buttons
    assert engine.received == []


async def test_slow_engine_still_gets_an_answer_within_a_second(telegram, engine):
    engine.delay = 0.8
    started = time.monotonic()
    first = await ask(telegram, "/wake")
    assert time.monotonic() - started < 1.0
    assert "Working on it" in first.plain
    await next_reply(telegram, OWNER, 0, "wake: done")


async def test_engine_failure_is_reported_not_swallowed(telegram, engine):
    engine.next_result = CommandResult(False, lines=["reconcile failed: exchange timeout"])
    reply = await ask(telegram, "/wake")
    assert "Wake: failed" in reply.plain and "exchange timeout" in reply.plain


# --- confirmations ------------------------------------------------------------------------------
async def test_close_asks_for_confirmation_then_closes_once_and_reports_the_fill(telegram, engine):
    prompt = await prompt_for(telegram, "/close btcusdt")
    assert "Close BTCUSDT at market?" in prompt.plain
    assert [label for label, _ in prompt.buttons] == ["Close BTCUSDT", "Cancel"]
    assert engine.received == []
    since = len(telegram.sent)
    await press(telegram, prompt, "Close")
    result = await next_reply(telegram, OWNER, since, "final state: flat")
    assert "Close: done" in result.plain and "filled at 43,205.1" in result.plain
    assert "TP and SL" in result.plain
    [command] = engine.received
    assert (command.kind, command.symbol) == (CommandKind.CLOSE, "BTCUSDT")
    assert "reply_markup" not in telegram.message(OWNER, prompt.message_id)


async def test_close_all_closes_every_position(telegram, engine):
    engine.positions = [position("BTCUSDT"), position("ETHUSDT")]
    prompt = await prompt_for(telegram, "/close all")
    assert "Close all positions at market?" in prompt.plain
    since = len(telegram.sent)
    await press(telegram, prompt, "Close all")
    result = await next_reply(telegram, OWNER, since, "final state")
    assert "BTCUSDT closed" in result.plain and "ETHUSDT closed" in result.plain
    assert [(c.kind, c.symbol) for c in engine.received] == [(CommandKind.CLOSE, ALL_SYMBOLS)]


async def test_cancel_executes_nothing(telegram, engine):
    prompt = await prompt_for(telegram, "/close BTCUSDT")
    answer = await press(telegram, prompt, "Cancel")
    assert answer.text == "Cancelled."
    edit = await telegram.wait_for(lambda item: item.method == "editMessageText"
                                   and item.message_id == prompt.message_id)
    assert edit.plain == "Cancelled: nothing was done." and not edit.buttons
    assert engine.received == []


async def test_confirmation_expires_after_60_seconds(telegram, engine, clock: ManualClock):
    prompt = await prompt_for(telegram, "/close BTCUSDT")
    clock.advance(61)
    edit = await telegram.wait_for(lambda item: item.method == "editMessageText"
                                   and item.message_id == prompt.message_id)
    assert edit.plain == "Expired, send /close again."
    assert not edit.buttons
    answer = await press(telegram, prompt, "Close")
    assert "Expired, send /close again." in answer.text
    assert engine.received == []


async def test_press_just_before_expiry_still_counts(telegram, engine, clock: ManualClock):
    prompt = await prompt_for(telegram, "/close BTCUSDT")
    clock.advance(59)
    await press(telegram, prompt, "Close")
    await next_reply(telegram, OWNER, 0, "final state")
    assert [c.kind for c in engine.received] == [CommandKind.CLOSE]


async def test_repeated_press_of_the_same_button_does_nothing_twice(telegram, engine):
    prompt = await prompt_for(telegram, "/close BTCUSDT")
    await press(telegram, prompt, "Close")
    await next_reply(telegram, OWNER, 0, "final state")
    again = await press(telegram, prompt, "Close")
    assert again.text == "Already done."
    after_cancel = await press(telegram, prompt, "Cancel")
    assert after_cancel.text == "Already done."
    assert len(engine.executed(CommandKind.CLOSE)) == 1


async def test_two_presses_arriving_together_execute_once(telegram, engine):
    engine.delay = 0.2
    prompt = await prompt_for(telegram, "/close BTCUSDT")
    data = button(prompt, "Close")
    first = telegram.press_button(OWNER, OWNER, prompt.message_id, data)
    second = telegram.press_button(OWNER, OWNER, prompt.message_id, data)
    answers = [await telegram.wait_for(lambda item, q=q: item.callback_query_id == q)
               for q in (first, second)]
    await next_reply(telegram, OWNER, 0, "final state")
    assert sorted(a.text for a in answers) == ["Already done.", "Working on it…"]
    assert len(engine.executed(CommandKind.CLOSE)) == 1


@pytest.mark.parametrize(("label", "flatten", "shown"), [
    ("Flatten everything", True, "all positions closed"),
    ("Keep positions protected", False, "positions kept with TP/SL"),
])
async def test_shutdown_offers_flatten_or_keep_and_reports_what_was_done(telegram, engine, label,
                                                                          flatten, shown):
    prompt = await prompt_for(telegram, "/shutdown")
    assert [name for name, _ in prompt.buttons] == [
        "Flatten everything and sleep", "Keep positions protected and sleep", "Cancel"]
    since = len(telegram.sent)
    await press(telegram, prompt, label)
    result = await next_reply(telegram, OWNER, since, "asleep")
    assert shown in result.plain and "entry orders cancelled" in result.plain
    [command] = engine.received
    assert (command.kind, command.flatten) == (CommandKind.SHUTDOWN, flatten)


async def test_shutdown_cancel_keeps_running(telegram, engine):
    prompt = await prompt_for(telegram, "/shutdown")
    await press(telegram, prompt, "Cancel")
    await asyncio.sleep(0.1)
    assert engine.received == []


# --- staleness, splitting, escaping -----------------------------------------------------------------
async def test_command_that_waited_while_the_agent_was_down_is_not_executed(telegram, engine):
    reply = await ask(telegram, "/close BTCUSDT", date=START - timedelta(minutes=5))
    assert "waited 5 min while the agent was down" in reply.plain
    assert "not executed" in reply.plain and "Send it again" in reply.plain
    assert not reply.buttons
    assert engine.received == []


async def test_command_59_seconds_old_is_still_executed(telegram, engine):
    await ask(telegram, "/status", date=START - timedelta(seconds=59))
    assert [c.kind for c in engine.received] == [CommandKind.STATUS]


async def test_long_answer_is_split_under_the_telegram_limit_never_rejected(telegram, engine):
    engine.positions = [position(f"COIN{n:03d}USDT") for n in range(120)]
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, "/positions")
    await telegram.wait_for(lambda item: "COIN119USDT" in (item.plain or ""), since=since)
    parts = [item for item in telegram.sent[since:] if item.method == "sendMessage"]
    assert len(parts) >= 3
    assert all(utf16_length(part.text) <= 4096 for part in parts)
    shown = "\n".join(part.plain for part in parts)
    assert [f"COIN{n:03d}USDT" in shown for n in range(120)] == [True] * 120
    assert shown.index("COIN000USDT") < shown.index("COIN119USDT")


async def test_odd_symbol_names_and_error_texts_are_escaped(telegram, engine: RecordingEngine):
    odd = "A<B&C>USDT"
    engine.symbols.append(odd)
    engine.positions = [position(odd)]
    reply = await ask(telegram, "/positions")
    assert f"{odd} LONG" in reply.plain
    prompt = await prompt_for(telegram, "/close a<b&c>usdt")
    assert f"Close {odd} at market?" in prompt.plain
    unknown = await ask(telegram, "/close <b>&amp;")
    assert "unknown symbol <b>&amp;" in unknown.plain
    engine.next_result = CommandResult(False, lines=["order rejected: qty < min & price > cap"])
    failed = await ask(telegram, "/resume")
    assert "order rejected: qty < min & price > cap" in failed.plain


async def test_fake_server_control_endpoints_drive_the_bot_over_http(telegram, engine):
    """What a test uses when the agent runs as a subprocess."""
    async with aiohttp.ClientSession(telegram.base_url) as http:
        async with http.post("/_control/inject", json={"chat_id": OWNER, "user_id": OWNER,
                                                       "text": "/close BTCUSDT"}) as answer:
            assert (await answer.json())["message_id"] > 0
        prompt = await telegram.wait_for(lambda item: bool(item.buttons))
        async with http.post("/_control/press", json={
                "chat_id": OWNER, "user_id": OWNER, "message_id": prompt.message_id,
                "callback_data": button(prompt, "Close")}) as answer:
            assert answer.status == 200
        await telegram.wait_for(lambda item: "final state" in (item.plain or ""))
        async with http.get("/_control/sent") as answer:
            sent = (await answer.json())["sent"]
        assert any("final state: flat" in (item["plain"] or "") for item in sent)
        async with http.post("/_control/down", json={"down": True, "mode": "drop"}) as answer:
            assert await answer.json() == {"down": True, "mode": "drop"}
    assert [c.kind for c in engine.received] == [CommandKind.CLOSE]


# --- the trader's commands: what reaches the engine ---------------------------------------------
@pytest.mark.parametrize(("text", "kind", "count"), [
    ("/daily", CommandKind.DAILY, None), ("/daily 30", CommandKind.DAILY, 30),
    ("/weekly 4", CommandKind.WEEKLY, 4), ("/monthly", CommandKind.MONTHLY, None),
    ("/monthly 24", CommandKind.MONTHLY, 24), ("/trades", CommandKind.TRADES, None),
    ("/trades 3", CommandKind.TRADES, 3), ("/logs 50", CommandKind.LOGS, 50),
    ("/performance", CommandKind.PERFORMANCE, None), ("/balance", CommandKind.BALANCE, None),
    ("/version", CommandKind.VERSION, None), ("/config", CommandKind.CONFIG, None)])
async def test_read_only_commands_reach_the_engine_with_their_count(telegram, engine, text,
                                                                    kind, count):
    reply = await ask(telegram, text)
    assert "Usage" not in reply.plain and "Unknown command" not in reply.plain
    assert [(c.kind, c.count) for c in engine.received] == [(kind, count)]


@pytest.mark.parametrize(("text", "kind", "symbol", "duration"), [
    ("/pause ethusdt", CommandKind.PAUSE, "ETHUSDT", None),
    ("/pause ETHUSDT 2h", CommandKind.PAUSE, "ETHUSDT", timedelta(hours=2)),
    ("/pause 30m btcusdt", CommandKind.PAUSE, "BTCUSDT", timedelta(minutes=30)),
    ("/resume ETHUSDT", CommandKind.RESUME, "ETHUSDT", None),
    ("/resume", CommandKind.RESUME, None, None)])
async def test_pause_and_resume_take_an_optional_symbol(telegram, engine, text, kind, symbol,
                                                        duration):
    reply = await ask(telegram, text)
    assert "done" in reply.plain
    [command] = engine.received
    assert (command.kind, command.symbol, command.duration) == (kind, symbol, duration)


@pytest.mark.parametrize(("text", "question", "label", "kind"), [
    ("/long btcusdt", "Open a LONG on BTCUSDT at market now?", "Buy BTCUSDT (long)",
     CommandKind.LONG),
    ("/short ETHUSDT", "Open a SHORT on ETHUSDT at market now?", "Sell ETHUSDT (short)",
     CommandKind.SHORT),
    ("/unlock ethusdt", "Unlock ETHUSDT: end its cooldown and clear its breakers?",
     "Unlock ETHUSDT", CommandKind.UNLOCK)])
async def test_long_short_and_unlock_ask_first_then_act_once(telegram, engine, text, question,
                                                             label, kind):
    prompt = await prompt_for(telegram, text)
    assert question in prompt.plain and "Expires in 60 s" in prompt.plain
    assert [name for name, _ in prompt.buttons] == [label, "Cancel"]
    assert engine.received == []
    since = len(telegram.sent)
    await press(telegram, prompt, label)
    await next_reply(telegram, OWNER, since, "done")
    again = await press(telegram, prompt, label)
    assert again.text == "Already done."
    [command] = engine.received
    assert command.kind is kind and command.symbol == text.split()[1].upper()
    assert command.command_id.startswith("tg:confirm:")


@pytest.mark.parametrize("text", ["/long BTCUSDT", "/unlock BTCUSDT"])
async def test_long_and_unlock_cancelled_or_expired_do_nothing(telegram, engine, clock, text):
    cancelled = await prompt_for(telegram, text)
    assert (await press(telegram, cancelled, "Cancel")).text == "Cancelled."
    expired = await prompt_for(telegram, text)
    clock.advance(61)
    name = text.split()[0]
    answer = await press(telegram, expired, expired.buttons[0][0])
    assert f"Expired, send {name} again." in answer.text
    assert engine.received == []

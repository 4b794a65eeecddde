"""The retry policies every Telegram call goes through (bot/sending.py), and the delivery task
that runs on them: bounded, flood control honoured, Telegram's refusals never repeated."""

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from loguru import logger
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.app import TelegramBot
from bot.sending import Backoff, RetryPolicy, call_with_retries
from storage import Store
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import OWNER, ask
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]
# PTB's RetryAfter reads its own deprecated attribute when it is built.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
FAST = Backoff(initial=0.01, cap=0.05)


class Telegram:
    """Answers a call with the given errors in turn, then with "sent"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def send(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "sent"


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call()
    return result, time.monotonic() - started


async def test_flood_control_waits_what_telegram_asked_then_sends():
    telegram = Telegram(RetryAfter(1))
    result, took = await timed(lambda: call_with_retries(RetryPolicy(backoff=FAST), "reply",
                                                         telegram.send))
    assert (result, telegram.calls) == ("sent", 2)
    assert 1.0 <= took < 3.0


async def test_network_failures_are_retried_with_backoff_up_to_the_attempts():
    telegram = Telegram(NetworkError("Bad Gateway"), TimedOut(), NetworkError("Bad Gateway"))
    with pytest.raises(NetworkError):
        await call_with_retries(RetryPolicy(attempts=3, backoff=FAST), "reply", telegram.send)
    assert telegram.calls == 3
    telegram = Telegram(NetworkError("Bad Gateway"), TimedOut())
    assert await call_with_retries(RetryPolicy(attempts=3, backoff=FAST), "reply",
                                   telegram.send) == "sent"


async def test_a_wait_past_the_budget_gives_up_at_once():
    telegram = Telegram(RetryAfter(30))
    started = time.monotonic()
    with pytest.raises(RetryAfter):
        await call_with_retries(RetryPolicy(budget=5.0), "reply", telegram.send)
    assert telegram.calls == 1 and time.monotonic() - started < 0.5


@pytest.mark.parametrize("refusal", [
    BadRequest("Query is too old and response timeout expired or query id is invalid"),
    BadRequest("Chat not found"), Forbidden("Forbidden: bot was blocked by the user")])
async def test_telegrams_refusals_are_not_repeated(refusal: Exception):
    telegram = Telegram(refusal)
    with pytest.raises(type(refusal)):
        await call_with_retries(RetryPolicy(backoff=FAST), "answer", telegram.send)
    assert telegram.calls == 1


async def test_a_delivery_pass_that_raises_is_logged_and_retried(
        bot: TelegramBot, telegram: FakeTelegram, alerter: Alerter, store: Store,
        clock: ManualClock, monkeypatch: pytest.MonkeyPatch):
    failures = [RuntimeError("outbox row could not be decoded")]
    pending = alerter.pending

    def pending_or_fail(limit: int = 50, severity: Any = None, names: Any = ()) -> Any:
        if failures:
            raise failures.pop(0)
        return pending(limit, severity, names)

    monkeypatch.setattr(alerter, "pending", pending_or_fail)
    lines: list[str] = []
    handler_id = logger.add(lines.append, format="{message}\n{exception}", level="ERROR")
    try:
        alerter.publish(Alert(AlertName.FILL, "LONG 0.010 filled at 43,000", dedup_key="a"),
                        clock.now())
        await telegram.wait_for(lambda item: item.chat_id == OWNER
                                and "filled at 43,000" in (item.plain or ""))
    finally:
        logger.remove(handler_id)
    failed = [line for line in lines if "alert delivery pass failed" in line]
    assert failed and "Traceback" in failed[0] and "outbox row could not be decoded" in failed[0]
    clock.advance(1)
    alerter.publish(Alert(AlertName.FILL, "SHORT 0.020 filled at 44,000", dedup_key="b"),
                    clock.now())
    await telegram.wait_for(lambda item: "filled at 44,000" in (item.plain or ""))   # still alive


async def test_an_edit_that_changes_nothing_counts_as_done_without_a_plain_retry(
        bot: TelegramBot, telegram: FakeTelegram):
    prompt = await ask(telegram, "/close BTCUSDT")
    application_bot = bot.application.bot
    replies = bot.handlers.replies
    assert await replies.edit(application_bot, OWNER, prompt.message_id or 0, "<b>Closed</b>")
    assert await replies.edit(application_bot, OWNER, prompt.message_id or 0, "<b>Closed</b>")
    assert telegram.calls.count("editMessageText") == 2   # "message is not modified": no retry

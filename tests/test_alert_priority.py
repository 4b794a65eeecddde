"""CRITICAL alerts are not starved behind a backlog: after Telegram was unreachable while
FILL chatter piled up, SAVE_STATE_FAILURE and SL_MISSING are delivered first (with the
all-clears of the troubles the operator is told of, bot/alert_order.py), and every other
alert after them in the order it was published. Through the real python-telegram-bot
and the fake Bot API (502 Bad Gateway while down: https://core.telegram.org/bots/api#making-requests).
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.alert_order import UrgencyOrder
from bot.app import TelegramBot
from storage import Store
from tests.telegram_outside import OutsideTelegram, texts_to
from tests.test_bot_support import OWNER, START
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName, OutgoingAlert
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


def publish_fills(alerter: Alerter, clock: ManualClock, count: int, first: int = 0) -> None:
    for index in range(first, first + count):
        alerter.publish(Alert(AlertName.FILL, f"fill number {index}", "BTCUSDT",
                              dedup_key=f"fill:{index}"), clock.now())
        clock.advance(timedelta(seconds=1))


def fill_numbers(texts: list[str]) -> list[int]:
    return [int(text.split("fill number ")[1].split()[0]) for text in texts if "fill number" in text]


async def test_critical_alerts_go_before_a_backlog_of_fills(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter,
        clock: ManualClock) -> None:
    """120 FILLs (more than one outbox read) wait, then two CRITICAL alerts come: both are
    delivered before any FILL, and the FILLs after them in order, each once."""
    telegram.set_down(True)
    publish_fills(alerter, clock, 120)
    alerter.publish(Alert(AlertName.SAVE_STATE_FAILURE, "disk full"), clock.now())
    alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT has no stop", "BTCUSDT"), clock.now())
    await asyncio.sleep(0.3)
    telegram.set_down(False)
    await telegram.wait_for(lambda item: "fill number 119" in (item.plain or ""), timeout=30)
    texts = texts_to(telegram, OWNER)
    assert "disk full" in texts[0] and "no stop" in texts[1], texts[:3]
    assert fill_numbers(texts) == list(range(120))


async def test_a_critical_alert_published_during_the_backlog_jumps_the_queue(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    """The backlog is being sent when SL_MISSING comes: it goes out before the FILLs that
    were still waiting, and nothing is sent twice or lost."""
    telegram.set_down(True)
    publish_fills(alerter, clock, 80)
    telegram.set_down(False)
    await telegram.wait_for(lambda item: "fill number 3" in (item.plain or ""), timeout=10)
    alerter.publish(Alert(AlertName.SL_MISSING, "ETHUSDT has no stop", "ETHUSDT"), clock.now())
    await telegram.wait_for(lambda item: "fill number 79" in (item.plain or ""), timeout=30)
    texts = texts_to(telegram, OWNER)
    critical_at = next(index for index, text in enumerate(texts) if "no stop" in text)
    assert critical_at < 10, critical_at
    assert fill_numbers(texts) == list(range(80))
    for _ in range(100):   # the last one is marked sent just after Telegram took it
        if not store.pending_alerts():
            break
        await asyncio.sleep(0.02)
    assert store.pending_alerts() == []


async def test_a_trouble_that_came_back_reads_in_its_true_order_after_a_backlog(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter,
        clock: ManualClock) -> None:
    """failure, 80 FILLs, recovered, 40 FILLs, failure again: the all-clear is urgent too
    (it ends a trouble the operator is told of), so the three read failure, recovered,
    failure, ahead of the FILLs: never "failure, failure, recovered"."""
    telegram.set_down(True)
    alerter.publish(Alert(AlertName.SAVE_STATE_FAILURE, "disk full"), clock.now())
    clock.advance(timedelta(seconds=1))
    publish_fills(alerter, clock, 80)
    alerter.publish(Alert(AlertName.SAVE_STATE_RECOVERED, "disk writable again"), clock.now())
    clock.advance(timedelta(minutes=10))      # past the repeat throttle of the failure
    publish_fills(alerter, clock, 40, first=80)
    alerter.publish(Alert(AlertName.SAVE_STATE_FAILURE, "disk full again"), clock.now())
    await asyncio.sleep(0.3)
    telegram.set_down(False)
    await telegram.wait_for(lambda item: "fill number 119" in (item.plain or ""), timeout=30)
    texts = texts_to(telegram, OWNER)
    assert ["disk full" in texts[0], "writable again" in texts[1],
            "full again" in texts[2]] == [True, True, True], texts[:4]
    assert fill_numbers(texts) == list(range(120))


def outgoing(name: str, severity: str, symbol: str = "BTCUSDT", n: int = 0) -> OutgoingAlert:
    return OutgoingAlert(n, START + timedelta(seconds=n), name, severity, symbol, name)


def test_a_close_waits_its_turn_unless_it_ends_a_trouble_the_operator_was_told_of() -> None:
    order = UrgencyOrder()
    fill, close = outgoing("FILL", "INFO", "ETHUSDT", n=1), outgoing("CLOSE", "INFO", n=2)
    queue, urgent = order.arrange([("fill", fill), ("close", close)])
    assert (queue, urgent) == (["fill", "close"], 0)
    order.delivered(outgoing("SL_MISSING", "CRITICAL", n=0))
    queue, urgent = order.arrange([("fill", fill), ("close", close)])
    assert (queue, urgent) == (["close", "fill"], 1)
    order.delivered(close)
    assert order.open_troubles == set()


def test_a_close_never_jumps_ahead_of_the_fill_of_its_symbol_still_waiting() -> None:
    """An entry closed at once (its stop-loss level already passed): FILL, the CRITICAL,
    CLOSE, published in that order. The CRITICAL goes first; the CLOSE, which ends it, stays
    behind the FILL that opened the position (it went first, and read "closed ... filled")."""
    order = UrgencyOrder()
    fill = outgoing("FILL", "INFO", n=1)
    passed = outgoing("POSITION_UNPROTECTED", "CRITICAL", n=2)
    close = outgoing("CLOSE", "INFO", n=3)
    queue, urgent = order.arrange([("fill", fill), ("passed", passed), ("close", close)])
    assert (queue, urgent) == (["passed", "fill", "close"], 1)


def test_an_all_clear_for_another_symbol_is_not_urgent() -> None:
    order = UrgencyOrder()
    missing = outgoing("SL_MISSING", "CRITICAL", "BTCUSDT", 1)
    restored_eth = outgoing("PROTECTION_RESTORED", "INFO", "ETHUSDT", 2)
    fill = outgoing("FILL", "INFO", "ETHUSDT", 0)
    queue, urgent = order.arrange([("fill", fill), ("missing", missing),
                                   ("restored eth", restored_eth)])
    assert (queue, urgent) == (["missing", "fill", "restored eth"], 1)

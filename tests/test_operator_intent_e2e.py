"""End to end, as on a Heroku-like host: `tradebot run` (a real process: the Binance adapter
against the fake Binance, python-telegram-bot against the fake Bot API), /shutdown -> keep
from the phone, SIGTERM, then `tradebot run` again on an EMPTY database. It must come back
asleep (the pinned state), say so in STARTUP and /status, and send no entry order although
its strategy wants a position on every candle."""

import asyncio
import random
import signal
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from tests.chaos.agent import agent_env, start_agent, wait_for_boot
from tests.chaos.market import Market
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram, SentItem
from tests.test_bot_support import OWNER

SYMBOL = "BTCUSDT"
BOUND = 60.0           # seconds; bound of every condition wait
# Always long, stop and target far: the agent must not close the position itself before the
# test closes it by hand (it did under load: the chaos strategy's side flips every half hour
# of candle time, and a flip on the candle after the entry closed it as SIGNAL_CLOSE).
STRATEGY = "tests.chaos.strategy:EveryCandleLong"


def entries(fake: FakeBinance) -> list[str]:
    return [client_id for client_id in fake.accepted_orders if "-en" in client_id]


async def until(condition, market: Market, bound: float = BOUND) -> None:  # type: ignore[no-untyped-def]
    """Push a candle every 0.3 s until `condition()` holds (AssertionError after `bound`)."""
    deadline = asyncio.get_running_loop().time() + bound
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await market.push()
        await asyncio.sleep(0.3)


async def reply_to(telegram: FakeTelegram, text: str, predicate) -> SentItem:  # type: ignore[no-untyped-def]
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    return await telegram.wait_for(lambda item: item.chat_id == OWNER and predicate(item),
                                   since=since, timeout=BOUND)


async def stop(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_shutdown_keep_survives_a_restart_on_an_empty_database(tmp_path: Path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}, flat_orders="keep") as fake, \
            FakeTelegram() as telegram:
        # Candles up to a few minutes ago: older ones would be stale data (no entries at all).
        market = Market(fake, random.Random(11), SYMBOL, history=timedelta(minutes=44))
        for _ in range(40):
            await market.push()                     # the strategy's warm-up
        overrides = {"TRADEBOT_STRATEGY": STRATEGY, "TELEGRAM_BOT_TOKEN": telegram.token,
                        "TELEGRAM_API_URL": telegram.api_url,
                        "TELEGRAM_ALLOWED_CHAT_IDS": str(OWNER)}
        log = tmp_path / "agent.log"
        first_db = tmp_path / "first" / "tradebot.db"
        first = await start_agent(agent_env(fake, first_db, SYMBOL, **overrides), log)
        try:
            await wait_for_boot(log, 0, first, BOUND)
            await until(lambda: bool(entries(fake)), market)      # it trades while running
            # Closed in the Binance app: the restarted agent will be flat, so a running agent
            # would enter on its next candle.
            since = len(telegram.sent)
            await fake.close_position_by_hand(SYMBOL)
            await telegram.wait_for(lambda item: "closed (MANUAL)" in (item.plain or ""),
                                    since=since, timeout=BOUND)
            prompt = await reply_to(telegram, "/shutdown", lambda item: bool(item.buttons))
            keep = next(data for _, data in prompt.buttons if data.endswith(":keep"))
            since = len(telegram.sent)
            telegram.press_button(OWNER, OWNER, prompt.message_id, keep)
            await telegram.wait_for(lambda item: "asleep" in (item.plain or ""), since=since,
                                    timeout=BOUND)
            await until(lambda: "asleep=yes" in (telegram.pins.top(OWNER) or {}).get("text", ""),
                        market)
        finally:
            await stop(first)
        sent_before = len(entries(fake))

        second_db = tmp_path / "second" / "tradebot.db"      # the wiped disk
        offset = log.stat().st_size
        since = len(telegram.sent)
        second = await start_agent(agent_env(fake, second_db, SYMBOL, **overrides), log)
        try:
            await wait_for_boot(log, offset, second, BOUND)
            startup = await telegram.wait_for(
                lambda item: "tradebot started" in (item.plain or ""), since=since, timeout=BOUND)
            for _ in range(10):
                await market.push()
                await asyncio.sleep(0.5)
            assert len(entries(fake)) == sent_before, "the restarted agent traded"
            assert "ASLEEP" in startup.plain and "pinned in Telegram" in startup.plain
            status = await reply_to(telegram, "/status", lambda item: "asleep" in (item.plain or ""))
            assert status.method == "sendMessage"
        finally:
            await stop(second)

"""The real agent (`python -m trader run`, paper exchange, the README's variable names) as a
subprocess against the fake Bot API: what a real Bot API server does mid-run must not end it.
- the token revoked mid-run (every call 401): SIGTERM still ends it cleanly, exit code 0
  (python-telegram-bot alone ends its polling on the 401 and re-raises it when stopped);
- 409 Conflict on getUpdates (another poller): the owner is told, commands work again after;
- 200 commands queued while it was down: none runs, one answer.
Error answers: https://core.telegram.org/bots/api#making-requests.
"""

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.telegram_html import ApiError
from tests.telegram_outside import OTHER_POLLER, OutsideTelegram

OWNER = 42


@pytest.fixture
async def telegram() -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram() as fake:
        yield fake


@pytest.fixture
async def agent(telegram: OutsideTelegram, tmp_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRADEBOT_", "TELEGRAM_", "BINANCE_", "HEARTBEAT"))}
    env.update({"HOME": str(tmp_path), "TRADEBOT_EXCHANGE": "paper",
                "TRADEBOT_DB": str(tmp_path / "agent.db"), "TELEGRAM_BOT_TOKEN": telegram.token,
                "TELEGRAM_ALLOWED_CHAT_IDS": str(OWNER), "TELEGRAM_API_URL": telegram.api_url})
    with open(tmp_path / "agent.log", "w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            await telegram.wait_for(lambda item: "STARTUP" in (item.plain or ""), timeout=90)
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 40)


async def test_sigterm_after_the_token_was_revoked_exits_cleanly(
        telegram: OutsideTelegram, agent: asyncio.subprocess.Process, tmp_path: Path) -> None:
    polls = len(telegram.times_of("getUpdates"))
    telegram.token = "1:revoked"
    await telegram.wait_for_call("getUpdates", after=polls, timeout=20)   # answered 401
    await asyncio.sleep(1.0)
    assert await stop(agent) == 0
    assert "stopped cleanly" in (tmp_path / "agent.log").read_text()


async def test_another_poller_is_told_and_commands_work_again(
        telegram: OutsideTelegram, agent: asyncio.subprocess.Process) -> None:
    telegram.get_updates_error = ApiError(409, OTHER_POLLER)
    await telegram.wait_for(lambda item: "getUpdates" in (item.plain or ""), timeout=30)
    telegram.get_updates_error = None
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=60)
    assert await stop(agent) == 0


async def test_a_burst_of_stale_commands_runs_none_and_gets_one_answer(
        telegram: OutsideTelegram, agent: asyncio.subprocess.Process) -> None:
    old = int(time.time()) - 3600
    for index in range(200):
        telegram.skip_update_ids(index % 3)
        telegram.inject_message(OWNER, OWNER, "/close all" if index % 2 else "/long BTCUSDT",
                                old + index)
    await telegram.wait_for(lambda item: "none was executed" in (item.plain or ""), timeout=30)
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=60)
    answers = [item for item in telegram.sent if "again" in (item.plain or "")]
    assert len(answers) == 1
    assert not [item for item in telegram.sent if item.buttons]   # no /long, /close prompt
    assert await stop(agent) == 0

"""SIGTERM while the agent is starting and Telegram holds every request unanswered (getMe,
deleteWebhook, the pinned state's getChat never return): the host kills the process 30 s
after SIGTERM, and README, Deploying, promises an exit with code 0 within 25 s."""

import asyncio
import time
from decimal import Decimal
from pathlib import Path

from tests.chaos.agent import agent_env, exit_after_sigterm, log_since, start_agent
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import OWNER

PROMISED_EXIT = 25.0


async def test_sigterm_while_telegram_hangs_at_start_exits_in_time(tmp_path: Path):
    async with FakeBinance(prices={"BTCUSDT": Decimal("50000")}) as fake, \
            FakeTelegram() as telegram:
        telegram.set_down(True, mode="hang")
        log = tmp_path / "agent.log"
        env = agent_env(fake, tmp_path / "t.db", "BTCUSDT",
                        TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_URL=telegram.api_url,
                        TELEGRAM_ALLOWED_CHAT_IDS=str(OWNER))
        agent = await start_agent(env, log)
        try:
            deadline = time.monotonic() + 60
            while not telegram.calls:                  # it is talking to Telegram
                assert agent.returncode is None and time.monotonic() < deadline, \
                    log_since(log, 0)[-3000:]
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)
            code, seconds = await exit_after_sigterm(agent)
        finally:
            if agent.returncode is None:
                agent.kill()
            telegram.set_down(False)
        assert code == 0 and seconds < PROMISED_EXIT, (code, seconds,
                                                       log_since(log, 0)[-2500:])

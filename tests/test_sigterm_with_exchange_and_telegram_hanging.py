"""SIGTERM while both outsides hang: the agent's periodic reconciliation is waiting on a
Binance read that does not answer, and Telegram holds every request unanswered (an outage
that hangs rather than refuses). The host kills the process 30 s after SIGTERM; README,
Deploying: "the process exits 0 within 25 s". The loop's budget (12 s), the alert flush
and the Telegram bot's own stop each wait on a hanging peer, one after the other."""

import asyncio
import time
from decimal import Decimal
from pathlib import Path

from tests.chaos.agent import agent_env, exit_after_sigterm, log_since, start_agent, wait_for_boot
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import OWNER

PROMISED_EXIT = 25.0


async def test_sigterm_with_binance_and_telegram_hanging_exits_in_time(tmp_path: Path):
    async with FakeBinance(prices={"BTCUSDT": Decimal("50000")}) as fake, \
            FakeTelegram() as telegram:
        log = tmp_path / "agent.log"
        env = agent_env(fake, tmp_path / "t.db", "BTCUSDT",
                        TRADEBOT_STRATEGY="tests.test_sigterm_at_awkward_moments:Never",
                        TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_URL=telegram.api_url,
                        TELEGRAM_ALLOWED_CHAT_IDS=str(OWNER))
        agent = await start_agent(env, log)
        try:
            await wait_for_boot(log, 0, agent, 60)
            # Its start-up over (the pinned state read, STARTUP sent, the state pinned): hung
            # earlier, Telegram held the pinned state's read 15 s before the loop reconciled.
            await telegram.wait_for(lambda item: "tradebot started" in (item.plain or ""),
                                    timeout=60)
            assert await eventually(lambda: "asleep=no" in (telegram.pins.top(OWNER) or {}).get(
                "text", ""), 30), telegram.sent
            telegram.set_down(True, mode="hang")
            reads = len(fake.requests("GET /fapi/v3/positionRisk"))
            fake.inject_fault("GET /fapi/v3/positionRisk", delay=25.0, times=10)
            deadline = time.monotonic() + 30
            while len(fake.requests("GET /fapi/v3/positionRisk")) == reads:   # reconciling
                assert time.monotonic() < deadline, log_since(log, 0)[-3000:]
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            code, seconds = await exit_after_sigterm(agent)
        finally:
            if agent.returncode is None:
                agent.kill()
            telegram.set_down(False)
        assert code == 0 and seconds < PROMISED_EXIT, (code, seconds,
                                                       log_since(log, 0)[-2500:])

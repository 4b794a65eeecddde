"""`tradebot run` with a bot token Telegram rejects: a configuration error like any other, one
line naming TELEGRAM_BOT_TOKEN and exit code 2, never the token, never a traceback."""

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import trader.app
from tests.fakes.telegram_server import FakeTelegram
from trader.cli import EXIT_CONFIG
from trader.clock import Clock
from trader.config import ConfigError, Settings, load_settings
from trader.engine import Engine
from trader.engine_setup import Closer

WRONG_TOKEN = "987654321:WRONG-secret-token-xyz"
BUILD_ENGINE = trader.app.build_engine


def agent_env(tmp_path: Path, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRADEBOT_", "TELEGRAM_", "BINANCE_", "HEARTBEAT"))}
    env.update({"HOME": str(tmp_path), "TRADEBOT_EXCHANGE": "paper",
                "TRADEBOT_DB": str(tmp_path / "agent.db"), "TELEGRAM_BOT_TOKEN": WRONG_TOKEN,
                "TELEGRAM_ALLOWED_CHAT_IDS": "42", "TELEGRAM_API_URL": api_url})
    return env


async def test_a_token_telegram_rejects_ends_run_with_one_config_error_line(tmp_path: Path):
    async with FakeTelegram() as telegram:   # knows only its own token: answers 401 to ours
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", cwd=tmp_path,
            env=agent_env(tmp_path, telegram.api_url),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert telegram.calls == ["getMe"]
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == EXIT_CONFIG == 2, stderr[-2000:]
    naming = [line for line in stderr.splitlines() if "TELEGRAM_BOT_TOKEN" in line]
    assert naming == ["config error: TELEGRAM_BOT_TOKEN: rejected by Telegram (Unauthorized); "
                      "check the token from @BotFather"]
    assert stderr.splitlines()[-1] == naming[0]
    assert "Traceback" not in stderr
    assert WRONG_TOKEN not in stdout + stderr and "WRONG-secret" not in stdout + stderr


class ClosingSpy:
    """Wraps `trader.app.build_engine` to count how often its closer runs."""

    def __init__(self) -> None:
        self.closed = 0
        self._close: Closer | None = None

    async def build_engine(self, settings: Settings, clock: Clock | None = None,
                           **options: Any) -> tuple[Engine, Closer]:
        engine, self._close = await BUILD_ENGINE(settings, clock, **options)
        return engine, self.close

    async def close(self) -> None:
        assert self._close is not None
        await self._close()
        self.closed += 1


async def test_a_rejected_token_closes_the_exchange_and_the_database(tmp_path: Path,
                                                                     monkeypatch):
    spy = ClosingSpy()
    monkeypatch.setattr(trader.app, "build_engine", spy.build_engine)
    async with FakeTelegram() as telegram:
        settings = load_settings(_env_file=None, exchange="paper", db_path=tmp_path / "a.db",
                                 telegram_bot_token=WRONG_TOKEN, telegram_allowed_chat_ids="42",
                                 telegram_api_url=telegram.api_url)
        with pytest.raises(ConfigError):
            await trader.app.run_agent(settings)
    assert spy.closed == 1

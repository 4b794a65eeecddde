"""`tradebot shutdown|wake` reach the running agent (replay included) and answer within 5 s;
with no agent they say so at once and act here; never a false success."""

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.app import TelegramBot, make_alert_sink
from tests.engine_world import SYMBOL, make_world, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram
from tests.test_app import clean_env
from tests.test_bot_support import FAST, OWNER
from trader.cli_mailbox import CLI_REQUEST_KEY
from trader.clock import SystemClock
from trader.config import Settings, load_settings
from trader.control_cli import run_control_cli
from trader.intent_keeper import RECORD_KEY, IntentKeeper
from trader.presence import PRESENCE_KEY, AgentPresence, PresenceRecord

BOUND = 30.0


async def cli(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, float]:
    """`python -m trader ARGS` as the operator runs it; (exit code, output, seconds)."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trader", *args, cwd=tmp_path, env=clean_env(tmp_path, **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), BOUND)
    return process.returncode or 0, output.decode(), time.monotonic() - started


def stored(db_path: Path, key: str) -> str | None:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


@asynccontextmanager
async def running_replay(tmp_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`tradebot run --replay` as a process, started (its STARTUP sent); SIGTERM after.
    Speed 1: the replay waits minutes for its next candle, so it is idle while tested."""
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", "--replay", "--speed", "1", cwd=tmp_path,
            env=clean_env(tmp_path), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + BOUND
        while b"tradebot started" not in log.read_bytes():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            await asyncio.sleep(0.1)
        yield agent
    finally:
        agent.send_signal(signal.SIGTERM)
        await asyncio.wait_for(agent.wait(), BOUND)


async def test_shutdown_reaches_a_running_replay_and_answers_within_5_s(tmp_path):
    async with running_replay(tmp_path):
        # The interpreter's own start-up and imports, measured here and now (a busy machine
        # makes them seconds): the 5 s are the wait for the agent's answer.
        _, _, start_up = await cli(tmp_path, "--version")
        code, output, seconds = await cli(tmp_path, "shutdown")
    assert code == 0, output
    assert seconds < 5 + start_up + 1, (seconds, start_up, output)
    assert "t-replay.db" in output and "asleep" in output, output
    assert '"asleep": true' in (stored(tmp_path / "t-replay.db", RECORD_KEY) or ""), output
    assert not (tmp_path / "t.db").exists()          # no other session was put to sleep


def binance_settings(fake: FakeBinance, db_path: Path, **env: str) -> Settings:
    return settings_for(db_path, TRADEBOT_EXCHANGE="binance", BINANCE_API_KEY=fake.api_key,
                        BINANCE_API_SECRET=fake.api_secret, BINANCE_FUTURES_URL=fake.url,
                        BINANCE_FUTURES_WS_URL=fake.ws_url, **env)


@pytest.fixture
async def binance() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        yield fake


async def test_with_no_agent_it_says_so_at_once_and_acts_on_the_exchange(tmp_path, capsys,
                                                                          binance):
    settings = binance_settings(binance, tmp_path / "t.db")
    started = time.monotonic()
    code = await asyncio.wait_for(run_control_cli(settings, "shutdown"), BOUND)
    output = capsys.readouterr().out
    assert code == 0, output
    assert time.monotonic() - started < 5
    assert "no agent is running" in output and "directly on the exchange" in output
    assert "asleep" in output and "no Telegram configured" in output
    assert '"asleep": true' in (stored(tmp_path / "t.db", RECORD_KEY) or "")


async def test_with_no_replay_running_nothing_is_done_and_it_exits_1(tmp_path):
    code, output, seconds = await cli(tmp_path, "wake")     # paper: `run` would be a replay
    assert code == 1
    assert "no agent is running" in output and "nothing was done" in output
    assert seconds < 5
    assert not (tmp_path / "t.db").exists() and not (tmp_path / "t-replay.db").exists()


async def test_an_agent_that_does_not_answer_gets_its_request_withdrawn(tmp_path, capsys):
    world = await make_world(tmp_path)
    presence = AgentPresence(world.store, lambda: world.engine.ticks, world.engine.wakeup,
                             SystemClock(), replay=False)
    presence.start()            # alive, but its engine loop never runs the request
    try:
        started = time.monotonic()
        code = await asyncio.wait_for(run_control_cli(world.settings, "shutdown"), BOUND)
    finally:
        await presence.stop()
    output = capsys.readouterr().out
    assert code == 1
    assert 4 < time.monotonic() - started < 6
    assert "no answer within" in output and "withdrawn" in output
    assert world.store.get(CLI_REQUEST_KEY) is None
    assert not world.engine.guard_state.asleep


async def test_a_killed_agent_is_not_running_and_a_clean_stop_says_so(tmp_path):
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    now = datetime.now(UTC)
    killed = PresenceRecord(dead.pid, socket.gethostname(), now, now, replay=False)
    assert not killed.alive(now)
    assert PresenceRecord(os.getpid(), socket.gethostname(), now, now, replay=False).alive(now)
    assert not PresenceRecord(os.getpid(), socket.gethostname(), now, now, replay=False,
                              stopped_at=now).alive(now)

    world = await make_world(tmp_path)
    presence = AgentPresence(world.store, lambda: world.engine.ticks, world.engine.wakeup,
                             SystemClock(), replay=False)
    presence.start()
    await presence.stop()
    assert '"stopped_at": "' in stored(world.db_path, PRESENCE_KEY)


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


async def test_with_no_agent_the_new_state_is_pinned_for_the_next_start_on_a_wiped_disk(
        tmp_path, capsys, telegram, binance):
    """`heroku run tradebot shutdown` runs on a disk of its own: only the pin carries it."""
    telegram_env = {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_URL": telegram.api_url,
                    "TELEGRAM_ALLOWED_CHAT_IDS": str(OWNER)}
    settings = binance_settings(binance, tmp_path / "one-off" / "t.db", **telegram_env)
    code = await asyncio.wait_for(run_control_cli(settings, "shutdown"), BOUND)
    output = capsys.readouterr().out
    assert code == 0, output
    assert "pinned in Telegram" in output
    assert "asleep=yes" in telegram.pins.top(OWNER)["text"]

    world = await make_world(tmp_path / "worker")               # the worker's fresh disk
    bot = make_alert_sink(load_settings(_env_file=None, **telegram_env), world.controller,
                          world.engine.alerter, world.store, SystemClock(), FAST)
    assert isinstance(bot, TelegramBot)
    keeper = IntentKeeper(world.engine.guards, world.store, world.engine.alerter, SystemClock(),
                          bot.intent_pin, retry=(0.05, 0.2))
    await bot.start()
    try:
        assert "ASLEEP" in await keeper.recover(wait=BOUND)
        assert world.engine.guard_state.asleep
    finally:
        await keeper.stop()
        await bot.stop()


async def test_with_telegram_down_it_does_not_claim_the_state_is_pinned(
        tmp_path, capsys, telegram, binance):
    telegram.set_down(True)
    settings = binance_settings(binance, tmp_path / "t.db", TELEGRAM_BOT_TOKEN=telegram.token,
                                TELEGRAM_API_URL=telegram.api_url,
                                TELEGRAM_ALLOWED_CHAT_IDS=str(OWNER))
    code = await asyncio.wait_for(run_control_cli(settings, "shutdown"), BOUND)
    output = capsys.readouterr().out
    assert code == 0, output                     # done on the exchange and in the database
    assert "could NOT be updated" in output and "pinned in Telegram" not in output
    assert telegram.pins.top(OWNER) is None

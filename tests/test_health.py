"""/health: the view (healthy = ticking, database writable, not stopping), GET /health on
$PORT (200 / 503, beside the webhook), and the Telegram command through the real
python-telegram-bot against the fake Bot API."""

import asyncio
import json
import re
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.app import TelegramBot, make_alert_sink
from storage import SaveStateFailure
from tests.engine_world import SYMBOL, World, make_world
from tests.fakes.telegram_server import FakeTelegram, SentItem
from tests.test_app import clean_env
from tests.test_bot_support import FAST, OWNER, STRANGER
from trader import operator_holds
from trader.alerts import Alert, AlertName
from trader.clock import SystemClock
from trader.config import load_settings
from trader.health import HealthMonitor, HealthView
from trader.health_server import HttpEndpoint
from trader.presence import AgentPresence

BOUND = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = await make_world(tmp_path)
    await world.warm_up(3)
    return world


@pytest.fixture
def presence(world: World) -> AgentPresence:
    """The heartbeat as the agent runs it; `last_tick_at` set as its watcher would."""
    return AgentPresence(world.store, lambda: world.engine.ticks, world.engine.wakeup,
                         SystemClock(), replay=False)


@pytest.fixture
def monitor(world: World, presence: AgentPresence) -> HealthMonitor:
    return HealthMonitor(world.engine, presence, SystemClock())


def ticked(presence: AgentPresence, seconds_ago: float) -> None:
    presence.last_tick_at = SystemClock().now() - timedelta(seconds=seconds_ago)


# --- the view -----------------------------------------------------------------------------
def test_booting_is_not_healthy(monitor):
    view = monitor.view()
    assert not view.healthy and view.problems == ["not ticking yet (booting)"]


def test_a_recent_tick_with_a_writable_database_is_healthy(monitor, presence):
    ticked(presence, 1)
    view = monitor.view()
    assert view.healthy, view.problems
    body = view.as_json()
    assert body["status"] == "ok" and body["database_writable"] is True
    assert body["streams"] == {"user_data": "up"} and body["version"]
    json.dumps(body)                                   # what GET /health sends


def test_a_tick_older_than_three_periods_and_30_s_is_not_healthy(monitor, presence):
    ticked(presence, 29)
    assert monitor.view().healthy
    ticked(presence, 31)
    view = monitor.view()
    assert not view.healthy and "last tick 31 s ago" in view.problems[0]


def test_failing_database_writes_are_not_healthy(monitor, presence, world):
    ticked(presence, 1)
    world.store.health.failed(SaveStateFailure("state guards", sqlite3.OperationalError("disk I/O error")))
    view = monitor.view()
    assert not view.healthy and not view.database_writable
    assert view.problems == ["database writes failing (1 in a row)"]


def test_stopping_is_not_healthy_but_asleep_is(monitor, presence, world):
    ticked(presence, 1)
    world.engine.guard_state = operator_holds.sleep(world.engine.guard_state)
    view = monitor.view()
    assert view.healthy and view.run_state == "asleep"
    world.engine.stopping = True
    assert monitor.view().problems == ["stopping"]


def test_a_stream_down_is_a_warning_not_a_failure(monitor, presence, world):
    ticked(presence, 1)
    world.paper.stream_live = False          # like Binance's user-data stream down: REST polling
    view = monitor.view()
    assert view.healthy and view.streams == {"user_data": "polling"}


def test_binance_sockets_read_up_down_or_polling_when_never_started() -> None:
    """One reading for /health and the invariant monitor: a socket never started (streams
    switched off) is REST polling by design, not a stream down (no warning)."""
    from types import SimpleNamespace

    from trader.exchange.base import stream_states
    from trader.exchange.binance_streams import BinanceStreams
    streams = object.__new__(BinanceStreams)
    streams.user, streams.market, streams.book_ticker = (SimpleNamespace(live=True),
                                                         SimpleNamespace(live=False), None)
    exchange = SimpleNamespace(streams=streams, streaming=True)
    assert stream_states(exchange) == {"user_data": "up", "market": "down",
                                       "book_ticker": "polling"}


# --- GET /health ----------------------------------------------------------------------------
async def get_health(port: int) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/health") as answer:
        return answer.status, await answer.json()


async def test_get_health_answers_200_when_healthy_and_503_when_not(monitor, presence):
    endpoint = HttpEndpoint(free_port(), health=monitor.view, host="127.0.0.1")
    await endpoint.start()
    try:
        ticked(presence, 1)
        status, body = await get_health(endpoint.port)
        assert (status, body["status"], body["healthy"]) == (200, "ok", True)
        ticked(presence, 300)
        status, body = await get_health(endpoint.port)
        assert (status, body["status"]) == (503, "unhealthy")
        assert "last tick" in body["problems"][0]
    finally:
        await endpoint.stop()


async def test_a_health_check_that_fails_answers_503_with_the_reason():
    def broken() -> HealthView:
        raise RuntimeError("engine gone")
    endpoint = HttpEndpoint(free_port(), health=broken, host="127.0.0.1")
    await endpoint.start()
    try:
        status, body = await get_health(endpoint.port)
    finally:
        await endpoint.stop()
    assert status == 503 and "engine gone" in body["problems"][0]


# --- Telegram ---------------------------------------------------------------------------------
async def ask(telegram: FakeTelegram, text: str) -> SentItem:
    """Send a command as the owner; the bot's /health answer (alerts may come in between)."""
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    return await telegram.wait_for(lambda item: item.chat_id == OWNER
                                   and "Last tick" in (item.plain or ""), since=since,
                                   timeout=15)      # a bound for a busy machine


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def telegram_settings(telegram: FakeTelegram, **extra: str):  # type: ignore[no-untyped-def]
    return load_settings(_env_file=None, telegram_bot_token=telegram.token,
                         telegram_allowed_chat_ids=str(OWNER), telegram_api_url=telegram.api_url,
                         symbols=SYMBOL, **extra)


async def test_health_from_the_phone(world, telegram, monitor, presence):
    ticked(presence, 2)
    bot = make_alert_sink(telegram_settings(telegram), world.controller, world.engine.alerter,
                          world.store, SystemClock(), FAST, health=monitor.view)
    assert isinstance(bot, TelegramBot)
    await bot.start()
    try:
        # Words after it get the usage, as every other command without arguments answers
        # (it answered the health view as if they were not there).
        telegram.inject_message(OWNER, OWNER, "/health now")
        usage = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                        and "arguments" in (item.plain or ""), timeout=15)
        assert usage.plain == "/health takes no arguments. Usage: /health", usage.plain
        reply = await ask(telegram, "/health")
        assert reply.plain.startswith("✅ Healthy · running")
        # 2 s at the tick, plus however long a busy machine took to start the bot and answer
        assert re.search(r"Last tick: \d+ s ago \(limit 30 s\)", reply.plain), reply.plain
        for part in ("Streams: user data up", "Database: writable",
                     "Exchange circuit: closed", "Telegram: connected", "Version "):
            assert part in reply.plain, reply.plain
        assert any(c["command"] == "health" for c in telegram.commands)   # in the menu
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, "/help")
        listed = await telegram.wait_for(lambda item: "tradebot commands" in (item.plain or ""),
                                         since=since, timeout=15)
        assert "/health · " in listed.plain                                 # and in /help

        world.store.health.failed(SaveStateFailure("x", sqlite3.OperationalError("disk full")))
        reply = await ask(telegram, "/health")
        assert reply.plain.startswith("❌ Unhealthy: database writes failing")

        telegram.inject_message(STRANGER, STRANGER, "/health")          # behind the gate
        await asyncio.sleep(0.3)
        assert all("Healthy" not in (i.plain or "") for i in telegram.sent_to(STRANGER))
    finally:
        await bot.stop()


async def test_webhook_and_get_health_share_the_port(world, telegram, monitor, presence):
    port = free_port()
    settings = telegram_settings(telegram, port=str(port),
                                 telegram_webhook_url=f"http://127.0.0.1:{port}/tg-hook")
    endpoint = HttpEndpoint(port, health=monitor.view, host="127.0.0.1")
    bot = make_alert_sink(settings, world.controller, world.engine.alerter, world.store,
                          SystemClock(), FAST, http=endpoint, health=monitor.view)
    await endpoint.start()
    await bot.start()
    try:
        ticked(presence, 1)
        assert (await get_health(port))[0] == 200
        assert telegram.webhook["url"] == f"http://127.0.0.1:{port}/tg-hook"
        reply = await ask(telegram, "/health")                 # pushed to the webhook
        assert "Healthy" in reply.plain
        assert telegram.webhook_deliveries == [200]
        async with aiohttp.ClientSession() as http, \
                http.post(f"http://127.0.0.1:{port}/tg-hook", json={"update_id": 9}) as answer:
            assert answer.status == 403                        # no secret: not Telegram
    finally:
        await bot.stop()
        await endpoint.stop()


# --- the agent ---------------------------------------------------------------------------------
async def test_tradebot_run_with_port_serves_get_health(tmp_path):
    port = free_port()
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", "--replay", "--speed", "600", cwd=tmp_path,
            env=clean_env(tmp_path, PORT=str(port)), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + BOUND
        status, body = 0, {}
        while status != 200:
            assert time.monotonic() < deadline, (status, body, log.read_text()[-2000:])
            await asyncio.sleep(0.2)
            try:
                status, body = await get_health(port)
            except aiohttp.ClientConnectionError:
                continue
        assert body["run_state"] == "running" and body["details"]["replay"] is True
        assert body["last_tick_age"] < body["stale_after"]
    finally:
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.wait(), BOUND) == 0


def test_a_breaker_trip_held_for_its_clear_is_no_alert_waiting(monitor, presence, world):
    """A BREAKER_TRIPPED is held back on purpose (README: a breaker that clears within 45
    minutes is one message): /health and GET /health counted it as an alert Telegram had not
    delivered, "alerts waiting 410 s" with Telegram fine (found by a reviewer). The lag is
    the oldest alert that is due."""
    world.engine.alerter.clock = world.clock     # the engine's, as trader/app.py builds it
    world.engine.alerter.publish(Alert(AlertName.BREAKER_TRIPPED, "crash breaker on BTCUSDT",
                                       SYMBOL, subject="crash:BTCUSDT"), world.clock.now())
    world.clock.advance(timedelta(seconds=400))
    ticked(presence, 1)
    view = monitor.view()
    assert view.telegram_lag == 0 and not any("alerts waiting" in w for w in view.warnings), view


def test_an_alert_due_and_not_delivered_is_still_waiting(monitor, presence, world):
    """The negative: an alert due for 400 s and not delivered is the lag, and warned."""
    world.engine.alerter.clock = world.clock
    world.engine.alerter.publish(Alert(AlertName.STALE_DATA, "BTCUSDT: no candle", SYMBOL),
                                 world.clock.now())
    world.clock.advance(timedelta(seconds=400))
    ticked(presence, 1)
    view = monitor.view()
    assert view.telegram_lag >= 400 and any("alerts waiting" in w for w in view.warnings), view

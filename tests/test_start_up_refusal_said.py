"""A start-up the configuration refuses (a symbol Binance does not list, hedge mode, a key
Binance rejects) reaches the phone as a sounding SHUTDOWN with
the refusal's line. Found by a reviewer: with a hand-opened position and no stop, the phone
got only a silent "ℹ️ SHUTDOWN going down before start-up finished (exchange start-up did
not finish): the agent never traded ...", without the reason (in stdout only) and without
saying the agent will not come back until the setting is fixed."""

import asyncio
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.chaos.agent import REPO, agent_env
from tests.engine_world import make_world
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram
from tests.test_first_command_after_boot import market_up_to_now
from tests.test_move_stop_command import world_with_a_long
from trader.alerts import Severity
from trader.app import run_agent
from trader.cli import EXIT_CONFIG
from trader.config import ConfigError, Settings, load_settings
from trader.domain import Side
from trader.going_down import going_down_alert, going_down_text, say_going_down
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"
OWNER = 42
HEDGE_LINE = ("BINANCE_API_KEY (the account's position mode): account is in hedge mode; switch "
              "to one-way mode in Binance (Preferences > Position Mode) - refusing to trade")


def settings_for(fake: FakeBinance, telegram: FakeTelegram, db: Path, **extra: str) -> Settings:
    return load_settings(
        _env_file=None, exchange="binance", binance_api_key=fake.api_key,
        binance_api_secret=fake.api_secret, binance_futures_url=fake.url,
        binance_futures_ws_url=fake.ws_url, symbols=SYMBOL, db_path=db, interval="1m",
        telegram_bot_token=telegram.token, telegram_allowed_chat_ids=str(OWNER),
        telegram_api_url=telegram.api_url, **extra)


def shutdowns(telegram: FakeTelegram) -> list:
    return [item for item in telegram.sent_to(OWNER, "sendMessage")
            if "SHUTDOWN" in (item.plain or "").split("\n", 1)[0]]


async def refused_run(settings: Settings) -> ConfigError:
    with pytest.raises(ConfigError) as refused:
        await asyncio.wait_for(run_agent(settings), 60)
    return refused.value


async def test_hedge_mode_sounds_with_its_line_and_says_the_agent_stays_down(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, FakeTelegram() as telegram:
        await market_up_to_now(fake)
        fake.set_hedge_mode(True)
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        refusal = await refused_run(settings_for(fake, telegram, tmp_path / "a.db"))
        said = shutdowns(telegram)
    assert refusal.problems == [HEDGE_LINE]
    assert len(said) == 1, [i.plain for i in telegram.sent_to(OWNER)]
    text = said[0].plain or ""
    assert not said[0].disable_notification, "a refusal must sound"
    assert f"config error: {HEDGE_LINE}" in text
    assert "does not trade until this is fixed" in text
    assert "no stop from the agent" in text      # the account's positions were not read
    assert "the agent never traded" in text


async def test_a_refusal_repeated_by_a_restart_loop_is_sent_once(tmp_path):
    """A host that restarts the process at once (systemd Restart=always, docker
    --restart=always) on a database that stays: one message, not one every few seconds;
    the repeats are kept in the outbox (/alerts)."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, FakeTelegram() as telegram:
        await market_up_to_now(fake)
        fake.set_hedge_mode(True)
        settings = settings_for(fake, telegram, tmp_path / "a.db")
        for _ in range(3):
            await refused_run(settings)
        said = shutdowns(telegram)
    assert len(said) == 1, [i.plain for i in said]
    store = TradeStore.open(tmp_path / "a.db")
    try:
        kept = [a for a in store.recent_alerts() if a.name == "SHUTDOWN"]
    finally:
        store.close()
    assert [a.status for a in kept] == ["sent", "repeat", "repeat"]


async def test_a_stop_signal_during_start_up_stays_a_quiet_info(tmp_path):
    """Negative: no refusal (a SIGTERM while the exchange was down): INFO as before."""
    engine = (await make_world(tmp_path)).engine
    alert = going_down_alert(engine, "exchange start-up")
    assert alert.level is Severity.INFO
    assert going_down_text(engine, "exchange start-up") == (
        "going down before start-up finished (exchange start-up did not finish): the agent "
        "never traded; positions on the exchange keep whatever orders they have")


async def test_tradebot_run_exits_2_promptly_with_the_line_and_the_phone_hears_it(tmp_path):
    """As a process: exit code 2 within seconds, the refusal's line last on stderr, and
    the same line in the sounding SHUTDOWN."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, FakeTelegram() as telegram:
        await market_up_to_now(fake)
        fake.set_hedge_mode(True)
        env = agent_env(fake, tmp_path / "p.db", SYMBOL, TELEGRAM_BOT_TOKEN=telegram.token,
                        TELEGRAM_API_URL=telegram.api_url,
                        TELEGRAM_ALLOWED_CHAT_IDS=str(OWNER))
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), 60)
        seconds = time.monotonic() - started
        said = shutdowns(telegram)
    stderr = err.decode()
    assert process.returncode == EXIT_CONFIG, stderr[-2000:]
    assert seconds < 20, seconds
    assert stderr.splitlines()[-1] == f"config error: {HEDGE_LINE}"
    assert "Traceback" not in stderr
    assert len(said) == 1 and f"config error: {HEDGE_LINE}" in (said[0].plain or "")
    assert not said[0].disable_notification


async def test_the_agents_recorded_position_is_named_when_the_account_was_never_read(tmp_path):
    """A restart refused before any position read (a key revoked since): the agent's own
    record names the position that goes without its care."""
    world = await world_with_a_long(tmp_path)
    refusal = ConfigError(["BINANCE_API_KEY / BINANCE_API_SECRET: rejected by Binance"])
    alert = going_down_alert(world.engine, "exchange start-up", refusal)
    assert alert.level is Severity.CRITICAL
    assert f"{SYMBOL}: a position is open on the account with no stop from the agent" \
        in alert.text
    assert "never read the account's positions" not in alert.text


async def test_the_same_refusal_sounds_again_after_an_hour_with_the_restarts_counted(tmp_path):
    world = await make_world(tmp_path)
    engine = world.engine
    refusal = ConfigError(["TRADEBOT_SYMBOLS: not listed on Binance USD-M futures: DOGEUSDT"])
    started = world.clock.now()
    for minutes in (0, 10, 20, 70):
        world.clock.set(started + timedelta(minutes=minutes))
        say_going_down(engine, "exchange start-up", refusal)
    kept = [a for a in engine.store.recent_alerts() if a.name == "SHUTDOWN"]
    assert [a.status == "repeat" for a in kept] == [False, True, True, False]
    assert kept[-1].severity == "CRITICAL"
    assert kept[-1].text.endswith(
        f"(2 restarts refused the same way since {started + timedelta(minutes=10):%H:%M} UTC)")
    other = ConfigError(["TRADEBOT_SYMBOLS: not listed on Binance USD-M futures: XRPUSDT"])
    say_going_down(engine, "exchange start-up", other)      # another refusal: said at once
    assert engine.store.recent_alerts()[-1].status != "repeat"

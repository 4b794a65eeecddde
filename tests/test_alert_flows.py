"""Alert rules on the real engine (paper exchange), and through the real python-telegram-bot
against the fake Bot API where delivery matters: a restart that picks up the agent's own
position is INFO, a position nobody at the agent opened is RECONCILE_MISMATCH; a requested
/shutdown is answered in one message; SL_MISSING is followed by PROTECTION_RESTORED, both
with sound."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.app import TelegramBot, make_alert_sink
from tests.engine_world import SYMBOL, World, long_signal, make_world, restart, settings_for
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import FAST, OWNER
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import SystemClock
from trader.commands import Command, CommandKind
from trader.config import load_settings
from trader.control import Controller
from trader.domain import Side
from trader.engine import Engine
from trader.startup import boot
from trader.trade_store import TradeStore


async def open_long(world: World) -> None:
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    assert SYMBOL in world.engine.positions


def on_a_wiped_disk(world: World, folder: Path) -> World:
    """A new process on an empty database, same exchange account (what Heroku does daily)."""
    folder.mkdir()
    settings = settings_for(folder / "tradebot.db")
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, world.paper, store, world.clock, Alerter(store, world.clock),
                    strategy=world.strategy)
    return World(settings.db_path, settings, world.clock, store, world.paper, engine,
                 world.strategy, Controller(engine), world.last_close, world.candles)


def severities(world: World) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for alert in world.store.recent_alerts(100):
        found.setdefault(alert.name, set()).add(alert.severity)
    return found


# --- restarts ------------------------------------------------------------------------------
async def test_a_restart_that_picks_up_its_own_position_is_info_not_a_mismatch(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    key = world.engine.positions[SYMBOL].key
    restarted = on_a_wiped_disk(world, tmp_path / "wiped")
    await boot(restarted.engine)
    assert restarted.engine.positions[SYMBOL].key == key
    found = severities(restarted)
    assert "RECONCILE_MISMATCH" not in found
    assert found["STARTUP"] == {"INFO"}
    assert any("picked up its own" in text for text in restarted.alerts("STARTUP"))


async def test_a_position_picked_up_on_a_wiped_disk_is_said_once(tmp_path):
    """review5: "picked up its own LONG 0.807 again" reached the phone twice in one second,
    the adoption's alert and a "boot reconciliation" line saying the same."""
    world = await make_world(tmp_path)
    await open_long(world)
    restarted = on_a_wiped_disk(world, tmp_path / "wiped")
    lines = await boot(restarted.engine)
    said = [text for text in restarted.alerts("STARTUP") if "picked up" in text]
    assert len(said) == 1, said
    assert [line for line in lines if "picked up again" in line], lines   # the CLI's print


async def test_the_boot_report_still_names_what_no_other_alert_told(tmp_path):
    """Negative: a record whose position is gone on the exchange is finalized at boot and
    said in the "boot reconciliation" STARTUP alert, as before."""
    world = await make_world(tmp_path)
    await open_long(world)
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
    restarted = restart(world)
    await boot(restarted.engine)
    [report] = [t for t in restarted.alerts("STARTUP") if t.startswith("boot reconciliation")]
    assert "the position is gone on the exchange: finalized" in report, report


async def test_a_position_the_agent_did_not_open_is_a_critical_mismatch(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.010"),
                                                     world.clock.now()))
    restarted = on_a_wiped_disk(world, tmp_path / "wiped")
    await boot(restarted.engine)
    [mismatch] = restarted.alerts("RECONCILE_MISMATCH")
    assert "did not open" in mismatch
    assert severities(restarted)["RECONCILE_MISMATCH"] == {"CRITICAL"}


# --- shutdown -------------------------------------------------------------------------------
@pytest.mark.parametrize(("source", "status"), [("telegram", "answered"), ("cli", "pending")])
async def test_a_requested_shutdown_is_info_and_sent_only_when_no_reply_carried_it(
        tmp_path, source, status):
    world = await make_world(tmp_path)
    await open_long(world)
    command = Command(CommandKind.SHUTDOWN, f"{source}:1", world.clock.now(), source=source)
    pending = asyncio.ensure_future(world.controller.execute(command))
    while not pending.done():
        await asyncio.sleep(0)
        await world.controller.process()
    assert pending.result().ok
    [done] = [a for a in world.store.recent_alerts(50) if a.name == "EMERGENCY_DONE"]
    assert (done.severity, done.status) == ("INFO", status)


async def run_command(world, kind: CommandKind, source: str, command_id: str):  # type: ignore[no-untyped-def]
    command = Command(kind, command_id, world.clock.now(), source=source)
    pending = asyncio.ensure_future(world.controller.execute(command))
    while not pending.done():
        await asyncio.sleep(0)
        await world.controller.process()
    return pending.result()


async def test_a_shell_wake_is_sent_to_the_chat_and_a_phone_wake_is_answered_once(tmp_path):
    """`tradebot wake` from a shell changed the agent without a word in the chat, whose last
    message still said "asleep" (found by a reviewer): the wake is a RESUMED alert, sent
    for a shell's request, kept as answered for the phone's (its reply said it)."""
    world = await make_world(tmp_path, TRADEBOT_EMERGENCY_COOLDOWN_MINUTES=0)
    for source, status in (("cli", "pending"), ("telegram", "answered")):
        await run_command(world, CommandKind.SHUTDOWN, source, f"{source}:sleep")
        assert (await run_command(world, CommandKind.WAKE, source, f"{source}:wake")).ok
        [woke] = [a for a in world.store.recent_alerts(50)
                  if a.dedup_key == f"RESUMED:{source}:wake"]
        assert woke.status == status and "awake" in woke.text, woke


async def test_a_second_shutdown_within_minutes_is_not_throttled(tmp_path):
    """A shell's `tradebot shutdown` within 5 minutes of an earlier one sent nothing (the
    repeat of one alert key was dropped): each request is told."""
    world = await make_world(tmp_path)
    for n in (1, 2):
        await run_command(world, CommandKind.SHUTDOWN, "cli", f"cli:{n}")
        await run_command(world, CommandKind.WAKE, "cli", f"cli:wake{n}")
    done = [a for a in world.store.recent_alerts(50) if a.name == "EMERGENCY_DONE"]
    assert [a.status for a in done] == ["pending", "pending"], done


# --- through Telegram -------------------------------------------------------------------------
@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@contextlib.asynccontextmanager
async def phone(world: World, telegram: FakeTelegram) -> AsyncIterator[TelegramBot]:
    """The real bot on the world's engine; the engine's loop runs queued commands."""
    settings = load_settings(
        _env_file=None, telegram_bot_token=telegram.token, telegram_allowed_chat_ids=str(OWNER),
        telegram_api_url=telegram.api_url, symbols=SYMBOL)
    sink = make_alert_sink(settings, world.controller, world.engine.alerter, world.store,
                           SystemClock(), FAST)
    assert isinstance(sink, TelegramBot)
    await sink.start()
    loop = asyncio.create_task(run_commands(world))
    try:
        yield sink
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await sink.stop()


async def run_commands(world: World) -> None:
    while True:
        await world.controller.process()
        await asyncio.sleep(0.01)


async def test_shutdown_from_the_phone_is_one_message(tmp_path, telegram):
    world = await make_world(tmp_path)
    await open_long(world)
    async with phone(world, telegram):
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, "/shutdown")
        prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
        keep = next(data for label, data in prompt.buttons if label.startswith("Keep"))
        telegram.press_button(OWNER, OWNER, prompt.message_id, keep)
        await telegram.wait_for(lambda item: "asleep" in (item.plain or ""), since=since,
                                timeout=10)
        # a later alert: once it is shown, delivery has passed the shutdown's alert too
        world.engine.alerter.publish(Alert(AlertName.FILL, "marker after the shutdown", SYMBOL),
                                     world.clock.now())
        await telegram.wait_for(lambda item: "marker after the shutdown" in (item.plain or ""))
    telling = [item for item in telegram.sent[since:]
               if item.chat_id == OWNER and "asleep" in (item.plain or "")]
    assert len(telling) == 1
    assert not any("EMERGENCY_DONE" in (item.plain or "") for item in telegram.sent)


async def test_sl_missing_then_protection_restored_both_reach_the_phone_with_sound(
        tmp_path, telegram):
    world = await make_world(tmp_path)
    await open_long(world)
    stop_id = world.engine.positions[SYMBOL].stop.order.client_id
    async with phone(world, telegram):
        show_again = world.hide_order(stop_id)     # polling: only the REST snapshot tells
        for _ in range(3):                   # absent 3 observations: SL_MISSING, then repaired
            await world.step()
        show_again()
        await world.step()
        missing = await telegram.wait_for(lambda item: "SL_MISSING" in (item.plain or ""))
        restored = await telegram.wait_for(
            lambda item: "PROTECTION_RESTORED" in (item.plain or ""), timeout=10)
    assert missing.disable_notification is False
    assert restored.disable_notification is False
    assert telegram.sent.index(missing) < telegram.sent.index(restored)

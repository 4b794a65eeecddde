"""Sleep and pause survive a wiped disk: the real engine on the paper exchange, the real
python-telegram-bot against the fake Bot API (getChat / pinChatMessage as Telegram documents
them, tests/fakes/telegram_pins.py), and the intent keeper between them.

A "restart on a wiped disk" here is a new engine on an empty database, on the same exchange
account (the paper exchange plays the remote exchange) and the same Telegram chat."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import TelegramBot, make_alert_sink
from tests.engine_world import SYMBOL, World, long_signal, make_world, settings_for
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import FAST, GROUP, OWNER
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.commands import CommandKind
from trader.config import load_settings
from trader.control import Controller
from trader.engine import Engine
from trader.intent_keeper import RECORD_KEY, IntentKeeper
from trader.operator_intent import OperatorIntent, newest
from trader.trade_store import TradeStore

BOUND = 10.0      # seconds; bound of every condition wait


@dataclass
class Agent:
    """One 'process': an engine (in `world`), its Telegram bot and its intent keeper."""
    world: World
    bot: TelegramBot
    keeper: IntentKeeper

    async def stop(self) -> None:
        await self.keeper.stop()
        await self.bot.stop()


async def eventually(condition, bound: float = BOUND) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + bound
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def start_agent(world: World, telegram: FakeTelegram, chats: str = str(OWNER),
                      connect: bool = True) -> Agent:
    settings = load_settings(_env_file=None, telegram_bot_token=telegram.token,
                             telegram_allowed_chat_ids=chats, telegram_api_url=telegram.api_url,
                             symbols=SYMBOL)
    bot = make_alert_sink(settings, world.controller, world.engine.alerter, world.store,
                          SystemClock(), FAST)
    assert isinstance(bot, TelegramBot)
    keeper = IntentKeeper(world.engine.guards, world.store, world.engine.alerter, SystemClock(),
                          bot.intent_pin, world.engine.wakeup.set, retry=(0.05, 0.2))
    keeper.start()
    if connect:
        await bot.start()
    world.engine.load_state()            # what boot() does first
    return Agent(world, bot, keeper)


async def wiped_restart(world: World, tmp_path: Path, name: str) -> World:
    """A new engine on an EMPTY database; same exchange account, same clock and candles."""
    db_path = tmp_path / name / "tradebot.db"
    db_path.parent.mkdir()
    store = TradeStore.open(db_path)
    engine = Engine(settings_for(db_path), world.paper, store, world.clock, Alerter(store),
                    strategy=world.strategy)
    for candle in world.candles:
        engine.on_candle(candle)
    return World(db_path, engine.settings, world.clock, store, world.paper, engine,
                 world.strategy, Controller(engine), world.last_close, world.candles)


def pinned_text(telegram: FakeTelegram, chat_id: int = OWNER) -> str:
    top = telegram.pins.top(chat_id)
    return top["text"] if top else ""


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = await make_world(tmp_path)
    await world.warm_up()
    return world


async def shutdown_from_the_phone(agent: Agent, telegram: FakeTelegram) -> None:
    """/shutdown -> "Keep positions protected and sleep", as the operator does it."""
    async def engine_loop() -> None:
        while True:
            await agent.world.controller.process()
            await asyncio.sleep(0.01)
    loop = asyncio.create_task(engine_loop())
    try:
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, "/shutdown")
        prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
        keep = next(data for _, data in prompt.buttons if data.endswith(":keep"))
        telegram.press_button(OWNER, OWNER, prompt.message_id, keep)
        await eventually(lambda: agent.world.engine.guard_state.asleep)
    finally:
        loop.cancel()


# --- the value ---------------------------------------------------------------------------
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                       timezones=st.just(UTC)).map(lambda m: m.replace(microsecond=0))


@given(asleep=st.booleans(), paused=st.booleans(), until=st.none() | moments, since=moments,
       symbols=st.dictionaries(st.sampled_from(["BTCUSDT", "ETHUSDT", "XRPUSDT"]),
                               st.none() | moments, max_size=3))
def test_the_pinned_line_reads_back_as_the_same_intent(asleep, paused, until, since, symbols):
    intent = OperatorIntent(asleep, paused, until if paused else None, symbols, since)
    assert OperatorIntent.from_line(f"📌 anything\n{intent.to_line()}\n") == intent
    assert OperatorIntent.from_record(intent.to_record()) == intent


@pytest.mark.parametrize("text", [
    "", "hello", "tradebot-state v=2 asleep=yes paused=no symbols=- since=2024-05-01T12:00:00Z",
    "tradebot-state v=1 asleep=maybe paused=no symbols=- since=2024-05-01T12:00:00Z",
    "tradebot-state v=1 asleep=yes paused=no symbols=- since=yesterday",
    "tradebot-state v=1 asleep=yes paused=no symbols=BTC/USDT since=2024-05-01T12:00:00Z",
    "tradebot-state v=1 asleep=yes"])
def test_a_message_without_a_readable_state_line_is_no_intent(text):
    assert OperatorIntent.from_line(text) is None


def test_the_newest_intent_wins_and_a_tie_goes_to_the_more_restrictive():
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    running = OperatorIntent(since=at + timedelta(seconds=1))
    asleep = OperatorIntent(asleep=True, since=at)
    assert newest([asleep, running]) is running
    assert newest([OperatorIntent(since=at), asleep, OperatorIntent(paused=True, since=at)]) is asleep
    assert newest([]) is None


# --- through Telegram ------------------------------------------------------------------------
async def test_shutdown_keep_then_a_restart_on_an_empty_database_comes_back_asleep_and_does_not_trade(
        world, telegram, tmp_path):
    first = await start_agent(world, telegram)
    assert "RUNNING" in await first.keeper.recover(wait=BOUND)
    await shutdown_from_the_phone(first, telegram)
    await eventually(lambda: "asleep=yes" in pinned_text(telegram))
    await first.stop()

    second_world = await wiped_restart(world, tmp_path, "after-restart")
    assert second_world.store.get(RECORD_KEY) is None            # nothing on the new disk
    second = await start_agent(second_world, telegram)
    try:
        state = await second.keeper.recover(wait=BOUND)
        assert "ASLEEP" in state and "pinned in Telegram" in state
        assert second_world.engine.guard_state.asleep
        second_world.strategy.next = long_signal()
        await second_world.step()
        await second_world.step()
        assert SYMBOL not in second_world.engine.positions
        assert (await second_world.paper.position(SYMBOL)).quantity == 0
    finally:
        await second.stop()


async def test_wake_edits_the_same_pinned_message_and_the_next_restart_trades(
        world, telegram, tmp_path):
    first = await start_agent(world, telegram)
    await first.keeper.recover(wait=BOUND)
    await world.command(CommandKind.SHUTDOWN)
    await eventually(lambda: "asleep=yes" in pinned_text(telegram))
    pinned_id = telegram.pins.top(OWNER)["message_id"]
    await world.command(CommandKind.WAKE)
    await eventually(lambda: "asleep=no" in pinned_text(telegram))
    assert telegram.pins.top(OWNER)["message_id"] == pinned_id     # edited, not a new pin
    await first.stop()

    second_world = await wiped_restart(world, tmp_path, "after-restart")
    second = await start_agent(second_world, telegram)
    try:
        assert "RUNNING" in await second.keeper.recover(wait=BOUND)
        second_world.strategy.next = long_signal()
        await second_world.step()
        assert SYMBOL in second_world.engine.positions
    finally:
        await second.stop()


async def test_a_timed_pause_survives_a_wiped_disk_with_its_end(world, telegram, tmp_path):
    first = await start_agent(world, telegram)
    await first.keeper.recover(wait=BOUND)
    await world.command(CommandKind.PAUSE, duration=timedelta(hours=2))
    until = world.engine.guard_state.paused_until
    await eventually(lambda: "paused=2" in pinned_text(telegram))
    await first.stop()

    second_world = await wiped_restart(world, tmp_path, "after-restart")
    second = await start_agent(second_world, telegram)
    try:
        assert "PAUSED until" in await second.keeper.recover(wait=BOUND)
        state = second_world.engine.guard_state
        assert state.paused and state.paused_until == until.replace(microsecond=0)
    finally:
        await second.stop()


async def test_a_copy_pinned_by_a_person_is_not_obeyed(world, telegram):
    forged = OperatorIntent(asleep=True, since=datetime.now(UTC).replace(microsecond=0))
    message_id = telegram.inject_message(OWNER, OWNER, f"look\n{forged.to_line()}")
    telegram.pins.pin(OWNER, message_id)
    agent = await start_agent(world, telegram)
    try:
        assert "RUNNING" in await agent.keeper.recover(wait=BOUND)
        assert not world.engine.guard_state.asleep
        # ... and the agent pins its own state message above the person's.
        await eventually(lambda: telegram.pins.top(OWNER)["from"]["is_bot"])
        assert "asleep=no" in pinned_text(telegram)
    finally:
        await agent.stop()


async def test_a_removed_pin_starts_running_and_is_pinned_again(world, telegram, tmp_path):
    first = await start_agent(world, telegram)
    await first.keeper.recover(wait=BOUND)
    await world.command(CommandKind.SHUTDOWN)
    await eventually(lambda: "asleep=yes" in pinned_text(telegram))
    await first.stop()
    telegram.pins.unpin_all(OWNER)                 # the operator unpinned it by hand

    second_world = await wiped_restart(world, tmp_path, "after-restart")
    second = await start_agent(second_world, telegram)
    try:
        state = await second.keeper.recover(wait=BOUND)
        assert "RUNNING" in state and "pinned message was removed" in state
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
    finally:
        await second.stop()


async def test_with_two_chats_the_newest_pinned_state_wins(world, telegram):
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for chat_id, intent in ((OWNER, OperatorIntent(since=old)),
                            (GROUP, OperatorIntent(asleep=True, since=old + timedelta(minutes=5)))):
        message = await telegram_bot_message(telegram, chat_id, intent.to_line())
        telegram.pins.pin(chat_id, message)
    agent = await start_agent(world, telegram, chats=f"{OWNER},{GROUP}")
    try:
        assert "ASLEEP" in await agent.keeper.recover(wait=BOUND)
        # Both chats end up showing the state the agent applied.
        await eventually(lambda: "asleep=yes" in pinned_text(telegram, OWNER))
        assert "asleep=yes" in pinned_text(telegram, GROUP)
    finally:
        await agent.stop()


async def telegram_bot_message(telegram: FakeTelegram, chat_id: int, text: str) -> int:
    """A message the bot sent earlier (a previous process), through the Bot API itself."""
    import aiohttp
    url = f"{telegram.api_url}{telegram.token}/sendMessage"
    async with aiohttp.ClientSession() as http, \
            http.post(url, json={"chat_id": chat_id, "text": text}) as answer:
        return int((await answer.json())["result"]["message_id"])


async def test_telegram_down_at_boot_starts_asleep_then_the_pin_decides(world, telegram):
    await telegram_bot_message_pinned(telegram, OperatorIntent(since=datetime(2024, 1, 1, tzinfo=UTC)))
    telegram.set_down(True)
    agent = await start_agent(world, telegram)
    try:
        state = await agent.keeper.recover(wait=0.5)
        assert "ASLEEP (assumed)" in state
        assert world.engine.guard_state.asleep
        assert world.store.get(RECORD_KEY) is None        # an assumption is not the operator's
        world.strategy.next = long_signal()
        await world.step()
        assert SYMBOL not in world.engine.positions

        telegram.set_down(False)
        await eventually(lambda: agent.keeper.late_pin_waiting)  # read in the background
        agent.keeper.apply_late_pin()                       # the engine's loop, between ticks
        assert not world.engine.guard_state.asleep
        assert any("Telegram answered" in text for text in world.alerts("STARTUP"))
    finally:
        await agent.stop()


async def test_a_command_while_the_pin_is_unknown_wins_over_the_late_pin(world, telegram):
    asleep_long_ago = OperatorIntent(asleep=True, since=datetime(2024, 1, 1, tzinfo=UTC))
    await telegram_bot_message_pinned(telegram, asleep_long_ago)
    telegram.set_down(True)
    agent = await start_agent(world, telegram)
    try:
        await agent.keeper.recover(wait=0.5)
        await world.command(CommandKind.WAKE)                # e.g. `tradebot wake`
        telegram.set_down(False)
        await eventually(lambda: agent.keeper.late_pin_waiting)
        agent.keeper.apply_late_pin()
        assert not world.engine.guard_state.asleep
        await eventually(lambda: "asleep=no" in pinned_text(telegram))
    finally:
        await agent.stop()


async def test_a_shutdown_while_the_pin_is_unknown_is_not_undone_by_an_older_pin(world, telegram):
    """Asleep by assumption, then asleep by command: the command is the operator's word."""
    await telegram_bot_message_pinned(telegram, OperatorIntent(since=datetime(2024, 1, 1, tzinfo=UTC)))
    telegram.set_down(True)
    agent = await start_agent(world, telegram)
    try:
        await agent.keeper.recover(wait=0.5)
        await world.command(CommandKind.SHUTDOWN)           # e.g. `tradebot shutdown`
        assert world.store.get(RECORD_KEY)["asleep"] is True   # the operator's, saved
        telegram.set_down(False)
        await eventually(lambda: agent.keeper.late_pin_waiting)
        agent.keeper.apply_late_pin()
        assert world.engine.guard_state.asleep
        await eventually(lambda: "asleep=yes" in pinned_text(telegram))
    finally:
        await agent.stop()


async def test_a_database_record_newer_than_the_pin_wins(world, telegram):
    """The disk survived (a crash, not a wipe) and the last pin edit had failed."""
    await telegram_bot_message_pinned(telegram, OperatorIntent(since=datetime(2024, 1, 1, tzinfo=UTC)))
    newer = OperatorIntent(asleep=True, since=datetime(2024, 1, 2, tzinfo=UTC))
    world.store.put(RECORD_KEY, newer.to_record(), world.clock.now())
    agent = await start_agent(world, telegram)
    try:
        assert "(since 2024-01-02 00:00 UTC, database)" in await agent.keeper.recover(wait=BOUND)
        assert world.engine.guard_state.asleep
        await eventually(lambda: "asleep=yes" in pinned_text(telegram))   # the pin catches up
    finally:
        await agent.stop()


async def test_a_group_where_the_bot_may_not_pin_is_reported_once(world, telegram):
    telegram.pins.deny(GROUP)
    agent = await start_agent(world, telegram, chats=f"{OWNER},{GROUP}")
    try:
        await agent.keeper.recover(wait=BOUND)
        await world.command(CommandKind.SHUTDOWN)
        await eventually(lambda: "asleep=yes" in pinned_text(telegram, OWNER))
        await world.command(CommandKind.WAKE)
        await eventually(lambda: "asleep=no" in pinned_text(telegram, OWNER))
        errors = [t for t in world.alerts("ERROR") if "Pin messages" in t]
        assert len(errors) == 1 and str(GROUP) in errors[0]
    finally:
        await agent.stop()


async def telegram_bot_message_pinned(telegram: FakeTelegram, intent: OperatorIntent) -> None:
    message = await telegram_bot_message(telegram, OWNER, f"📌 earlier\n{intent.to_line()}")
    telegram.pins.pin(OWNER, message)


# --- the fake Bot API's pins, as Telegram documents them ------------------------------------
async def bot_api(telegram: FakeTelegram, method: str, **params: object) -> tuple[int, dict]:
    import aiohttp
    async with aiohttp.ClientSession() as http, \
            http.post(f"{telegram.api_url}{telegram.token}/{method}", json=params) as answer:
        return answer.status, await answer.json()


async def test_get_chat_answers_a_chat_full_info_with_the_most_recent_pin(telegram):
    """https://core.telegram.org/bots/api#chatfullinfo: id, type, accent_color_id,
    max_reaction_count and accepted_gift_types are required; pinned_message is "the most
    recent pinned message (by sending date)"."""
    status, body = await bot_api(telegram, "getChat", chat_id=OWNER)
    assert status == 200
    info = body["result"]
    assert {"id", "type", "accent_color_id", "max_reaction_count",
            "accepted_gift_types"} <= set(info) and "pinned_message" not in info
    first = await telegram_bot_message(telegram, OWNER, "first")
    second = await telegram_bot_message(telegram, OWNER, "second")
    for message_id in (second, first):                    # pinned in the other order
        assert (await bot_api(telegram, "pinChatMessage", chat_id=OWNER,
                              message_id=message_id))[1] == {"ok": True, "result": True}
    _, body = await bot_api(telegram, "getChat", chat_id=OWNER)
    assert body["result"]["pinned_message"]["message_id"] == second
    await bot_api(telegram, "unpinChatMessage", chat_id=OWNER)      # the most recent one
    _, body = await bot_api(telegram, "getChat", chat_id=OWNER)
    assert body["result"]["pinned_message"]["message_id"] == first


async def test_pinning_is_refused_the_way_telegram_refuses_it(telegram):
    telegram.pins.deny(GROUP)
    message_id = await telegram_bot_message(telegram, GROUP, "state")
    status, body = await bot_api(telegram, "pinChatMessage", chat_id=GROUP, message_id=message_id)
    assert (status, body["description"]) == (
        400, "Bad Request: not enough rights to manage pinned messages in the chat")
    status, body = await bot_api(telegram, "pinChatMessage", chat_id=OWNER, message_id=999)
    assert (status, body["description"]) == (400, "Bad Request: message to pin not found")

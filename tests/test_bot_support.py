"""Fixtures for the bot tests: the fake Telegram server, a started bot, and `engine`.

`engine` is a protocol-level stand-in for `EngineControl` at the network-free boundary, not
the trading engine: it records every `Command` it receives and answers with realistic
`CommandResult` values (a real matplotlib PNG for /chart). Tests assert on what Telegram
shows and on which commands reached the engine, so they keep holding when the stand-in is
replaced by the real engine on the paper exchange. Used through `pytest_plugins`.
"""

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from bot.app import BotTimings, TelegramBot, make_alert_sink
from bot.handlers import HandlerTimings
from bot.sending import Backoff, RetryPolicy
from storage import Store
from tests.fakes.telegram_server import FakeTelegram, SentItem
from trader.alerter import Alerter
from trader.clock import ManualClock
from trader.commands import (
    ALL_SYMBOLS,
    AlertView,
    Command,
    CommandKind,
    CommandResult,
    PnlView,
    PositionView,
    StatusView,
    StopCheck,
)
from trader.config import Settings
from trader.control_stop import percent_text

matplotlib.use("Agg")

OWNER = 111            # private chat of the owner (chat id = user id)
GROUP = -100200        # an allowed group chat
MEMBER = 222           # an allowed user inside the group
STRANGER = 999         # anyone else
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
REPLIES = ("sendMessage", "sendPhoto")

FAST = BotTimings(
    poll_timeout=1.0, poll_backoff=Backoff(0.05, 0.5), delivery_interval=0.2, delivery_backoff=Backoff(0.05, 0.2),
    connect_backoff=Backoff(0.05, 0.2), connect_timeout=0.5, sweep_interval=0.05,
    flush_timeout=2.0, stop_timeout=0.5,
    # Flood control waits whole seconds (retry_after is an integer): room for one such wait.
    replies=RetryPolicy(attempts=3, budget=2.5, backoff=Backoff(0.05, 0.2)),
    callback_answers=RetryPolicy(attempts=3, budget=2.5, backoff=Backoff(0.05, 0.2)),
    handlers=HandlerTimings(ack_after=0.5, result_timeout=5.0))


def position(symbol: str = "BTCUSDT") -> PositionView:
    return PositionView(
        symbol=symbol, side="LONG", quantity=Decimal("0.010"), entry_price=Decimal("43000"),
        mark_price=Decimal("43210.5"), unrealized_pnl=Decimal("2.105"),
        stop_trigger=Decimal("42500"), stop_attached=True, take_profit_trigger=Decimal("44000"),
        take_profit_attached=False, state="PROTECTED", opened_at=START - timedelta(minutes=12), leverage=5)


def render_chart() -> bytes:
    from matplotlib.figure import Figure
    figure = Figure(figsize=(4, 3))
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.plot([0, 1, 2, 3], [10000, 10040, 10010, 10090])
    bottom.fill_between([0, 1, 2, 3], [0, 0, -0.3, 0])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class RecordingEngine:
    """EngineControl stand-in: records commands, answers like the engine would."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = list(symbols)
        self.received: list[Command] = []
        self.delay = 0.0
        self.positions = [position()]
        self.next_result: CommandResult | None = None
        self._answered: dict[str, CommandResult] = {}

    def closable(self, symbol: str) -> list[str]:
        return [p.symbol for p in self.positions if symbol in (ALL_SYMBOLS, p.symbol)]

    def check_stop(self, symbol: str, price: Decimal) -> StopCheck:
        """As the engine judges a /sl level from its last mark (trader/control_stop.py)."""
        held = next((p for p in self.positions if p.symbol == symbol), None)
        if held is None or not held.mark_price:
            return StopCheck()
        side = "below" if price < held.mark_price else "above"
        away = abs(held.mark_price - price) / held.mark_price * 100
        return StopCheck(distance=f"{percent_text(away)} % {side} the mark")

    def already_decided(self, kind: CommandKind, symbol: str | None) -> list[str]:
        return []          # every question is worth asking here (the real engine's answers
                           # at once: tests/test_bot_answers_at_once.py)

    def executed(self, kind: CommandKind | None = None) -> list[Command]:
        return [c for c in self.received if kind is None or c.kind is kind]

    async def execute(self, command: Command) -> CommandResult:
        self.received.append(command)
        if command.command_id in self._answered:
            return replace(self._answered[command.command_id], duplicate=True)
        if self.delay:
            await asyncio.sleep(self.delay)
        result = self.next_result or self._answer(command)
        self._answered[command.command_id] = result
        return result

    def _answer(self, command: Command) -> CommandResult:
        kind = command.kind
        if kind is CommandKind.STATUS:
            return CommandResult(True, status=self.status())
        if kind is CommandKind.POSITIONS:
            return CommandResult(True, positions=self.positions)
        if kind is CommandKind.PNL:
            return CommandResult(True, pnl=PnlView(command.period, Decimal("12.5"),
                                                   Decimal("1.2"), Decimal("-0.1"), 5, 3))
        if kind is CommandKind.CHART:
            return CommandResult(True, lines=["equity 10,090.00 · max drawdown 0.3%"],
                                 png=render_chart())
        if kind is CommandKind.ALERTS:
            return CommandResult(True, alerts=[AlertView(START, "FILL", "INFO", "BTCUSDT",
                                                         "LONG 0.010 filled at 43,000")])
        return CommandResult(True, lines=self._action_lines(command))

    def _action_lines(self, command: Command) -> list[str]:
        if command.kind is CommandKind.CLOSE:
            symbols = [p.symbol for p in self.positions] if command.symbol == ALL_SYMBOLS \
                else [command.symbol]
            return [f"{s} closed at market: LONG 0.010 filled at 43,205.1, PnL +2.05" for s in symbols] \
                + ["siblings cancelled: TP and SL", "final state: flat"]
        if command.kind is CommandKind.SHUTDOWN:
            kept = "all positions closed" if command.flatten else "positions kept with TP/SL"
            return ["reconciled with the exchange", "entry orders cancelled", kept, "asleep"]
        if command.kind is CommandKind.PAUSE:
            until = "until /resume" if command.duration is None \
                else f"until {(command.issued_at + command.duration):%H:%M} UTC"
            return [f"entries paused {until}"]
        return [f"{command.kind.value}: done"]

    def status(self) -> StatusView:
        return StatusView(
            mode="paper", run_state="running", equity=Decimal("10090.12"),
            free_margin=Decimal("9004.5"), positions=self.positions,
            regimes={"BTCUSDT": "trend", "ETHUSDT": "range"}, breakers=[],
            cooldowns={"ETHUSDT": START + timedelta(minutes=5)}, last_error=None,
            uptime=timedelta(hours=3, minutes=12))


def bot_settings(telegram: FakeTelegram, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": telegram.token, "telegram_allowed_chat_ids": [OWNER, GROUP],
        "telegram_allowed_user_ids": [OWNER, MEMBER], "telegram_api_url": telegram.api_url,
        "symbols": SYMBOLS}
    values.update(overrides)
    return Settings(**values)


async def ask(telegram: FakeTelegram, text: str, chat: int = OWNER, user: int | None = None,
              date: datetime | None = None) -> SentItem:
    """Send a command as a user and return the bot's first reply in that chat."""
    since = len(telegram.sent)
    telegram.inject_message(chat, user if user is not None else chat, text, date)
    return await telegram.wait_for(lambda item: item.chat_id == chat and item.method in REPLIES,
                                   since=since)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "bot.db")
    yield opened
    opened.close()


@pytest.fixture
def alerter(store: Store) -> Alerter:
    return Alerter(store)


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine(SYMBOLS)


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(now=clock.now) as fake:
        yield fake


@pytest.fixture
async def bot(telegram: FakeTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
              clock: ManualClock) -> AsyncIterator[TelegramBot]:
    sink = make_alert_sink(bot_settings(telegram), engine, alerter, store, clock, FAST)
    assert isinstance(sink, TelegramBot)
    await sink.start()
    yield sink
    await sink.stop()

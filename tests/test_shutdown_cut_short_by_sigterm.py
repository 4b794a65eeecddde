"""`tradebot run` stopped by the host (SIGTERM) while a /shutdown is not through: its sleep
must outlive a restart on a wiped disk (the pinned Telegram message is then the only copy),
or the operator must hear that it will not. Process level: the shutdown budget's split
(trader/app.py `_shut_down`, trader/stop_budget.py) and the exit within the host's 30 s are
what is tested, which only the real process shows. The in-process parts:
tests/test_shutdown_flatten_cut_short.py, tests/test_pin_flood_control.py."""

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from tests.chaos.agent import agent_env, log_since, start_agent, wait_for_boot
from tests.chaos.market import Market
from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import OWNER
from tests.test_sigterm_at_awkward_moments import (
    BOUND,
    PROMISED_EXIT,
    Calm,
    Judge,
    Never,
    agent_stops,
    position_size,
    reply_to,
    sigterm_exit,
)

SYMBOL = "BTCUSDT"
PRICES = {SYMBOL: Decimal("50000")}


class Agents:
    """`tradebot run` on FakeBinance + FakeTelegram, one database folder per 'disk'."""

    def __init__(self, fake: FakeBinance, telegram: FakeTelegram, tmp_path: Path) -> None:
        self.env = agent_env(fake, tmp_path / "db", SYMBOL,
                             TRADEBOT_STRATEGY=f"{Never.__module__}:Never",
                             TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_URL=telegram.api_url,
                             TELEGRAM_ALLOWED_CHAT_IDS=str(OWNER))
        self.log = tmp_path / "agent.log"
        self.tmp_path = tmp_path

    async def start(self, disk: str) -> asyncio.subprocess.Process:
        offset = self.log.stat().st_size if self.log.exists() else 0
        process = await start_agent(
            {**self.env, "TRADEBOT_DB": str(self.tmp_path / disk / "t.db")}, self.log)
        await wait_for_boot(self.log, offset, process, BOUND)
        return process

    async def stopped(self, process: asyncio.subprocess.Process) -> None:
        code, seconds = await sigterm_exit(process)
        assert code == 0 and seconds < PROMISED_EXIT, (code, seconds,
                                                      log_since(self.log, 0)[-3000:])


async def market_for(fake: FakeBinance) -> Market:
    market = Market(fake, Calm(1), SYMBOL, PRICES[SYMBOL], history=timedelta(minutes=44))
    while market.seconds_until_closed() == 0:
        await market.push()
    return market


def texts(telegram: FakeTelegram, since: int, words: str) -> list[str]:
    return [item.plain or "" for item in telegram.sent[since:] if words in (item.plain or "")]


async def restart_says(agents: Agents, telegram: FakeTelegram, disk: str) -> str:
    since = len(telegram.sent)
    agent = await agents.start(disk)
    try:
        started = await telegram.wait_for(
            lambda item: "tradebot started" in (item.plain or ""), since=since, timeout=BOUND)
        return started.plain or ""
    finally:
        await agents.stopped(agent)


async def test_a_flatten_cut_short_by_sigterm_is_named_and_finished_after_a_wiped_restart(
        tmp_path: Path):
    async with FakeBinance(prices=PRICES) as fake, FakeTelegram() as telegram:
        judge = Judge(fake, telegram, [await market_for(fake)])
        agents = Agents(fake, telegram, tmp_path)
        agent = await agents.start("first")
        try:
            prompt = await reply_to(telegram, f"/long {SYMBOL}", lambda item: bool(item.buttons))
            data = next(d for _, d in prompt.buttons if not d.endswith(":cancel"))
            telegram.press_button(OWNER, OWNER, prompt.message_id, data)
            await judge.until(lambda: len(agent_stops(fake, SYMBOL)) == 1, "the LONG protected")
            # Binance overloaded: the MARKET close executes, its answer and its read back are
            # late; the flatten outlasts the SIGTERM's 12 s loop budget.
            fake.inject_fault("POST /fapi/v1/order", delay=20.0, only={"type": "MARKET"})
            fake.inject_fault("GET /fapi/v1/order", delay=20.0, times=5)
            prompt = await reply_to(telegram, "/shutdown", lambda item: bool(item.buttons))
            flatten = next(d for _, d in prompt.buttons if d.endswith(":flatten"))
            telegram.press_button(OWNER, OWNER, prompt.message_id, flatten)
            await judge.until(lambda: position_size(fake, SYMBOL) == 0,
                              "the flatten executed on the exchange")
            await telegram.wait_for(lambda item: "flatten=yes" in (item.text or ""),
                                    timeout=BOUND)       # the sleep pinned before the close
            since = len(telegram.sent)
        finally:
            await agents.stopped(agent)
        fake.clear_faults()
        down = texts(telegram, since, "going down")
        assert down and "Your /shutdown (flatten) was cut short by this stop" in down[-1], down

        since = len(telegram.sent)
        started = await restart_says(agents, telegram, "second")      # the wiped disk
        assert "ASLEEP" in started, started
        finished = texts(telegram, since, "Finishing the /shutdown's flatten")
        assert finished and "no open positions" in finished[-1], telegram.sent[since:]


async def shutdown_kept_under_flood(agents: Agents, telegram: FakeTelegram,
                                    seconds: float) -> int:
    """The first agent answers "/shutdown" -> keep while Telegram refuses the pin's update
    for `seconds` (its getChat, where the update starts), then is stopped 2 s after its
    "asleep" reply; how many messages Telegram had been sent before the button."""
    agent = await agents.start("first")
    try:
        await telegram.wait_for(lambda item: "tradebot-state" in (item.text or ""),
                                timeout=BOUND)
        prompt = await reply_to(telegram, "/shutdown", lambda item: bool(item.buttons))
        keep = next(d for _, d in prompt.buttons if d.endswith(":keep"))
        telegram.flood_for(seconds, method="getChat")
        since = len(telegram.sent)
        telegram.press_button(OWNER, OWNER, prompt.message_id, keep)
        await telegram.wait_for(lambda item: "asleep" in (item.plain or "").lower(),
                                since=since, timeout=BOUND)
        await asyncio.sleep(2.0)
    finally:
        await agents.stopped(agent)
    return since


async def test_a_pin_flood_limited_for_a_few_seconds_is_waited_for_at_exit(tmp_path: Path):
    async with FakeBinance(prices=PRICES) as fake, FakeTelegram() as telegram:
        await market_for(fake)
        agents = Agents(fake, telegram, tmp_path)
        since = await shutdown_kept_under_flood(agents, telegram, 8.0)
        assert texts(telegram, since, "not pinned yet (Telegram's flood control")   # the answer
        down = texts(telegram, since, "going down")
        assert down and "not pinned" not in down[-1], down          # pinned before the exit
        assert "ASLEEP" in await restart_says(agents, telegram, "second")     # wiped


async def test_a_pin_flood_limited_past_the_exit_deadline_is_said_in_the_shutdown_alert(
        tmp_path: Path):
    async with FakeBinance(prices=PRICES) as fake, FakeTelegram() as telegram:
        await market_for(fake)
        agents = Agents(fake, telegram, tmp_path)
        since = await shutdown_kept_under_flood(agents, telegram, 60.0)
        down = texts(telegram, since, "going down")
        assert down and ("a restart on a wiped disk will trade; send /shutdown again"
                         in down[-1]), telegram.sent[since:]

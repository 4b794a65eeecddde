"""The README's phone session is a real one: the real python-telegram-bot against the fake Bot
API, driving the real engine on the paper exchange. The transcript in README.md (between the
`phone-session` markers) must match what this session produces, digits aside (prices, times
and ids change with the data); `TRADEBOT_UPDATE_README=1` rewrites it."""

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path

from tests.engine_world import make_world
from tests.fakes.telegram_server import FakeTelegram, SentItem
from tests.test_bot_engine import running_bot
from tests.test_bot_support import OWNER

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- phone-session:begin -->", "<!-- phone-session:end -->"
SHOWN = ("sendMessage", "editMessageText", "sendPhoto")


async def quiet(telegram: FakeTelegram, world, settle: float = 0.6, bound: float = 10.0) -> None:
    """Until the bot has sent nothing new for `settle` s and no alert waits (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    seen = -1
    while loop.time() < deadline:
        if len(telegram.sent) == seen and not world.engine.alerter.pending():
            return
        seen = len(telegram.sent)
        await asyncio.sleep(settle)


def render(item: SentItem) -> list[str]:
    text = (item.plain or "").strip()
    lines = [f"bot: {line}" if i == 0 else f"     {line}" for i, line in enumerate(text.splitlines())]
    if item.buttons:
        lines.append("     " + "  ".join(f"[{label}]" for label, _ in item.buttons))
    return lines


Step = tuple[str, list[list[str]]]          # what you did, the bot's messages after it


async def session(world, telegram: FakeTelegram) -> list[Step]:
    steps: list[Step] = []

    async def act(said: str, send: Callable[[], object]) -> None:
        since = len(telegram.sent)
        send()
        await quiet(telegram, world)
        steps.append((said, [render(item) for item in telegram.sent[since:]
                             if item.chat_id == OWNER and item.method in SHOWN]))

    async def say(text: str) -> None:
        await act(f"you: {text}", lambda: telegram.inject_message(OWNER, OWNER, text))

    async def tap(label_start: str) -> None:
        prompt = next(i for i in reversed(telegram.sent) if i.chat_id == OWNER and i.buttons)
        label, data = next(b for b in prompt.buttons if b[0].startswith(label_start))
        await act(f"you: (taps [{label}])",
                  lambda: telegram.press_button(OWNER, OWNER, prompt.message_id, data))

    await say("/start")
    await say("/long BTCUSDT")
    await tap("Buy")
    await say("/status")
    await say("/close BTCUSDT")
    await tap("Close")
    return steps


def lines_of(steps: list[Step]) -> list[str]:
    return [line for said, messages in steps for line in [said, *sum(messages, [])]]


def comparable(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Per step, its messages in any order (an alert and a reply may cross), digits aside."""
    steps: list[tuple[str, list[str]]] = []
    for line in lines:
        line = re.sub(r"\d", "0", line.rstrip())
        if not line.strip():
            continue
        if line.startswith("you: "):
            steps.append((line, []))
        elif line.startswith("bot: "):
            steps[-1][1].append(line)
        else:
            steps[-1][1][-1] += "\n" + line
    return [(said, sorted(messages)) for said, messages in steps]


def readme_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    inside = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return [line for line in inside.splitlines() if not line.startswith("```")]


def write_readme_block(lines: list[str]) -> None:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{BEGIN}\n```\n" + "\n".join(lines) + f"\n```\n{END}{tail}",
                      encoding="utf-8")


async def test_the_readme_phone_session_is_what_the_bot_really_says(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    async with FakeTelegram() as telegram, running_bot(world, telegram):
        transcript = lines_of(await session(world, telegram))
    if os.environ.get("TRADEBOT_UPDATE_README") == "1":
        write_readme_block(transcript)
    assert comparable(readme_block()) == comparable(transcript), \
        "README's phone session is out of date; rerun with TRADEBOT_UPDATE_README=1"

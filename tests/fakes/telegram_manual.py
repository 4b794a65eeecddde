"""The fake Telegram Bot API for a person trying `tradebot run` by hand, with the chat in
the terminal:

    python -m tests.fakes.telegram_server [--port 8901] [--chat 4242]

prints the settings that point the agent at it (TELEGRAM_BOT_TOKEN, TELEGRAM_API_URL,
TELEGRAM_ALLOWED_CHAT_IDS), then each line typed is a message from you in that chat
("/status", "/help") and everything the bot sends or edits there is printed as you would
read it (the HTML parsed), with its inline buttons numbered: type "#1" to press the first
button of the newest message that has buttons. The control API (/_control/inject, /sent)
stays available to scripts.
"""

import argparse
import asyncio
import sys
import threading

from tests.fakes.telegram_objects import SentItem
from tests.fakes.telegram_server import DEFAULT_TOKEN, FakeTelegram

CHAT = 4242            # a private chat: its id is the person's user id


def shown(item: SentItem) -> str:
    """What the person reads of one thing the bot did (empty: nothing to show)."""
    words = {"sendMessage": "bot", "sendPhoto": "bot (picture)",
             "editMessageText": "bot (edited)", "answerCallbackQuery": "bot (button answer)"}
    if item.method not in words or not (item.plain or item.text or item.photo):
        return ""
    text = item.plain or item.text or ""
    buttons = "".join(f"\n   [#{number}] {label}"
                      for number, (label, _) in enumerate(item.buttons, start=1))
    number = f" #{item.message_id}" if item.message_id else ""
    return f"-- {words[item.method]}{number}:\n{text}{buttons}"


class TerminalChat:
    """Lines typed become messages in `chat`; the bot's messages there are printed."""

    def __init__(self, telegram: FakeTelegram, chat: int) -> None:
        self.telegram, self.chat = telegram, chat
        self.printed = 0
        self.with_buttons: SentItem | None = None

    def say(self, line: str) -> str:
        """Send `line` as the person (or press "#N"); returns what happened, if worth saying."""
        line = line.strip()
        if not line:
            return ""
        if line.startswith("#") and line[1:].isdigit():
            return self.press(int(line[1:]))
        self.telegram.inject_message(self.chat, self.chat, line)
        return ""

    def press(self, number: int) -> str:
        item = self.with_buttons
        if item is None or item.message_id is None or not 0 < number <= len(item.buttons):
            return f"(no button #{number} on the newest message with buttons)"
        label, data = item.buttons[number - 1]
        self.telegram.press_button(self.chat, self.chat, item.message_id, data)
        return f"(pressed {label})"

    def news(self) -> list[str]:
        """What the bot did in the chat since the last call, as text to print."""
        fresh = self.telegram.sent[self.printed:]
        self.printed += len(fresh)
        lines = []
        for item in fresh:
            if item.chat_id not in (self.chat, None):
                continue
            if item.buttons:
                self.with_buttons = item
            if text := shown(item):
                lines.append(text)
        return lines

    async def run(self) -> None:
        """Print the bot's news every 0.2 s and say each line typed, until cancelled."""
        lines: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read_lines() -> None:    # a daemon thread: Ctrl-C never waits for an Enter
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)

        threading.Thread(target=read_lines, daemon=True).start()
        while True:
            for text in self.news():
                print(text, flush=True)
            try:
                line = await asyncio.wait_for(lines.get(), 0.2)
            except TimeoutError:
                continue
            if answer := self.say(line):
                print(answer, flush=True)


async def serve(port: int, chat: int) -> None:
    async with FakeTelegram(port=port) as telegram:
        print(f"fake telegram on {telegram.base_url}\n"
              f"  TELEGRAM_BOT_TOKEN={DEFAULT_TOKEN} TELEGRAM_API_URL={telegram.api_url} "
              f"TELEGRAM_ALLOWED_CHAT_IDS={chat}\n"
              f"chat {chat}: type a message (/status, /help) and Enter; the bot's messages "
              f"appear here; #N presses button N", flush=True)
        await TerminalChat(telegram, chat).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API with a terminal chat")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--chat", type=int, default=CHAT, help="the chat (and user) id")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.chat))
    except KeyboardInterrupt:
        print("fake telegram stopped", flush=True)


if __name__ == "__main__":
    main()

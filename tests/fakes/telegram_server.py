"""A fake Telegram Bot API on 127.0.0.1: the real python-telegram-bot talks to it in tests.

It implements `/bot<token>/<method>` for the methods the agent uses, with Telegram's JSON
shapes and its strictness where it matters to us (HTML that Telegram cannot parse and texts
over 4096 characters are rejected with 400, like the real server). Tests drive it in
process or, when the agent runs as a subprocess, over HTTP under `/_control/*`.

Shapes follow Telegram's documentation, not our code (documented examples are kept in
tests/fixtures/telegram/ and checked against this server in tests/test_bot_fake_telegram.py):
- the answer envelope and errors: https://core.telegram.org/bots/api#making-requests
  ({"ok": false, "error_code", "description"[, "parameters"]});
- flood control: HTTP 429 with parameters.retry_after in seconds,
  https://core.telegram.org/bots/api#responseparameters and
  https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this;
- a token Telegram does not know: HTTP 401 {"ok":false,"error_code":401,"description":
  "Unauthorized"} (the body as reported in
  https://github.com/eternnoir/pyTelegramBotAPI/issues/168);
- Update, Message, CallbackQuery, User, Chat: https://core.telegram.org/bots/api#update,
  #message, #callbackquery, #user, #chat; example updates:
  https://core.telegram.org/bots/webhooks#testing-your-bot-with-updates;
- getChat, pinChatMessage, unpinChatMessage: tests/fakes/telegram_pins.py (its sources there).
- sendMessage, sendPhoto, the edits and answerCallbackQuery: tests/fakes/telegram_messages.py.

    async with FakeTelegram(now=clock.now) as tg:
        settings = Settings(telegram_api_url=tg.api_url, ...)
        message_id = tg.inject_message(chat_id=42, user_id=42, text="/status")
        reply = await tg.wait_for(lambda item: item.method == "sendMessage")
        tg.flood(retry_after=1, method="sendPhoto")   # the next sendPhoto answers 429
        tg.set_down(True)       # every Bot API call answers 502 ("drop" closes the socket)
        tg.pins.pin(chat_id, message_id)      # a person pins a message; tg.pins.top(chat_id)
        tg.update_log.describe(tg.update_log.newest_id)   # did the bot fetch it, when?
"""

import asyncio
import base64
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.telegram_html import ApiError, utf16_length
from tests.fakes.telegram_messages import BotMessages, json_param
from tests.fakes.telegram_objects import (
    PNG_SIGNATURE,
    SentItem,
    bot_me,
    bot_user,
    chat,
    user,
)
from tests.fakes.telegram_pins import ChatPins
from tests.fakes.telegram_updates import UpdateLog

__all__ = ["PNG_SIGNATURE", "FakeTelegram", "SentItem", "utf16_length"]

DOWN_MODES = ("502", "drop", "hang")
DEFAULT_TOKEN = "123456789:TEST-token-for-the-fake-server"
# Telegram's description for two getUpdates pollers on one token (HTTP 409), as quoted in
# https://github.com/python-telegram-bot/python-telegram-bot/issues/4237
OTHER_POLLER = ("Conflict: terminated by other getUpdates request; make sure that only one bot "
                "instance is running")
# The actions sendChatAction accepts (https://core.telegram.org/bots/api#sendchataction).
CHAT_ACTIONS = ("typing", "upload_photo", "record_video", "upload_video", "record_voice",
                "upload_voice", "upload_document", "choose_sticker", "find_location",
                "record_video_note", "upload_video_note")

# What Telegram marks as a bot_command entity: the slash, the command's letters, digits and
# underscores, and a bot's @username ("/start@jobs_bot":
# https://core.telegram.org/bots/api#messageentity; https://core.telegram.org/bots/api#botcommand)
BOT_COMMAND = re.compile(r"/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?")


class FakeTelegram(BotMessages):
    """In-memory Bot API with long polling, message edits, callback queries and an outage switch."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, now: Callable[[], datetime] | None = None,
                 bot_username: str = "tradebot_test_bot", port: int = 0) -> None:
        """`port`: 0 picks a free one (`self.port` once started)."""
        self.token = token
        self.now = now or (lambda: datetime.now(UTC))
        self.bot_user = bot_user(token, bot_username)
        self.sent: list[SentItem] = []
        self.webhook: dict[str, Any] | None = None
        self.webhook_deliveries: list[int] = []   # HTTP statuses the bot's webhook answered
        self.calls: list[str] = []
        self.chat_actions: list[tuple[int, str]] = []   # (chat id, action) in order
        self.commands: list[dict[str, str]] = []
        self.down = False
        self.down_mode = "502"
        self._flood: dict[str, list[int]] = {}   # method (lower case) -> next retry_after values
        self._flood_until: dict[str, float] = {}  # method (lower case) -> monotonic end of limit
        self._html_refusals = 0         # the next HTML texts answer "can't parse entities"
        self._refused_chats: dict[int, ApiError] = {}
        self._updates: list[dict[str, Any]] = []
        self.update_log = UpdateLog()     # each update's way to the bot (evidence)
        self._next_update_id = 1
        self._next_message_id = 1
        self._next_query_id = 1
        self._polls = 0                 # getUpdates calls so far: the newest one polls
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.pins = ChatPins(self._messages)
        self._open_queries: set[str] = set()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = port

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> "FakeTelegram":
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_post("/_control/inject", self._control_inject)
        app.router.add_post("/_control/press", self._control_press)
        app.router.add_get("/_control/sent", self._control_sent)
        app.router.add_post("/_control/down", self._control_down)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self.down = False
        self._notify()   # release long polls and hung requests so the server closes at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeTelegram":
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for TELEGRAM_API_URL (the token is appended by the client)."""
        return f"{self.base_url}/bot"

    # --- the test API ---------------------------------------------------------------
    def inject_message(self, chat_id: int, user_id: int, text: str,
                       date: datetime | int | None = None) -> int:
        """A user writes `text` in `chat_id` (negative ids are groups); returns its message id."""
        moment = self.now() if date is None else date
        timestamp = moment if isinstance(moment, int) else int(moment.timestamp())
        message: dict[str, Any] = {
            "message_id": self._new_message_id(), "date": timestamp, "text": text,
            "chat": chat(chat_id), "from": user(user_id)}
        command = BOT_COMMAND.match(text)
        if command is not None:
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": utf16_length(command.group())}]
        self._messages[(chat_id, message["message_id"])] = message
        self._push_update({"message": message})
        return int(message["message_id"])

    def press_button(self, chat_id: int, user_id: int, message_id: int, callback_data: str,
                     *, expired: bool = False) -> str:
        """A user presses an inline button under a bot message; returns the callback query id.
        `expired`: the query reaches the bot too late to be answered ("query is too old")."""
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        query_id = str(self._next_query_id)
        self._next_query_id += 1
        if not expired:
            self._open_queries.add(query_id)
        self._push_update({"callback_query": {
            "id": query_id, "from": user(user_id), "message": message,
            "chat_instance": f"instance-{chat_id}", "data": callback_data}})
        return query_id

    def set_down(self, down: bool, mode: str = "502") -> None:
        """Simulate Telegram unreachable: "502" answers Bad Gateway, "drop" closes the socket,
        "hang" holds every request unanswered until Telegram is back (then answers 502)."""
        if mode not in DOWN_MODES:
            raise ValueError(f"mode must be one of {DOWN_MODES}, not {mode!r}")
        self.down, self.down_mode = down, mode
        self._notify()

    def flood(self, retry_after: int, times: int = 1, method: str = "sendMessage") -> None:
        """The next `times` calls of `method` answer 429 Too Many Requests, as Telegram does:
        {"ok": false, "error_code": 429, "description": "Too Many Requests: retry after N",
        "parameters": {"retry_after": N}} (N whole seconds)."""
        self._flood.setdefault(method.lower(), []).extend([retry_after] * times)

    def flood_for(self, seconds: float, method: str = "sendMessage") -> None:
        """Every call of `method` for the next `seconds` answers 429 with the seconds left:
        Telegram's `retry_after` is "the number of seconds left to wait before the request
        can be repeated" (https://core.telegram.org/bots/api#responseparameters), so a call
        before then is refused again, and one after it is answered."""
        self._flood_until[method.lower()] = time.monotonic() + seconds

    def end_flood(self) -> None:
        """Telegram answers every method again."""
        self._flood.clear()
        self._flood_until.clear()

    def refuse_html(self, times: int = 1) -> None:
        """The next `times` texts sent with parse_mode HTML answer 400 "can't parse entities"
        (what Telegram answers for markup it cannot parse)."""
        self._html_refusals += times

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sending there answers 403 Forbidden."""
        self._refused_chats[chat_id] = ApiError(403, "Forbidden: bot was blocked by the user")

    def unblock(self, chat_id: int) -> None:
        """The user unblocked the bot (or the group added it back): sending works again."""
        self._refused_chats.pop(chat_id, None)

    def restrict(self, chat_id: int) -> None:
        """An admin took the bot's right to send messages in the group (`can_send_messages`,
        https://core.telegram.org/bots/api#chatpermissions): Telegram answers 400, not 403
        (its words as bots met them: TelegramBotAPI/errors json/bad-request-not-enough-rights-
        text.json, python-telegram-bot#3956). `unblock` gives the right back."""
        self._refused_chats[chat_id] = ApiError(
            400, "Bad Request: not enough rights to send text messages to the chat")

    def forget_chat(self, chat_id: int) -> None:
        """The chat does not exist (any more): sending there answers 400 chat not found."""
        self._refused_chats[chat_id] = ApiError(400, "Bad Request: chat not found")

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """The message as it is now (after edits)."""
        return self._messages[(chat_id, message_id)]

    def sent_to(self, chat_id: int, method: str | None = None) -> list[SentItem]:
        return [item for item in self.sent
                if item.chat_id == chat_id and (method is None or item.method == method)]

    async def wait_for(self, predicate: Callable[[SentItem], bool], timeout: float = 5.0,
                       since: int = 0) -> SentItem:
        """The first sent item (from index `since`) matching `predicate`; waits up to `timeout`."""
        async def first_match() -> SentItem:
            while True:
                changed = self._changed
                for item in self.sent[since:]:
                    if predicate(item):
                        return item
                await changed.wait()
        try:
            return await asyncio.wait_for(first_match(), timeout)
        except TimeoutError:
            shown = "\n".join(f"  {item.method} {item.chat_id} {item.plain!r}" for item in self.sent)
            raise AssertionError(f"nothing matching was sent within {timeout}s; sent:\n{shown}") from None

    # --- HTTP: Bot API ----------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.calls.append(method)
        if self.down:
            if self.down_mode == "drop" and request.transport is not None:
                request.transport.abort()
                return web.Response(status=502)
            while self.down and self.down_mode == "hang":
                await self._changed.wait()
            return web.json_response({"ok": False, "error_code": 502,
                                      "description": "Bad Gateway"}, status=502)
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        handler = self._methods().get(method.lower())
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"},
                                     status=404)
        flood = self._flood.get(method.lower())
        left = self._flood_until.get(method.lower(), 0.0) - time.monotonic()
        if flood or left > 0:
            retry_after = flood.pop(0) if flood else math.ceil(left)
            return web.json_response(ApiError(429, f"Too Many Requests: retry after {retry_after}",
                                              {"retry_after": retry_after}).body(), status=429)
        params = await self._params(request)
        try:
            result = await handler(params)
        except ApiError as error:
            return web.json_response(error.body(), status=error.code)
        return web.json_response({"ok": True, "result": result})

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {"getme": self._get_me, "getupdates": self._get_updates,
                "sendmessage": self._send_message, "sendphoto": self._send_photo,
                "editmessagetext": self._edit_message_text,
                "editmessagereplymarkup": self._edit_reply_markup,
                "answercallbackquery": self._answer_callback_query,
                "setmycommands": self._set_my_commands, "getmycommands": self._get_my_commands,
                "deletewebhook": self._true, "sendchataction": self._send_chat_action,
                "setwebhook": self._set_webhook, "getchat": self._get_chat,
                "pinchatmessage": self.pins.pin_chat_message,
                "unpinchatmessage": self.pins.unpin_chat_message,
                "close": self._true, "logout": self._true}

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        """Webhook mode: remember where Telegram would push updates, and the secret."""
        self.webhook = {"url": params.get("url"), "secret_token": params.get("secret_token")}
        return True

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            for name, value in (await request.post()).items():
                params[name] = value.file.read() if isinstance(value, web.FileField) else value
        return params

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return bot_me(self.bot_user)

    async def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if chat_id in self._refused_chats:
            raise self._refused_chats[chat_id]
        return self.pins.chat_full_info(chat_id)

    async def _true(self, params: dict[str, Any]) -> bool:
        return True

    async def _send_chat_action(self, params: dict[str, Any]) -> bool:
        """https://core.telegram.org/bots/api#sendchataction: chat_id and one of the listed
        actions; "Returns True on success"."""
        if params.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((int(params["chat_id"]), str(params["action"])))
        return True

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """One long poll per token, as on Telegram: a newer getUpdates ends the one still
        waiting with 409 OTHER_POLLER (two agents on one token)."""
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        self._polls += 1
        mine = self._polls
        self.update_log.asked(offset)
        self._notify()                      # a poll still waiting ends (below)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return []
            if self._polls != mine:
                raise ApiError(409, OTHER_POLLER)
        returned = self._updates[:limit]
        self.update_log.answered(returned)
        return returned

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands = list(json_param(params.get("commands")) or [])
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return self.commands

    # --- HTTP: control (when the agent runs as a subprocess) ----------------------------
    async def _control_inject(self, request: web.Request) -> web.Response:
        body = await request.json()
        date = body.get("date")
        message_id = self.inject_message(int(body["chat_id"]), int(body["user_id"]),
                                         str(body["text"]), None if date is None else int(date))
        return web.json_response({"message_id": message_id})

    async def _control_press(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            query_id = self.press_button(int(body["chat_id"]), int(body["user_id"]),
                                         int(body["message_id"]), str(body["callback_data"]))
        except KeyError as missing:
            return web.json_response({"error": str(missing)}, status=404)
        return web.json_response({"callback_query_id": query_id})

    async def _control_sent(self, request: web.Request) -> web.Response:
        return web.json_response({"sent": [{
            "method": item.method, "chat_id": item.chat_id, "text": item.text,
            "plain": item.plain, "parse_mode": item.parse_mode, "reply_markup": item.reply_markup,
            "photo_base64": base64.b64encode(item.photo).decode() if item.photo else None,
            "message_id": item.message_id, "callback_query_id": item.callback_query_id,
        } for item in self.sent]})

    async def _control_down(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.set_down(bool(body["down"]), str(body.get("mode", "502")))
        return web.json_response({"down": self.down, "mode": self.down_mode})

    # --- internals --------------------------------------------------------------------
    def _push_update(self, fields: dict[str, Any]) -> None:
        update = {"update_id": self._next_update_id, **fields}
        self._next_update_id += 1
        if self.webhook and self.webhook.get("url"):
            asyncio.ensure_future(self._post_to_webhook(update))   # Telegram pushes it
            return
        self._updates.append(update)
        self.update_log.queued(update)
        self._notify()

    async def _post_to_webhook(self, update: dict[str, Any]) -> None:
        import aiohttp
        assert self.webhook is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook.get("secret_token") or ""}
        async with aiohttp.ClientSession() as session, \
                session.post(self.webhook["url"], json=update, headers=headers) as response:
            self.webhook_deliveries.append(response.status)

    def _notify(self) -> None:
        """Wake every waiter (long polls, wait_for); later waiters wait on a fresh event."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _record(self, item: SentItem) -> None:
        self.sent.append(item)
        self._notify()


if __name__ == "__main__":      # the server for a person, with a chat in the terminal
    from tests.fakes.telegram_manual import main
    main()

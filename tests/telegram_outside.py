"""The fake Bot API as seen from outside, for the tests of what a real Bot API server does
(tests/test_telegram_*.py): raw updates of any documented kind, the time of every call,
getUpdates refused with a chosen error. Answers follow https://core.telegram.org/bots/api
(#making-requests for the error envelope, #getupdates, #update, #message).

A test module with `pytest_plugins = ["tests.test_bot_support"]` defines its own `telegram`
fixture as `async with OutsideTelegram(now=clock.now) as fake: yield fake`; the `bot`
fixture then talks to it.
"""

import asyncio
import time
from typing import Any

from aiohttp import web

from tests.fakes.telegram_html import ApiError
from tests.fakes.telegram_objects import chat, user
from tests.fakes.telegram_server import OTHER_POLLER as OTHER_POLLER  # re-exported
from tests.fakes.telegram_server import FakeTelegram

BOT_NAME = "tradebot_test_bot"
# getUpdates "will not work if an outgoing webhook is set up"
# (https://core.telegram.org/bots/api#getupdates); Telegram's 409 description then:
WEBHOOK_ACTIVE = ("Conflict: can't use getUpdates method while webhook is active; use "
                  "deleteWebhook to delete the webhook first")


class OutsideTelegram(FakeTelegram):
    """The fake Bot API plus what a test needs from outside."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.call_times: list[tuple[str, float]] = []
        self.get_updates_error: ApiError | None = None
        self.photo_error: ApiError | None = None     # every sendPhoto answers this
        self._answers_to_lose: dict[str, int] = {}
        self._migrated: dict[int, int] = {}          # group id -> its supergroup's id
        self._errors: dict[str, list[ApiError]] = {}  # method (lower case) -> next answers

    def inject_update(self, fields: dict[str, Any]) -> None:
        """Any Update (https://core.telegram.org/bots/api#update): `fields` without update_id."""
        self._push_update(fields)

    def skip_update_ids(self, count: int) -> None:
        """update_id gaps: "identifiers start from a certain positive number and increase
        sequentially" but need not be consecutive for a bot (#getupdates)."""
        self._next_update_id += count

    def fail(self, method: str, error: ApiError, times: int = 1) -> None:
        """The next `times` calls of `method` answer `error` (any documented error answer)."""
        self._errors.setdefault(method.lower(), []).extend([error] * times)

    def lose_answers(self, method: str, times: int = 1) -> None:
        """The next `times` calls of `method` are carried out, then the connection is reset
        before the answer leaves: the client cannot know the message was sent."""
        self._answers_to_lose[method.lower()] = times

    async def _api(self, request: Any) -> Any:
        method = request.match_info["method"]
        self.call_times.append((method, time.monotonic()))
        errors = self._errors.get(method.lower())
        if errors and request.match_info["token"] == self.token:
            error = errors.pop(0)
            return web.json_response(error.body(), status=error.code)
        response = await super()._api(request)
        if self._answers_to_lose.get(method.lower(), 0) > 0 and request.transport is not None:
            self._answers_to_lose[method.lower()] -= 1
            request.transport.abort()
        return response

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.get_updates_error is not None:
            raise self.get_updates_error
        return await super()._get_updates(params)

    def migrate(self, group_id: int, supergroup_id: int, announced: bool = False) -> None:
        """The group became a supergroup with a new id: sending to the old id answers 400 with
        parameters.migrate_to_chat_id ("The group has been migrated to a supergroup with the
        specified identifier", https://core.telegram.org/bots/api#responseparameters).
        `announced`: the two service messages Telegram sends a member bot at once too
        (Message.migrate_to_chat_id in the group, Message.migrate_from_chat_id in the new
        supergroup: https://core.telegram.org/bots/api#message)."""
        self._migrated[group_id] = supergroup_id
        if announced:
            for chat_id, field, other in ((group_id, "migrate_to_chat_id", supergroup_id),
                                          (supergroup_id, "migrate_from_chat_id", group_id)):
                self._push_update({"message": {
                    "message_id": self._new_message_id(), "date": int(self.now().timestamp()),
                    "chat": chat(chat_id), field: other}})

    def _check_migrated(self, params: dict[str, Any]) -> None:
        new_id = self._migrated.get(int(params.get("chat_id", 0)))
        if new_id is not None:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           {"migrate_to_chat_id": new_id})

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_migrated(params)
        return await super()._send_message(params)

    async def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_migrated(params)
        return await super()._get_chat(params)

    async def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_migrated(params)
        if self.photo_error is not None:
            raise self.photo_error
        return await super()._send_photo(params)

    def times_of(self, method: str) -> list[float]:
        return [at for name, at in self.call_times if name.lower() == method.lower()]

    async def wait_for_call(self, method: str, after: int = 0, timeout: float = 5.0) -> None:
        """Until `method` was called more than `after` times."""
        for _ in range(int(timeout / 0.02)):
            if len(self.times_of(method)) > after:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{method} not called within {timeout}s")


def message_fields(chat_id: int, user_id: int, text: str, date: int, message_id: int = 9000,
                   **extra: Any) -> dict[str, Any]:
    """A Message (https://core.telegram.org/bots/api#message) with a bot_command entity."""
    fields: dict[str, Any] = {"message_id": message_id, "date": date, "chat": chat(chat_id),
                              "from": user(user_id), "text": text, **extra}
    if text.startswith("/"):
        fields["entities"] = [{"type": "bot_command", "offset": 0,
                               "length": len(text.split()[0])}]
    return fields


async def settle(seconds: float = 0.8) -> None:
    """Nothing to wait for (the point is that nothing happens): give the bot a moment."""
    await asyncio.sleep(seconds)


def texts_to(telegram: FakeTelegram, chat_id: int) -> list[str]:
    return [item.plain or "" for item in telegram.sent_to(chat_id, "sendMessage")]

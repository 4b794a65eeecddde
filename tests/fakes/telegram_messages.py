"""The fake Bot API's messages: what the bot sends, edits and answers, as Telegram checks it.

sendMessage, sendPhoto, editMessageText, editMessageReplyMarkup, answerCallbackQuery
(https://core.telegram.org/bots/api#sendmessage, #sendphoto, #editmessagetext,
#editmessagereplymarkup, #answercallbackquery), with Telegram's strictness where it matters
to us: HTML it cannot parse and texts over 4096 characters (captions over 1024) answer 400,
an edit that changes nothing answers 400 "message is not modified", a callback query
answered twice or too late 400. `FakeTelegram` (tests/fakes/telegram_server.py) mixes these
in; its state is declared here.
"""

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from tests.fakes.telegram_html import ApiError, parse_telegram_html, utf16_length
from tests.fakes.telegram_objects import PNG_SIGNATURE, SentItem, chat, photo_sizes

MAX_TEXT = 4096
MAX_CAPTION = 1024


class BotMessages:
    """The message methods of FakeTelegram and the message store they share."""

    # FakeTelegram's state (set in its __init__)
    now: Callable[[], datetime]
    bot_user: dict[str, Any]
    _messages: dict[tuple[int, int], dict[str, Any]]
    _next_message_id: int
    _open_queries: set[str]
    _html_refusals: int
    _refused_chats: dict[int, ApiError]
    _record: Callable[[SentItem], Awaitable[None]]

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if chat_id in self._refused_chats:
            raise self._refused_chats[chat_id]
        text = str(params.get("text", ""))
        plain = self._checked_text(text, params.get("parse_mode"), MAX_TEXT, "message is too long")
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        markup = json_param(params.get("reply_markup"))
        message = self._bot_message(chat_id, {"text": plain}, markup)
        # disable_notification: "Sends the message silently. Users will receive a notification
        # with no sound." (Boolean, optional: https://core.telegram.org/bots/api#sendmessage)
        await self._record(SentItem("sendMessage", chat_id, text, plain, params.get("parse_mode"),
                                    markup, message_id=message["message_id"],
                                    disable_notification=str(
                                        params.get("disable_notification")).lower() == "true"))
        return message

    async def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        photo = params.get("photo")
        if not isinstance(photo, bytes) or not photo.startswith(PNG_SIGNATURE):
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        caption = params.get("caption")
        plain = None if caption is None else self._checked_text(
            str(caption), params.get("parse_mode"), MAX_CAPTION, "message caption is too long")
        fields: dict[str, Any] = {"photo": photo_sizes(photo, f"photo-{self._next_message_id}")}
        if plain is not None:
            fields["caption"] = plain
        message = self._bot_message(chat_id, fields, json_param(params.get("reply_markup")))
        await self._record(SentItem("sendPhoto", chat_id, caption, plain, params.get("parse_mode"),
                                    None, photo, message["message_id"]))
        return message

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, message = self._editable(params)
        text = str(params.get("text", ""))
        plain = self._checked_text(text, params.get("parse_mode"), MAX_TEXT, "message is too long")
        markup = json_param(params.get("reply_markup"))
        if plain == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        message["text"] = plain
        message["edit_date"] = int(self.now().timestamp())
        self._set_markup(message, markup)
        await self._record(SentItem("editMessageText", chat_id, text, plain,
                                    params.get("parse_mode"), markup,
                                    message_id=message["message_id"]))
        return message

    async def _edit_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, message = self._editable(params)
        markup = json_param(params.get("reply_markup"))
        if markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        self._set_markup(message, markup)
        message["edit_date"] = int(self.now().timestamp())
        await self._record(SentItem("editMessageReplyMarkup", chat_id, reply_markup=markup,
                                    message_id=message["message_id"]))
        return message

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id"))
        if query_id not in self._open_queries:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired "
                                "or query ID is invalid")
        self._open_queries.discard(query_id)
        text = params.get("text")
        await self._record(SentItem("answerCallbackQuery", None, text, text,
                                    callback_query_id=query_id))
        return True

    def _new_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _bot_message(self, chat_id: int, fields: dict[str, Any],
                     markup: dict[str, Any] | None) -> dict[str, Any]:
        message = {"message_id": self._new_message_id(), "date": int(self.now().timestamp()),
                   "chat": chat(chat_id), "from": self.bot_user, **fields}
        self._set_markup(message, markup)
        self._messages[(chat_id, message["message_id"])] = message
        return message

    @staticmethod
    def _set_markup(message: dict[str, Any], markup: dict[str, Any] | None) -> None:
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)

    def _editable(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id, message_id = int(params.get("chat_id", 0)), int(params.get("message_id", 0))
        message = self._messages.get((chat_id, message_id))
        if message is None or message["from"].get("id") != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat_id, message

    def _checked_text(self, text: str, parse_mode: str | None, limit: int, too_long: str) -> str:
        html_mode = (parse_mode or "").upper() == "HTML"
        if html_mode and self._html_refusals:
            self._html_refusals -= 1
            raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag "
                                '"x" at byte offset 0')
        plain = parse_telegram_html(text) if html_mode else text
        if utf16_length(plain) > limit:
            raise ApiError(400, f"Bad Request: {too_long}")
        return plain


def json_param(value: Any) -> Any:
    """A parameter that may come JSON-encoded (a form post carries reply_markup as text)."""
    if value is None or isinstance(value, dict | list):
        return value
    return json.loads(value)

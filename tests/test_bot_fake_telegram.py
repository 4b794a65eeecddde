"""The fake Bot API answers the way Telegram documents it, checked over raw HTTP against the
documented examples kept in tests/fixtures/telegram/ (each with its source URL)."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.telegram_server import FakeTelegram

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
# Required by https://core.telegram.org/bots/api#user, #message, #callbackquery although the
# older examples on the webhooks page leave them out.
REQUIRED_SINCE_THE_EXAMPLES = {"from": {"is_bot"}, "callback_query": {"chat_instance"}}
OPTIONAL = {"last_name", "username", "inline_message_id", "type"}


def documented(name: str) -> dict[str, Any]:
    fixture = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert fixture["source"].startswith("https://core.telegram.org/bots/")
    return dict(fixture)


def shape_differences(example: dict[str, Any], ours: dict[str, Any], path: str = "") -> list[str]:
    """Where `ours` lacks a field of Telegram's example, or holds it with another JSON type."""
    problems = [f"{path}{key} missing" for key in sorted(
        REQUIRED_SINCE_THE_EXAMPLES.get(path.rstrip(".").rsplit(".", 1)[-1], set()) - set(ours))]
    for key, value in example.items():
        if key not in ours:
            if key not in OPTIONAL:
                problems.append(f"{path}{key} missing")
            continue
        if type(ours[key]) is not type(value):
            problems.append(f"{path}{key} is {type(ours[key]).__name__}, "
                            f"documented {type(value).__name__}")
        elif isinstance(value, dict):
            problems += shape_differences(value, ours[key], f"{path}{key}.")
    return problems


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


async def call(telegram: FakeTelegram, method: str, token: str | None = None,
               **params: Any) -> tuple[int, dict[str, Any]]:
    url = f"{telegram.base_url}/bot{token or telegram.token}/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, json=params) as answer:
        return answer.status, await answer.json()


async def test_flood_control_answer_is_telegrams_429_with_retry_after(telegram: FakeTelegram):
    fixture = documented("error_429_flood_control.json")
    telegram.flood(retry_after=9)
    status, body = await call(telegram, "sendMessage", chat_id=42, text="hello")
    assert (status, body) == (fixture["status"], fixture["body"])
    status, body = await call(telegram, "sendMessage", chat_id=42, text="hello")
    assert status == 200 and body["ok"] is True          # only the next call was refused


async def test_unknown_token_answer_is_telegrams_401(telegram: FakeTelegram):
    fixture = documented("error_401_unauthorized.json")
    status, body = await call(telegram, "getMe", token="987654321:not-this-bot")
    assert (status, body) == (fixture["status"], fixture["body"])


async def test_message_updates_have_the_documented_shape(telegram: FakeTelegram):
    example = documented("update_message_text.json")["body"]
    telegram.inject_message(1111111, 1111111, "/start")
    _, answer = await call(telegram, "getUpdates")
    [update] = answer["result"]
    assert shape_differences(example, update) == []
    assert update["message"]["from"]["is_bot"] is False
    assert update["message"]["chat"]["type"] == "private"


async def test_callback_query_updates_have_the_documented_shape(telegram: FakeTelegram):
    example = documented("update_callback_query.json")["body"]
    _, sent = await call(telegram, "sendMessage", chat_id=1111111, text="Close?", reply_markup={
        "inline_keyboard": [[{"text": "Close", "callback_data": "n:close"}]]})
    telegram.press_button(1111111, 1111111, sent["result"]["message_id"], "n:close")
    _, answer = await call(telegram, "getUpdates")
    [update] = answer["result"]
    assert shape_differences(example, update) == []
    query = update["callback_query"]
    assert query["message"]["message_id"] == sent["result"]["message_id"]   # under a bot message


async def test_bot_messages_carry_the_bot_as_a_plain_user_and_edits_an_edit_date(
        telegram: FakeTelegram):
    _, me = await call(telegram, "getMe")
    assert me["result"]["can_join_groups"] is True       # "Returned only in getMe"
    _, sent = await call(telegram, "sendMessage", chat_id=42, text="<b>hi</b>", parse_mode="HTML")
    message = sent["result"]
    assert message["from"] == {"id": me["result"]["id"], "is_bot": True,
                               "first_name": "tradebot", "username": "tradebot_test_bot"}
    assert "edit_date" not in message
    _, edited = await call(telegram, "editMessageText", chat_id=42,
                           message_id=message["message_id"], text="bye")
    assert edited["result"]["text"] == "bye" and edited["result"]["edit_date"] >= message["date"]


async def test_an_expired_button_press_cannot_be_answered(telegram: FakeTelegram):
    _, sent = await call(telegram, "sendMessage", chat_id=42, text="Close?")
    query_id = telegram.press_button(42, 42, sent["result"]["message_id"], "n:close",
                                     expired=True)
    status, body = await call(telegram, "answerCallbackQuery", callback_query_id=query_id)
    assert status == 400 and body["description"].startswith("Bad Request: query is too old")

"""The fake Bot API with two getUpdates pollers on one token (two agents started on one bot
token, as happened in the outside judge's manual play): the fake gave both the same
updates, so both agents ran every command (two confirmation prompts for one /short). The
real Bot API allows one long poll per token: a newer getUpdates ends the one still waiting
with 409 "Conflict: terminated by other getUpdates request; make sure that only one bot
instance is running" (as quoted in
https://github.com/python-telegram-bot/python-telegram-bot/issues/4237), which the agent
turns into its SECOND_INSTANCE alert. The Bot API page itself is silent on two pollers."""

import asyncio

import aiohttp

from tests.fakes.telegram_server import FakeTelegram
from tests.telegram_outside import OTHER_POLLER


async def test_a_newer_long_poll_ends_the_waiting_one_with_409():
    async with FakeTelegram() as telegram, aiohttp.ClientSession() as http:
        url = f"{telegram.api_url}{telegram.token}/getUpdates"
        first = asyncio.ensure_future(http.post(url, json={"timeout": 5}))
        await asyncio.sleep(0.3)                       # the first one is waiting
        second = asyncio.ensure_future(http.post(url, json={"timeout": 1}))
        first_answer = await asyncio.wait_for(first, 3)
        assert first_answer.status == 409
        assert (await first_answer.json())["description"] == OTHER_POLLER
        second_answer = await asyncio.wait_for(second, 3)
        assert second_answer.status == 200 and (await second_answer.json())["ok"]


async def test_one_poller_after_another_is_no_conflict():
    async with FakeTelegram() as telegram, aiohttp.ClientSession() as http:
        url = f"{telegram.api_url}{telegram.token}/getUpdates"
        telegram.inject_message(111, 111, "/status")
        for _ in range(3):
            async with http.post(url, json={"timeout": 0}) as answer:
                assert answer.status == 200

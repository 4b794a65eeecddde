"""/close SYMBOL (or /close all) with nothing open: the bot asked "Close BTCUSDT at market?
... [Close BTCUSDT] [Cancel]", and only after the tap said there was nothing. It answers at
once, without buttons: "No open position on BTCUSDT". A position on the exchange the agent
does not track (opened by hand, not adopted) still counts: /close closes it."""

from decimal import Decimal

from tests.engine_world import SYMBOL
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_engine import flat, flat_bot, telegram  # noqa: F401 - fixtures
from tests.test_bot_support import OWNER
from trader.domain import Side


async def reply_to(telegram: FakeTelegram, text: str) -> str:  # noqa: F811
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    item = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                   and item.method == "sendMessage", since=since, timeout=10)
    assert not item.buttons, item.plain          # no confirmation asked
    return item.plain or ""


async def test_close_of_a_flat_symbol_answers_at_once(flat, telegram, flat_bot):  # noqa: F811
    assert await reply_to(telegram, f"/close {SYMBOL}") \
        == f"No open position on {SYMBOL}; nothing to close."


async def test_close_all_with_nothing_open_answers_at_once(flat, telegram, flat_bot):  # noqa: F811
    assert await reply_to(telegram, "/close all") == "No open positions; nothing to close."


async def test_close_of_a_position_opened_by_hand_still_asks_and_closes_it(
        flat, telegram, flat_bot):  # noqa: F811
    flat.paper.publish(flat.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.01"),
                                                   flat.engine.clock.now()))
    await flat.step()                     # the agent looks at the exchange (and adopts it)
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, f"/close {SYMBOL}")
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    assert prompt.plain.startswith(f"Close {SYMBOL} at market?"), prompt.plain

"""/close met by -4131 (HTTP 400, "The counterparty's best price does not meet the
PERCENT_PRICE filter limit": a thin book in a fast move, exactly when a close matters;
Binance USD-M error codes, https://developers.binance.com/docs/derivatives/
usds-margined-futures/error-code, MARKET_ORDER_REJECT). The refusal is named in Binance's
words, and the market closes of one /close are spaced (0.5 s, then 1 s: trader/
market_exit.py `close_retry_pause`) rather than sent 10 ms apart into the same book.

Found from outside: three closes ~10 ms apart, each "-4131 unexpected error", then "Close:
failed ... send /close again"."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance, LoggedRequest
from tests.test_close_during_rate_limit import agent_with_a_position
from trader.commands import Command, CommandKind

SYMBOL = "BTCUSDT"
MSG = "The counterparty's best price does not meet the PERCENT_PRICE filter limit."


def close_command() -> Command:
    return Command(CommandKind.CLOSE, "tg:1:2", datetime.now(UTC), symbol=SYMBOL,
                   source="telegram")


def market_closes(fake: FakeBinance) -> list[LoggedRequest]:
    return [r for r in fake.requests("POST /fapi/v1/order") if r.params.get("type") == "MARKET"]


def gaps_ms(requests: list[LoggedRequest]) -> list[int]:
    """The time between one request and the next, by their signed `timestamp`."""
    times = [int(r.params["timestamp"]) for r in requests]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


async def test_a_close_refused_for_percent_price_is_retried_after_a_pause_and_closes(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            agent_with_a_position(fake, tmp_path) as controller:
        fake.inject_fault("POST /fapi/v1/order", -4131, 400, msg=MSG, times=2)
        result = await controller.run(close_command())
        assert result.ok, result.lines
        assert fake.sim.position(SYMBOL).quantity == 0
        closes = market_closes(fake)
        assert len(closes) == 3, closes
        first, second = gaps_ms(closes)
        assert first >= 450 and second >= 950, (first, second)     # 10 ms apart before
        text = "\n".join(result.lines)
        assert "-4131 MARKET_ORDER_REJECT: the counterparty's best price does not meet the " \
               "PERCENT_PRICE filter limit" in text, text
        assert "unexpected error" not in text, text


async def test_a_close_refused_every_time_answers_within_seconds_and_goes_on(tmp_path):
    """The pauses in the command are bounded: three refused closes answer in about 1.5 s,
    "waiting" (the book may move: the refusal is one for now, not counted towards the
    give-up), and the next close goes on the backoff by itself, with no second /close."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            agent_with_a_position(fake, tmp_path) as controller:
        fake.inject_fault("POST /fapi/v1/order", -4131, 400, msg=MSG, times=3)
        result = await controller.run(close_command())
        assert not result.ok and result.waiting and fake.sim.position(SYMBOL).quantity > 0
        closes = market_closes(fake)
        assert len(closes) == 3 and sum(gaps_ms(closes)) < 3000, gaps_ms(closes)
        reply = format_result(CommandKind.CLOSE, result)
        assert reply.count("MARKET_ORDER_REJECT") >= 3 and "unexpected" not in reply, reply
        assert "protected by its stop-loss" in reply and "refuses for now" in reply, reply
        assert "send /close" not in reply, reply
        engine = controller.engine
        deadline = asyncio.get_running_loop().time() + 8.0
        while SYMBOL in engine.positions and asyncio.get_running_loop().time() < deadline:
            await engine.tick()
            await asyncio.sleep(0.2)
        assert fake.sim.position(SYMBOL).quantity == 0 and len(market_closes(fake)) == 4


async def test_a_close_accepted_at_once_is_sent_once_without_a_pause(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake, \
            agent_with_a_position(fake, tmp_path) as controller:
        started = datetime.now(UTC)
        result = await controller.run(close_command())
        assert result.ok, result.lines
        assert len(market_closes(fake)) == 1
        assert (datetime.now(UTC) - started).total_seconds() < 1.0
        assert format_result(CommandKind.CLOSE, result).startswith("✅ <b>Close: done</b>")

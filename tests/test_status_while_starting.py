"""/status while the exchange start-up keeps failing: Telegram answers from the start, but
the agent trades nothing until the exchange answers (trader/start_retry.py). The status said
"running · Equity 0.00 USDT ... Last error none" while an ERROR alert said "exchange start-up
failed". It says "starting" and names the failure.

Found from outside: `tradebot run` with the fake Binance answering 503 to exchangeInfo,
then /status from the fake Telegram."""

import asyncio
from decimal import Decimal

from tests.fakes.binance_harness import eventually, settings_for
from tests.fakes.binance_server import FakeBinance
from trader.commands import Command, CommandKind
from trader.engine_setup import build_engine, start_exchange
from trader.start_retry import until_done
from trader.views import answer_query

SYMBOL = "BTCUSDT"
UNKNOWN = "Unknown error, please check your request or try again later."


async def test_status_while_the_exchange_start_up_fails_says_starting_and_why(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        fake.inject_fault("GET /fapi/v1/exchangeInfo", http_status=503, times=1000, msg=UNKNOWN)
        settings = settings_for(fake, db_path=tmp_path / "t.db")
        engine, close = await build_engine(settings, start=False)
        stop = asyncio.Event()
        starting = asyncio.create_task(until_done(
            "exchange start-up", engine, stop, lambda: start_exchange(engine.exchange, settings)))
        try:
            assert await eventually(lambda: engine.last_error is not None, 10.0)
            status = answer_query(engine, Command(CommandKind.STATUS, "tg:1:1",
                                                  engine.clock.now())).status
            assert status is not None
            assert status.run_state == "starting"
            assert "exchange start-up" in (status.last_error or "")
            assert "503" in (status.last_error or "") or UNKNOWN in (status.last_error or "")
        finally:
            stop.set()
            await asyncio.wait_for(starting, 10)
            await close()

"""/close while a maker-first entry quotes, on the wire: the real python-binance client
against the fake Binance (tests/fakes), polling and with the user-data stream. The quote is
cancelled by the command (DELETE /fapi/v1/order, read back CANCELED), and past the maker
timeout nothing is bought at market: no MARKET entry is ever sent."""

import asyncio
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import SYMBOL, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.positions import make
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.commands import Command, CommandKind, CommandResult
from trader.control import Controller
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

D = Decimal
NEW_ORDER = "POST /fapi/v1/order"


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: D("50000")}) as server:
        yield server


async def command(controller: Controller, kind: CommandKind, clock: SystemClock,
                  **fields: object) -> CommandResult:
    """As the bot sends one: the engine's loop runs it between ticks."""
    pending = asyncio.ensure_future(controller.execute(
        Command(kind, f"test:{kind}", clock.now(), **fields)))  # type: ignore[arg-type]
    while not pending.done():
        await asyncio.sleep(0)
        await controller.process()
    return pending.result()


@pytest.mark.parametrize("streams", [False, True])
async def test_close_while_quoting_cancels_the_quote_and_buys_nothing(fake, tmp_path, streams):
    settings = settings_for(fake, db_path=tmp_path / "tradebot.db", entry_mode="maker",
                            maker_timeout_seconds=1, maker_requotes=0)
    clock = SystemClock()
    exchange = BinanceExchange(settings, clock, streams=streams)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, clock, Alerter(store))
    try:
        await boot(engine)
        planned = make(state=PositionState.ENTERING, quantity="0.010", entry="50000",
                       stop="49500", tp="51000", live_legs=False, seq={},
                       opened_at=clock.now(), key="mk1")
        assert await engine.entries.send(planned) is not None    # a quote at the bid
        await engine.tick()                                      # it rests, unfilled
        [quote] = [r.params["newClientOrderId"] for r in fake.requests(NEW_ORDER)]
        result = await command(Controller(engine), CommandKind.CLOSE, clock, symbol=SYMBOL)
        assert result.ok, result.lines
        assert "nothing had filled, nothing is open" in result.lines[0], result.lines
        answer = fake.endpoints.query_order({"symbol": SYMBOL, "origClientOrderId": quote})
        assert answer["status"] == "CANCELED"
        await asyncio.sleep(1.2)                                 # past the maker timeout
        for _ in range(4):
            await engine.tick()
            await asyncio.sleep(0.1)
        assert [r.params["type"] for r in fake.requests(NEW_ORDER)] == ["LIMIT"]
        assert (await exchange.position(SYMBOL)).side is None
        assert SYMBOL not in engine.positions
    finally:
        await exchange.close()
        store.close()

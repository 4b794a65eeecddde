"""End to end: the agent's live loop (trader.agent_loops' iteration: tick, then the reconciliation
a stream reconnect asks for), the real python-binance client and the fake Binance's
websockets. Funding settled while the user-data stream was down, or while the agent was not
running, is read back from the income history (GET /fapi/v1/income) and shows in the trade's
net, the close alert and /pnl; a payment both the stream and the history report is
journaled once, whichever arrives first.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.binance_harness import captured_logs, eventually, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_streams import FAST
from trader.agent_loops import live_iteration
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.commands import Command, CommandKind, CommandResult
from trader.control import Controller
from trader.display import money
from trader.domain import Side
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.exchange.gate import RetryPolicy
from trader.market.live import ExchangeFeed
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

SYMBOL = "BTCUSDT"
PRICE = Decimal("50000")
RATE = Decimal("0.0001")
AMOUNT = Decimal("-0.5")          # the long 0.1 at 50000 pays 0.01 %
INCOME = "GET /fapi/v1/income"
BOUND = 15.0                      # seconds: a bound on a condition, not a wait
FAST_RETRIES = RetryPolicy(attempts=3, initial=0.01, cap=0.05)


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


@asynccontextmanager
async def live_agent(fake: FakeBinance, db_path: Path) -> AsyncIterator[tuple[Engine,
                                                                               Controller]]:
    """The agent on `db_path`, booted, its live loop running with the user-data stream."""
    settings = settings_for(fake, db_path=db_path, tick_seconds=0.4)
    exchange = BinanceExchange(settings, SystemClock(), streams=True, stream_options=FAST,
                               retry_policy=FAST_RETRIES)
    await exchange.start([SYMBOL], settings.leverage)
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, SystemClock(), Alerter(store))
    controller = Controller(engine)
    await boot(engine)
    assert await eventually(lambda: exchange.streaming, BOUND)
    stop = asyncio.Event()

    async def loop() -> None:
        feed = ExchangeFeed(exchange, engine.symbols, settings.interval)
        last_reconcile = [engine.clock.now()]
        while not stop.is_set():
            await engine.contained("live loop", live_iteration(engine, controller, feed,
                                                                last_reconcile))
            await engine.wait_next(stop, settings.tick_seconds)

    task = asyncio.create_task(loop())
    try:
        assert await eventually(lambda: engine.positions.get(SYMBOL) is not None and
                                engine.positions[SYMBOL].state is PositionState.PROTECTED,
                                BOUND)
        yield engine, controller
    finally:
        stop.set()
        await task
        await exchange.close()
        store.close()


async def command(engine: Engine, controller: Controller, kind: CommandKind,
                  **fields: Any) -> CommandResult:
    return await controller.execute(Command(kind, f"test:{kind}:{engine.clock.now()}",
                                            engine.clock.now(), **fields))


async def outage(fake: FakeBinance, engine: Engine, during: Any = None) -> None:
    """The user-data stream goes silent (half-open: the client's heartbeat notices),
    `during` runs, and the stream comes back."""
    fake.freeze_streams()
    assert await eventually(lambda: not engine.exchange.streaming, BOUND)
    if during is not None:
        await during
    fake.freeze_streams(False)
    assert await eventually(lambda: engine.exchange.streaming, BOUND)


async def test_funding_paid_while_the_stream_was_down_shows_in_the_trade_and_in_pnl(
        fake, tmp_path):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
    async with live_agent(fake, tmp_path / "tradebot.db") as (engine, controller):
        await outage(fake, engine, during=fake.settle_funding(SYMBOL, RATE))

        assert await eventually(lambda: engine.store.funding_payments(), BOUND)
        [payment] = engine.store.funding_payments()
        assert (payment.symbol, payment.amount) == (SYMBOL, AMOUNT)
        pnl = (await command(engine, controller, CommandKind.PNL, period="day")).pnl
        assert pnl is not None and pnl.funding == AMOUNT

        await command(engine, controller, CommandKind.CLOSE, symbol=SYMBOL)
        assert await eventually(lambda: SYMBOL not in engine.positions, BOUND)
        [trade] = (await command(engine, controller, CommandKind.TRADES)).trades or []
        [closed] = engine.store.closed_positions()
        assert trade.net == closed.realized_pnl - closed.fees + AMOUNT
        [close_alert] = [a.text for a in engine.store.recent_alerts(100) if a.name == "CLOSE"]
        assert f"funding {money(AMOUNT, signed=True)}" in close_alert
        assert len(engine.store.funding_payments()) == 1


async def test_funding_the_stream_reported_is_not_read_back_twice_after_a_reconnect(
        fake, tmp_path):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
    async with live_agent(fake, tmp_path / "tradebot.db") as (engine, _):
        await fake.settle_funding(SYMBOL, RATE)                 # heard on the stream
        assert await eventually(lambda: engine.store.funding_payments(), BOUND)
        reads = len(fake.requests(INCOME))
        await outage(fake, engine)
        assert await eventually(lambda: len(fake.requests(INCOME)) > reads, BOUND)
        [(payment, tran_id)] = engine.store.funding_journal(engine.started_at)
        assert payment.amount == AMOUNT and tran_id == ""     # the stream's report, alone


class HeldFunding:
    """Stands in for the hub's send_user: FUNDING_FEE account updates are held back (a
    late event), everything else goes through."""

    def __init__(self, fake: FakeBinance) -> None:
        self.send = fake.hub.send_user
        self.held: list[dict] = []
        fake.hub.send_user = self   # type: ignore[method-assign]

    async def __call__(self, payloads: list[dict], listen_key: str | None = None) -> None:
        late = [p for p in payloads if p.get("e") == "ACCOUNT_UPDATE"
                and p["a"].get("m") == "FUNDING_FEE"]
        self.held += late
        await self.send([p for p in payloads if p not in late], listen_key)

    async def release(self) -> None:
        await self.send(self.held)


async def test_funding_read_back_before_its_late_stream_event_is_journaled_once(
        fake, tmp_path):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
    async with live_agent(fake, tmp_path / "tradebot.db") as (engine, _):
        held = HeldFunding(fake)
        await fake.settle_funding(SYMBOL, RATE)
        await outage(fake, engine)                              # the reconnect reads it back
        assert await eventually(lambda: engine.store.funding_payments(), BOUND)
        with captured_logs() as logs:
            await held.release()
            assert held.held and await eventually(
                lambda: any("already read back" in line for line in logs), BOUND)
        [(payment, tran_id)] = engine.store.funding_journal(engine.started_at)
        assert payment.amount == AMOUNT and tran_id == str(fake.income.rows[0]["tranId"])


async def test_funding_paid_while_the_agent_was_not_running_is_read_at_start_up(
        fake, tmp_path):
    """A restart on a persistent database (TRADEBOT_DB): the position found open was
    opened before; its funding of meanwhile is read back once it is protected."""
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
    db_path = tmp_path / "tradebot.db"
    async with live_agent(fake, db_path):
        pass
    await fake.settle_funding(SYMBOL, RATE)
    async with live_agent(fake, db_path) as (engine, controller):
        [payment] = engine.store.funding_payments()       # read at boot, before the loop
        assert payment.amount == AMOUNT
        pnl = (await command(engine, controller, CommandKind.PNL, period="day")).pnl
        assert pnl is not None and pnl.funding == AMOUNT

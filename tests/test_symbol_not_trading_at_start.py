"""A configured symbol whose exchangeInfo status is not TRADING when the agent starts (a
delisted perpetual reads SETTLING; the contract statuses PENDING_TRADING, TRADING,
PRE_DELIVERING, DELIVERING, DELIVERED, PRE_SETTLE, SETTLING, CLOSE are listed on
https://developers.binance.com/docs/derivatives/usds-margined-futures/common-definition;
the status is read from https://developers.binance.com/docs/derivatives/usds-margined-futures/
market-data/rest-api/Exchange-Information) does not stop the agent: it starts, the symbol
takes no entry, its open position is protected, a WARNING alert (SYMBOL_RULES) names it,
and the other symbols trade.

Binance's docs do not say whether POST /fapi/v1/marginType and /fapi/v1/leverage accept a
symbol that is not TRADING: both are tested (accepted; refused with -1122 "Invalid symbol
status.", https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code).
Refused, the start failed and was retried forever, so no symbol was traded or protected.
A symbol Binance does not list at all stays a configuration error: one line naming
TRADEBOT_SYMBOLS (exit 2)."""

import asyncio
import signal
import sys
from dataclasses import replace
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import eventually, settings_for
from tests.fakes.binance_server import FakeBinance
from tests.test_app import clean_env
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.config import ConfigError
from trader.domain import OrderType, Side
from trader.engine import Engine
from trader.engine_setup import start_exchange
from trader.exchange.binance import BinanceExchange
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

SETTLING, TRADING = "BTCUSDT", "ETHUSDT"


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SETTLING: Decimal("50000"),
                                   TRADING: Decimal("3000")}) as server:
        yield server


async def settling_with_a_position(fake) -> None:
    """A LONG opened by hand while the symbol traded, then the symbol settling (Binance
    refuses an opening order on a symbol that is not TRADING: -4140)."""
    await fake.open_position_by_hand(SETTLING, Side.BUY, Decimal("0.100"))
    fake.sim.set_rules(replace(fake.sim.rules_for(SETTLING), status="SETTLING"))


@pytest.mark.parametrize("settings_refused", [False, True], ids=["accepted", "refused-1122"])
async def test_a_settling_symbol_at_start_is_kept_without_entries_and_the_others_trade(
        fake, tmp_path, settings_refused):
    await settling_with_a_position(fake)
    if settings_refused:
        for endpoint in ("POST /fapi/v1/leverage", "POST /fapi/v1/marginType"):
            fake.inject_fault(endpoint, code=-1122, msg="Invalid symbol status.", times=50,
                              only={"symbol": SETTLING})
    settings = settings_for(fake, symbols=f"{SETTLING},{TRADING}", db_path=tmp_path / "t.db")
    exchange = BinanceExchange(settings, SystemClock(), streams=False)
    await start_exchange(exchange, settings)
    store = TradeStore.open(settings.db_path)
    engine = Engine(settings, exchange, store, SystemClock(), Alerter(store))
    try:
        await boot(engine)
        await engine.tick()
        position = engine.positions[SETTLING]
        assert position.state is PositionState.PROTECTED
        assert [o.type for o in fake.sim.open_orders(SETTLING)
                if o.type is OrderType.STOP_MARKET] == [OrderType.STOP_MARKET]
        warnings = [a for a in store.recent_alerts(50) if a.name == "SYMBOL_RULES"]
        assert [a.symbol for a in warnings] == [SETTLING], warnings
        assert "SETTLING" in warnings[0].text and warnings[0].severity == "WARN"
        assert not engine.entry_allowed(SETTLING)
        assert engine.entry_allowed(TRADING), engine.entry_refusal(TRADING)
        assert fake.sim.leverage(TRADING) == settings.leverage
    finally:
        await exchange.close()
        store.close()


async def test_a_symbol_binance_does_not_list_stays_a_configuration_error(fake, tmp_path):
    settings = settings_for(fake, symbols=f"{TRADING},NOSUCHUSDT", db_path=tmp_path / "t.db")
    exchange = BinanceExchange(settings, SystemClock(), streams=False)
    try:
        with pytest.raises(ConfigError) as refused:
            await start_exchange(exchange, settings)
    finally:
        await exchange.close()
    [line] = refused.value.problems
    assert line.startswith("TRADEBOT_SYMBOLS") and "NOSUCHUSDT" in line


async def test_tradebot_run_starts_and_protects_with_a_settling_symbol_refusing_its_settings(
        fake, tmp_path):
    """The real agent as a process (`tradebot run`): it used to log "exchange start-up
    failed ... -1122" and retry forever, protecting nothing; now the LONG on the settling
    symbol gets its stop and the agent runs until SIGTERM (exit 0)."""
    await settling_with_a_position(fake)
    for endpoint in ("POST /fapi/v1/leverage", "POST /fapi/v1/marginType"):
        fake.inject_fault(endpoint, code=-1122, msg="Invalid symbol status.", times=50,
                          only={"symbol": SETTLING})
    env = clean_env(tmp_path, TRADEBOT_EXCHANGE="binance", BINANCE_API_KEY=fake.api_key,
                    BINANCE_API_SECRET=fake.api_secret, BINANCE_FUTURES_URL=fake.url,
                    BINANCE_FUTURES_WS_URL=fake.ws_url, TRADEBOT_SYMBOLS=f"{SETTLING},{TRADING}")
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        protected = await eventually(lambda: any(
            o.type is OrderType.STOP_MARKET for o in fake.sim.open_orders(SETTLING)), 40.0)
        assert protected, log.read_text()[-3000:]
        assert "start-up failed" not in log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 25) == 0

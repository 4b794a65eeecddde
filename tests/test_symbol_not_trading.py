"""A symbol whose exchangeInfo status is no longer TRADING, as Binance refuses its orders.

Binance documents the status (TRADING, SETTLING, CLOSE, PENDING_TRADING, ...: https://
developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/
Exchange-Information) and the codes of its refusals (https://developers.binance.com/docs/
derivatives/usds-margined-futures/error-code): -4140 INVALID_OPENING_POSITION_STATUS
"Invalid symbol status for opening position", -4141 SYMBOL_ALREADY_CLOSED "Symbol is
closed", -1122 INVALID_SYMBOL_STATUS "Invalid symbol status.". The page does not say which
status each answers: the fake answers -4140 to an order that would open on a symbol not
TRADING, -4141 to any order on a CLOSE symbol (binance_ledger.ExchangeSimulator.place), and
-1122 is driven too. What trader/symbol_rules.py intends: "only TRADING takes new entries";
a position open on the symbol keeps its protection.

Found by a reviewer: the fake accepted any order whatever the symbol's status."""

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.test_binance_faults import alerts, booted_long, run
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.commands import CommandKind
from trader.domain import CloseReason, OrderRequest, OrderRole, OrderType, Side
from trader.exchange.base import ExchangeError
from trader.position import PositionState

SYMBOL = "BTCUSDT"
D = Decimal


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: D("50000")}) as server:
        yield server


def with_status(fake: FakeBinance, status: str) -> None:
    fake.sim.set_rules(replace(fake.sim.rules_for(SYMBOL), status=status))


def entry(client_id: str = "x-entry-1") -> OrderRequest:
    return OrderRequest(SYMBOL, Side.BUY, OrderType.MARKET, D("0.01"), client_id,
                        OrderRole.ENTRY)


@pytest.mark.parametrize("status,code", [("SETTLING", -4140), ("PENDING_TRADING", -4140),
                                         ("CLOSE", -4141)])
def test_the_fake_refuses_an_opening_order_on_a_symbol_not_trading(fake, status, code):
    with_status(fake, status)
    with pytest.raises(ExchangeError) as refused:
        fake.sim.place(entry(), fake.now())
    assert refused.value.code == code
    assert fake.sim.position(SYMBOL).quantity == 0


def test_the_fake_takes_a_reducing_order_while_settling_but_none_once_closed(fake):
    fake.sim.place(entry(), fake.now())
    close = replace(entry("x-close-1"), side=Side.SELL, reduce_only=True,
                    role=OrderRole.FLATTEN)
    with_status(fake, "CLOSE")
    with pytest.raises(ExchangeError) as refused:
        fake.sim.place(close, fake.now())
    assert refused.value.code == -4141
    with_status(fake, "SETTLING")
    fake.sim.place(close, fake.now())
    assert fake.sim.position(SYMBOL).quantity == 0


@pytest.mark.parametrize("status,answer,named", [
    ("SETTLING", None, "INVALID_OPENING_POSITION_STATUS"),         # the fake's own: -4140
    ("SETTLING", (-1122, "Invalid symbol status."), "INVALID_SYMBOL_STATUS"),  # the page's too
    ("CLOSE", None, "SYMBOL_ALREADY_CLOSED"),                      # the fake's own: -4141
])
async def test_an_entry_refused_for_the_symbols_status_is_not_sent_again(fake, tmp_path,
                                                                         status, answer,
                                                                         named):
    """The agent still reads TRADING (its rules were read at boot) when /long goes out:
    Binance refuses it. The agent goes on, says so in Binance's words (not as an
    "unexpected error"), and sends nothing again by itself."""
    await market_up_to_now(fake)
    async with booted(fake, tmp_path) as agent:
        engine = agent.engine
        with_status(fake, status)
        if answer is not None:
            fake.inject_fault("POST /fapi/v1/order", code=answer[0], msg=answer[1])
        result = await agent.run(CommandKind.LONG)
        assert not result.ok, result
        [line] = result.lines
        assert named in line and "unexpected" not in line and "nothing is open" in line
        for _ in range(3):
            await engine.tick()
        assert len(fake.requests("POST /fapi/v1/order")) == 1
        assert SYMBOL not in engine.positions
        assert fake.sim.position(SYMBOL).quantity == 0
        assert not alerts(engine, "ERROR")


@pytest.mark.parametrize("status", ["SETTLING", "CLOSE"])
async def test_a_position_open_when_its_symbol_stops_trading_keeps_its_stop(fake, tmp_path,
                                                                            status):
    """symbol_rules.py: only TRADING takes entries. The position keeps the stop it has;
    a /sl move is reduce-only: taken while SETTLING, refused once CLOSE (the old stop
    stays, never cancelled for a move that cannot be placed)."""
    async with booted_long(fake, tmp_path) as engine:
        await engine.tick()
        old = engine.positions[SYMBOL].stop.order
        assert old is not None
        with_status(fake, status)
        engine.housekeeping.due_at.pop("rules", None)
        await engine.tick()
        assert not engine.entry_allowed(SYMBOL)
        assert any(status in text for text in alerts(engine, "SYMBOL_RULES"))
        await run(engine, CommandKind.SL, symbol=SYMBOL, price=old.trigger_price - D("100"))
        for _ in range(3):
            await engine.tick()
        position = engine.positions[SYMBOL]
        stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        assert len(stops) == 1 and position.state is PositionState.PROTECTED
        moved = stops[0].trigger_price == old.trigger_price - D("100")
        assert moved is (status == "SETTLING")
        assert not alerts(engine, "ERROR")
        # then Binance settles it ("settlement_autoclose-": Event-Order-Update's special
        # client ids): recorded as such, nothing sent for it after
        placed = len(fake.requests("POST /fapi/v1/algoOrder"))
        await fake.close_position_by_exchange(SYMBOL, "settlement_autoclose-1796164000123")
        await engine.tick()
        assert SYMBOL not in engine.positions
        assert engine.store.closed_positions()[-1].close_reason is CloseReason.SETTLEMENT
        assert len(fake.requests("POST /fapi/v1/algoOrder")) == placed
        assert not alerts(engine, "ERROR")

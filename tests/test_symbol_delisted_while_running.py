"""exchangeInfo stops listing a symbol the agent trades while it runs (delisted: Binance
removes it; https://developers.binance.com/docs/derivatives/usds-margined-futures/
market-data/rest-api/Exchange-Information lists the symbols it trades, with their status).

Found from outside: the real engine and python-binance against the fake Binance, a LONG
protected, then exchangeInfo without its symbol. Every rules refresh raised KeyError (an
"unexpected error" alert each time instead of saying what happened), and a filter
rejection while replacing the stop re-read the rules, raised the same KeyError out of the
placement, and left the position without a stop. Now the symbol keeps its last rules with
the status NOT_LISTED: no new entry, the open position keeps its protection, and the
SYMBOL_RULES alert says it."""

from decimal import Decimal

import pytest

from tests.fakes.binance_harness import booted_engine, settings_for
from tests.fakes.binance_server import FakeBinance
from trader.domain import OrderType, Side
from trader.position import PositionState

SYMBOL = "BTCUSDT"


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as server:
        yield server


def without_the_symbol(answer: dict) -> dict:
    return {**answer, "symbols": [s for s in answer["symbols"] if s["symbol"] != SYMBOL]}


def alerts(engine, name: str) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(100) if a.name == name]


async def test_a_symbol_no_longer_listed_takes_no_entry_keeps_its_stop_and_is_said(fake,
                                                                                 tmp_path):
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
    settings = settings_for(fake, db_path=tmp_path / "t.db", sentinel_debounce_seconds=0,
                            sentinel_debounce_cycles=1)
    async with booted_engine(settings) as engine:
        await engine.tick()
        fake.reshape_answers("GET /fapi/v1/exchangeInfo", without_the_symbol, times=100)
        engine.housekeeping.due_at.pop("rules", None)
        await engine.tick()
        assert any(SYMBOL in text and "NOT_LISTED" in text
                   for text in alerts(engine, "SYMBOL_RULES")), alerts(engine, "ERROR")
        assert not alerts(engine, "ERROR")
        assert not engine.entry_allowed(SYMBOL)

        await fake.cancel_order_by_hand(SYMBOL, engine.positions[SYMBOL].stop.order.client_id)
        fake.inject_fault("POST /fapi/v1/algoOrder", code=-4014,
                          msg="Price not increased by tick size.")
        for _ in range(3):
            await engine.tick()
        stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
        assert len(stops) == 1, alerts(engine, "ERROR")
        assert engine.positions[SYMBOL].state is PositionState.PROTECTED
        assert not alerts(engine, "ERROR")

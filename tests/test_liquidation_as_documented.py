"""A liquidation and an ADL as Binance documents them, from the fake's wire to the agent's
records.

Event-Order-Update (https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Order-Update): a liquidation order's client id starts with
"autoclose-", its order type is LIQUIDATION and its fill's execution type CALCULATED
("Liquidation Execution"); the account's open orders expire with "Expiry Reason" 5, "Order
has expired when the account was liquidated". An ADL's order is "adl_autoclose"; its
execution type is CALCULATED by the zh-CN page ("CALCULATED 订单 ADL 或爆仓", the order's ADL
or liquidation), not shown by either: both CALCULATED and TRADE are driven here. The page
orders neither the open orders' expiry against the liquidation's fill, and the stream orders
events of one type only: both orders are driven (binance_ledger.LIQUIDATION_EVENT_ORDERS).

Found by a reviewer (rv16): the fake told a liquidation as a MARKET order traded (x=TRADE),
and the legs' EXPIRED after the fill and its ACCOUNT_UPDATE, as our code expected."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.binance_ledger import ExchangeSimulator, OrderLedger
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.commands import CommandKind
from trader.domain import CloseReason, OrderRequest, OrderRole, OrderType, Side, to_ms
from trader.exchange.sim import SimConfig
from trader.exchange.websocket_stream import StreamOptions

SYMBOL = "BTCUSDT"
D = Decimal
LIQUIDATION = "autoclose-1796164000123"
Json = dict[str, Any]


def a_protected_long(algo_api: bool) -> tuple[ExchangeSimulator, OrderLedger]:
    """The fake's simulator and ledger with a long 0.1 and a reduce-only stop resting."""
    now = datetime.now(UTC)
    sim = ExchangeSimulator(SimConfig())
    sim.set_price(SYMBOL, D("50000"), now)
    ledger = OrderLedger(sim, lambda: to_ms(datetime.now(UTC)), "triggered-first", algo_api)
    sim.expire_reasons = ledger.expire_reasons
    sim.place(OrderRequest(SYMBOL, Side.BUY, OrderType.MARKET, D("0.1"), "entry-1",
                           OrderRole.ENTRY), now)
    stop = OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_MARKET, D("0.1"), "stop-1",
                        OrderRole.STOP_LOSS, trigger_price=D("45000"), reduce_only=True)
    ledger.new_algo(SYMBOL, stop.client_id)
    sim.place(stop, now)
    ledger.take_stream_events()
    return sim, ledger


def closed_by(sim: ExchangeSimulator, ledger: OrderLedger, client_id: str) -> list[Json]:
    ledger.publish(sim.close_by_exchange(SYMBOL, datetime.now(UTC), client_id))
    return ledger.take_stream_events()


def said(event: Json) -> tuple:
    o = event.get("o", {})
    if event["e"] == "ACCOUNT_UPDATE":
        return ("ACCOUNT_UPDATE",)
    if event["e"] == "ALGO_UPDATE":
        return ("ALGO_UPDATE", o["caid"], o["X"])
    return ("ORDER_TRADE_UPDATE", o["c"], o["o"], o["x"], o["X"], o["er"])


@pytest.mark.parametrize("algo_api", [True, False])
def test_a_liquidation_is_told_as_the_page_documents_it(algo_api):
    sim, ledger = a_protected_long(algo_api)
    events = closed_by(sim, ledger, LIQUIDATION)
    stop_expired = ("ALGO_UPDATE", "stop-1", "EXPIRED") if algo_api else \
        ("ORDER_TRADE_UPDATE", "stop-1", "STOP_MARKET", "EXPIRED", "EXPIRED", "5")
    assert [said(e) for e in events] == [
        stop_expired,
        ("ORDER_TRADE_UPDATE", LIQUIDATION, "LIQUIDATION", "NEW", "NEW", "0"),
        ("ORDER_TRADE_UPDATE", LIQUIDATION, "LIQUIDATION", "CALCULATED", "FILLED", "0"),
        ("ACCOUNT_UPDATE",)]
    fill = events[2]["o"]
    page = documented("event_order_trade_update_liquidation_fill").payload["o"]
    assert set(fill) == set(page)
    assert (fill["o"], fill["ot"], fill["x"], fill["X"]) == (page["o"], page["ot"], page["x"],
                                                             page["X"])


def test_the_other_order_expires_the_open_orders_after_the_fill():
    sim, ledger = a_protected_long(algo_api=False)
    sim.liquidation_cancels_first = False
    events = closed_by(sim, ledger, LIQUIDATION)
    assert [said(e)[:2] for e in events] == [
        ("ORDER_TRADE_UPDATE", LIQUIDATION), ("ORDER_TRADE_UPDATE", LIQUIDATION),
        ("ACCOUNT_UPDATE",), ("ORDER_TRADE_UPDATE", "stop-1")]
    assert said(events[-1])[-1] == "5"


@pytest.mark.parametrize("execution", ["CALCULATED", "TRADE"])
def test_an_adl_fill_is_told_with_the_execution_type_chosen(execution):
    sim, ledger = a_protected_long(algo_api=True)
    ledger.adl_execution = execution
    fills = [e["o"] for e in closed_by(sim, ledger, "adl_autoclose")
             if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["X"] == "FILLED"]
    assert [(o["c"], o["o"], o["x"]) for o in fills] == [("adl_autoclose", "MARKET", execution)]


async def closed_by_binance(tmp_path, client_id: str, **fake_options) -> tuple:
    """A LONG of the agent's, protected, then closed by Binance over the stream: the close's
    record, the alerts said after it, and the algo orders placed after it."""
    async with FakeBinance(prices={SYMBOL: D("50000")}, **fake_options) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            engine = agent.engine
            assert (await agent.run(CommandKind.LONG)).ok
            for _ in range(20):
                await engine.tick()
                if engine.positions[SYMBOL].stop.order is not None:
                    break
                await asyncio.sleep(0.1)
            placed_before = len(fake.requests("POST /fapi/v1/algoOrder"))
            alerts_before = len(engine.store.recent_alerts(200))
            await fake.close_position_by_exchange(SYMBOL, client_id)
            for _ in range(30):
                await asyncio.sleep(0.1)
                await engine.tick()
                if SYMBOL not in engine.positions:
                    break
            new_alerts = engine.store.recent_alerts(200)[alerts_before:]
            return (engine.store.closed_positions(), [(a.name, a.text) for a in new_alerts],
                    fake.requests("POST /fapi/v1/algoOrder")[placed_before:],
                    fake.sim.open_orders(SYMBOL))


@pytest.mark.parametrize("client_id,reason,fake_options", [
    (LIQUIDATION, CloseReason.LIQUIDATION, {"liquidation_events": "cancels-first"}),
    (LIQUIDATION, CloseReason.LIQUIDATION, {"liquidation_events": "fill-first"}),
    ("adl_autoclose", CloseReason.ADL, {"adl_execution": "CALCULATED"}),
    ("adl_autoclose", CloseReason.ADL, {"adl_execution": "TRADE"}),
])
async def test_the_agent_records_a_documented_exchange_close_as_one(tmp_path, client_id,
                                                                    reason, fake_options):
    closed, alerts, placed, left = await closed_by_binance(tmp_path, client_id, **fake_options)
    [record] = closed
    assert record.close_reason is reason
    assert record.exit_price is not None
    names = [name for name, _ in alerts]
    assert names.count("EXCHANGE_CLOSE") == 1, alerts
    assert "CLOSE" not in names and "ERROR" not in names, alerts
    assert not [n for n in names if n.startswith("POSITION_REDUCED")], alerts
    assert not placed, "no leg is placed again for a position Binance closed"
    assert not left

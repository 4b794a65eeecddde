"""A stop-loss Binance triggered but never executed is failed protection: the position is
closed at market, the phone told why (a reviewer's case: the stop read TRIGGERING on the
stream and over REST for 60 s, the mark 2 % past it, the LONG still open, /status saying
"SL ✅ · PROTECTED", no alert).

Binance: TRIGGERING "has met the triggering condition and has been forwarded to the matching
engine" (https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Algo-Order-Update); an order stuck so on Binance's demo venue:
github.com/nautechsystems/nautilus_trader/discussions/5378. FakeBinance.stick_trigger plays it.

The engine's own loop runs (trader/stuck_trigger.py's grace at 1 s instead of 10 s); every
wait is bounded on a condition."""

import asyncio
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import aiohttp
import pytest

from bot.format import format_result, plain_text
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented
from tests.test_binance_fake_shapes import shape_problems
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.alerts import AlertName
from trader.commands import CommandKind
from trader.domain import CloseReason, OrderRequest, OrderRole, OrderType, Side
from trader.engine import Engine
from trader.exchange.base import ExchangeError
from trader.exchange.websocket_stream import StreamOptions

GRACE = 1      # TRADEBOT_TRIGGER_GRACE_SECONDS in these tests
BOUND = 8.0    # seconds: the grace, a tick or two, the close


def alerts(engine: Engine, name: AlertName) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(50) if a.name == name]


def flat(fake: FakeBinance) -> bool:
    return fake.sim.position(SYMBOL).quantity == 0


def market_closes(fake: FakeBinance) -> list[dict[str, str]]:
    return [r.params for r in fake.requests("POST /fapi/v1/order")
            if r.params.get("type") == "MARKET"]


def close_reasons(engine: Engine) -> list[CloseReason | None]:
    return [p.close_reason for p in engine.store.closed_positions()]


async def stuck_stop(fake: FakeBinance, engine: Engine) -> tuple[str, Decimal]:
    """The position's stop stuck TRIGGERING, the mark then 2 % past its level."""
    stop = engine.positions[SYMBOL].stop.order
    await fake.stick_trigger(SYMBOL, stop.client_id)
    await fake.move_price(SYMBOL, (stop.trigger_price * Decimal("0.98")).quantize(Decimal("0.1")))
    return stop.client_id, stop.trigger_price


async def test_a_stop_stuck_in_triggering_closes_the_position_at_market(tmp_path):
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        await stuck_stop(fake, engine)

        assert await eventually(lambda: flat(fake), BOUND), "still open past its stop"
        # the alert's row is committed with the tick's unit of work, after the close's send
        assert await eventually(lambda: alerts(engine, AlertName.POSITION_UNPROTECTED), BOUND)
        [text] = alerts(engine, AlertName.POSITION_UNPROTECTED)
        assert "was triggered on Binance but did not execute" in text
        assert "stuck in TRIGGERING" in text and "closing the LONG 0.1 at market" in text
        [close] = market_closes(fake)
        assert close["reduceOnly"] == "true" and close["side"] == "SELL"
        assert await eventually(lambda: close_reasons(engine) == [CloseReason.STOP_LOSS], BOUND)


async def test_the_stuck_stop_executing_after_the_close_cannot_flip_the_position(tmp_path):
    """Reduce-only: once flat it has nothing to reduce (the simulator expires it, as its
    MARKET child would be refused); the fake keeps it after the close (flat_orders="keep")
    and a cancel of it answers -2011, as the demo venue did: the orphan sweep tries a few
    times, then tells the operator once instead of cancelling it every tick."""
    async with FakeBinance(prices={SYMBOL: PRICE}, flat_orders="keep") as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        stop_id, level = await stuck_stop(fake, engine)
        assert await eventually(lambda: SYMBOL not in engine.positions and flat(fake), BOUND)
        # Every cancel answers -2011 while it stays listed: a few, then said once, no more.
        assert await eventually(lambda: alerts(engine, AlertName.PROTECTION), BOUND)
        [text] = alerts(engine, AlertName.PROTECTION)
        assert f"cannot be cancelled: {stop_id}" in text and "Binance app" in text, text
        cancels = len(fake.requests("DELETE /fapi/v1/algoOrder"))
        assert not await eventually(
            lambda: len(fake.requests("DELETE /fapi/v1/algoOrder")) > cancels, 1.5)
        # While it stays listed no new position is opened under it (it could reduce one).
        refusal = engine.entry_refusal(SYMBOL)
        assert stop_id in refusal and "Binance app" in refusal, refusal

        # The matching engine gets it at last: at its level again, the price through it.
        order = fake.sim.order(SYMBOL, stop_id)
        assert order is not None and order.type is OrderType.STOP_MARKET
        del fake.endpoints.ledger.stuck[stop_id]
        fake.sim.orders.add(replace(order, trigger_price=level))
        await fake.move_price(SYMBOL, level + 100)
        await fake.move_price(SYMBOL, level - 100)

        assert flat(fake)
        assert not await eventually(lambda: SYMBOL in engine.positions, 1.5)
        assert len(alerts(engine, AlertName.RECONCILE_MISMATCH)) == 1, "the boot's adoption only"
        assert len(market_closes(fake)) == 1
        # Gone from the exchange's list: entries are allowed again.
        assert await eventually(lambda: stop_id not in engine.entry_refusal(SYMBOL), BOUND)


async def test_a_stop_that_fills_within_the_grace_is_reported_as_before(tmp_path):
    """Negative: TRIGGERING, then the fill lands: a stop-loss close, nothing more."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=5) as engine:
        stop_id, level = await stuck_stop(fake, engine)
        assert not await eventually(lambda: flat(fake), 0.5)    # the mark past it, < the grace

        order = fake.sim.order(SYMBOL, stop_id)
        assert order is not None
        del fake.endpoints.ledger.stuck[stop_id]
        fake.sim.orders.add(replace(order, trigger_price=level))
        await fake.move_price(SYMBOL, (level * Decimal("0.979")).quantize(Decimal("0.1")))

        assert await eventually(lambda: close_reasons(engine) == [CloseReason.STOP_LOSS], BOUND)
        assert not alerts(engine, AlertName.POSITION_UNPROTECTED)
        assert market_closes(fake) == [], "the stop closed it: no close of ours"


async def test_a_stop_that_fills_normally_is_reported_as_before(tmp_path):
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        level = engine.positions[SYMBOL].stop.order.trigger_price
        await fake.move_price(SYMBOL, (level * Decimal("0.98")).quantize(Decimal("0.1")))

        assert await eventually(lambda: close_reasons(engine) == [CloseReason.STOP_LOSS], BOUND)
        assert not alerts(engine, AlertName.POSITION_UNPROTECTED)
        assert market_closes(fake) == []


async def ticking(engine: Engine, condition: Callable[[], object], bound: float) -> bool:
    """Tick the engine until `condition()` holds, at most `bound` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while loop.time() < deadline:
        await engine.tick()
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_take_profit_stuck_in_triggering_is_not_shown_working_nor_closed(tmp_path):
    """A profit: nothing to close; but no working take-profit either. The two-TP plan's TP1,
    of a /long (a market partial close would come first under the one-TP plan's rules)."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions(), exit_plan="two",
                          trigger_grace_seconds=GRACE) as agent:
            engine = agent.engine
            assert (await agent.run(CommandKind.LONG)).ok
            first = engine.positions[SYMBOL].take_profit_1
            assert first is not None and first.order is not None
            await fake.stick_trigger(SYMBOL, first.order.client_id)
            await fake.move_price(SYMBOL, first.order.trigger_price + 10)

            def told() -> list[str]:
                return [t for t in alerts(engine, AlertName.PROTECTION) if "did not execute" in t]
            assert await ticking(engine, told, BOUND)
            [text] = told()
            assert "first take-profit (TP1)" in text and "not counted as working" in text, text
            assert not flat(fake) and SYMBOL in engine.positions
            assert not alerts(engine, AlertName.POSITION_UNPROTECTED)
            assert [m for m in market_closes(fake) if m.get("reduceOnly") == "true"] == []
            status = await agent.run(CommandKind.STATUS)
            shown = plain_text(format_result(CommandKind.STATUS, status))
            assert "TP1 " in shown and "❌ not attached" in shown, shown
            assert shown.index("TP1 ") < shown.index("❌") < shown.index("TP2 "), shown


async def test_the_fakes_stuck_trigger_reads_triggering_and_never_executes():
    """FakeBinance.stick_trigger over the control API (a fake in another process): GET
    openAlgoOrders answers TRIGGERING at the order's own trigger price, the price going
    through it fills nothing, a cancel answers -2011 (as on the demo venue)."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, aiohttp.ClientSession() as http:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        client_id, level = "tb-BTCUSDT-k-sl1", PRICE - 1000
        fake.sim.place(OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_MARKET, Decimal("0.1"),
                                    client_id, OrderRole.STOP_LOSS, trigger_price=level,
                                    reduce_only=True), fake.now())
        fake.endpoints.ledger.new_algo(SYMBOL, client_id)      # as POST /fapi/v1/algoOrder
        url = f"{fake.url}/_control/stick_trigger"
        async with http.post(url, json={"symbol": SYMBOL, "client_id": "nope"}) as answer:
            assert answer.status == 400 and "-2011" in (await answer.json())["error"]
        async with http.post(url, json={"symbol": SYMBOL, "client_id": client_id}) as answer:
            assert answer.status == 200

        await fake.move_price(SYMBOL, level - 1000)
        rows = fake.endpoints.open_algo_orders({"symbol": SYMBOL})
        [row] = rows
        assert (row["algoStatus"], row["triggerPrice"]) == ("TRIGGERING", str(level))
        read = fake.endpoints.query_algo_order({"clientAlgoId": client_id})
        assert read["algoStatus"] == "TRIGGERING"
        for answer, name in ((rows, "open_algo_orders"), (read, "algo_order_query")):
            doc = documented(name)        # the pages' fields, only a status value changed
            assert shape_problems(answer, doc.payload, doc.optional_fields) == []
        assert fake.sim.position(SYMBOL).quantity == Decimal("0.1")
        with pytest.raises(ExchangeError, match="Unknown order sent"):
            fake.endpoints.cancel_algo_order({"symbol": SYMBOL, "clientAlgoId": client_id})

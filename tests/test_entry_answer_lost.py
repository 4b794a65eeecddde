"""An entry whose answer was lost (HTTP 503 -1000: Binance "sent the request to the business
core but unable to get the response ... the execution status is UNKNOWN"): the /long's
reply says the outcome is unknown (⏳, not ✅ "done"), and once the agent knows, the phone is
told: FILL if it landed, ENTRY_NOT_FILLED ("did not land ...; nothing is open") if it never
did. The same for a strategy's entry, which no reply announces.

Found from outside: "✅ Long: done — LONG 0.507 sent; its fill is not confirmed yet", then
"never placed" in an INFO log line only; /status "none open", no alert."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.format import format_result
from tests.engine_world import SYMBOL, long_signal, make_world
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.alerts import AlertName
from trader.clock import ManualClock
from trader.commands import CommandKind
from trader.exchange.base import UnknownOutcome
from trader.position import PositionState

# recvWindow (5 s) + the executor's PROBE_GRACE (10 s): a lost order cannot land after this
NO_LONGER_IN_FLIGHT = timedelta(seconds=16)


def alerts(store, name: AlertName) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.text for a in store.recent_alerts(100) if a.name == name]


async def test_a_long_lost_in_flight_that_never_landed_answers_unknown_then_alerts(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        clock = ManualClock(datetime.now(UTC))
        async with booted(fake, tmp_path, clock=clock) as agent:
            engine = agent.engine
            fake.inject_fault("POST /fapi/v1/order", -1000, 503, execute=False)
            result = await agent.run(CommandKind.LONG)
            reply = format_result(CommandKind.LONG, result)
            assert not result.ok and result.waiting, reply
            assert reply.startswith("⏳ <b>Long: outcome unknown</b>"), reply
            assert "answer was lost" in reply and "ENTRY_NOT_FILLED" in reply, reply
            await engine.tick()                       # not found yet: it may still land
            assert engine.positions[SYMBOL].state is PositionState.ENTERING
            assert alerts(engine.store, AlertName.ENTRY_NOT_FILLED) == []
            clock.advance(NO_LONGER_IN_FLIGHT)
            await engine.tick()
            assert SYMBOL not in engine.positions
            told = alerts(engine.store, AlertName.ENTRY_NOT_FILLED)
            assert told == [f"{SYMBOL}: the LONG entry (0.507) did not land (Binance has no "
                            f"order with its id: never placed); nothing is open on {SYMBOL}"]
            assert alerts(engine.store, AlertName.FILL) == []
            assert fake.sim.position(SYMBOL).quantity == 0


async def test_a_long_lost_in_flight_that_landed_is_told_by_its_fill(tmp_path):
    """The symmetric case: it landed, the FILL alert says so, and nothing says it did not."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            engine = agent.engine
            fake.inject_fault("POST /fapi/v1/order", -1000, 503, execute=True)
            result = await agent.run(CommandKind.LONG)
            assert result.waiting, result.lines
            await engine.tick()
            assert engine.positions[SYMBOL].state.open
            assert alerts(engine.store, AlertName.FILL)[0].startswith(
                f"{SYMBOL}: LONG 0.507 filled at ")
            assert alerts(engine.store, AlertName.ENTRY_NOT_FILLED) == []


async def test_a_long_answered_at_once_is_done_as_before(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            result = await agent.run(CommandKind.LONG)
            reply = format_result(CommandKind.LONG, result)
            assert result.ok and not result.waiting, reply
            assert reply.startswith("✅ <b>Long: done</b>"), reply
            assert alerts(agent.engine.store, AlertName.ENTRY_NOT_FILLED) == []


async def test_a_strategy_entry_lost_in_flight_that_never_landed_alerts(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    paper = world.paper
    real_place = paper.place

    async def lost_before_it_landed(request):  # type: ignore[no-untyped-def]
        paper.place = real_place
        raise UnknownOutcome("place: HTTP 503 -1000 (test)")
    paper.place = lost_before_it_landed                  # type: ignore[method-assign]
    world.strategy.next = long_signal()
    await world.step()                                   # the entry is sent, its answer lost
    assert world.engine.positions[SYMBOL].state is PositionState.ENTERING
    for _ in range(3):                                   # a minute each: past the grace
        await world.step()
    assert SYMBOL not in world.engine.positions
    told = world.alerts(AlertName.ENTRY_NOT_FILLED)
    assert len(told) == 1 and told[0].startswith(f"{SYMBOL}: the LONG entry ("), told
    assert "did not land" in told[0] and told[0].endswith(f"nothing is open on {SYMBOL}")

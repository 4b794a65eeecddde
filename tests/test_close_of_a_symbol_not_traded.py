"""/close of a position the agent does not manage, on a symbol it does not trade
(TRADEBOT_SYMBOLS is BTCUSDT; the hand short is on ETHUSDT): the close takes it over
(trader/engine_parts.py `take_in`). When that close does not finish at once, the ticks finish
it: refused for now (-1008 "Server is currently overloaded with other requests", sent again
on the backoff of trader/close_retry.py), or taken but not read back (FlattenResult.unread).
Across a restart the CLOSING record is carried on (loaded, its rules read, its orders read
into the tracker) and closed. The taken-over symbol is ticked for its protection and its
close only: never an entry, and no longer once its record is closed.
(Reproductions of h-review18: /work/notes/rv18-scripts.)"""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance
from tests.test_close_during_an_outage import ORDER, alerts, market_closes
from tests.test_first_command_after_boot import FAST_STREAMS, booted
from trader.clock import ManualClock
from trader.commands import Command, CommandKind
from trader.domain import Side
from trader.engine import Engine
from trader.going_down import going_down_text

SYMBOL, OTHER = "BTCUSDT", "ETHUSDT"
PRICES = {SYMBOL: Decimal("50000"), OTHER: Decimal("3000")}
CLOSES = {"type": "MARKET", "reduceOnly": "true"}
TICKS = 60      # 2 s apart: two minutes, past the backoff's 0.5+1+2+4+8 s and its 10 s steps


def close_command(update: int) -> Command:
    return Command(CommandKind.CLOSE, f"tg:1:{update}", datetime.now(UTC), symbol=OTHER,
                   source="telegram")


def entries_on(fake: FakeBinance, symbol: str) -> list[dict[str, str]]:
    """Orders on `symbol` that could open or add to a position: neither reduce-only nor a
    closePosition stop (Binance, New Order (TRADE): reduceOnly, closePosition;
    https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api)."""
    return [r.params for r in fake.requests(ORDER) if r.params.get("symbol") == symbol
            and r.params.get("reduceOnly") != "true" and r.params.get("closePosition") != "true"]


def requests_on(fake: FakeBinance, symbol: str) -> int:
    return sum(1 for r in fake.request_log if r.params.get("symbol") == symbol)


async def ticks(engine: Engine, clock: ManualClock, count: int = TICKS) -> None:
    for _ in range(count):
        clock.advance(timedelta(seconds=2))
        await engine.tick()


async def test_a_close_refused_for_now_is_sent_again_by_the_ticks_and_closes(tmp_path):
    clock = ManualClock(datetime.now(UTC))
    async with FakeBinance(prices=PRICES) as fake:
        await fake.open_position_by_hand(OTHER, Side.SELL, Decimal("3"))
        async with booted(fake, tmp_path, clock=clock) as agent:
            fake.answer_documented(ORDER, "error_server_busy", times=5, only=CLOSES)
            result = await agent.controller.run(close_command(5))
            assert "retrying by itself" in format_result(CommandKind.CLOSE, result)
            assert len(market_closes(fake)) == 3
            await ticks(agent.engine, clock)
            assert fake.sim.position(OTHER).quantity == 0
            assert len(market_closes(fake)) == 6      # 5 refused, the 6th filled
            assert OTHER not in agent.engine.positions
            assert len(alerts(agent.engine, "CLOSE")) == 1, alerts(agent.engine, "CLOSE")
            assert not fake.sim.open_orders(OTHER)    # its stop and take-profit cancelled
            assert entries_on(fake, OTHER) == []
            # closed: the symbol is no longer ticked, and nothing is asked about it
            assert OTHER not in agent.engine.taken_over
            asked = requests_on(fake, OTHER)
            await ticks(agent.engine, clock, 10)
            assert requests_on(fake, OTHER) == asked
            assert entries_on(fake, OTHER) == []


async def test_a_close_taken_but_not_read_back_is_settled_by_the_ticks(tmp_path):
    clock = ManualClock(datetime.now(UTC))
    async with FakeBinance(prices=PRICES) as fake:
        await fake.open_position_by_hand(OTHER, Side.SELL, Decimal("3"))
        async with booted(fake, tmp_path, clock=clock, stream_options=FAST_STREAMS) as agent:
            fake.answer_documented(ORDER, "error_server_busy", times=3, only=CLOSES)
            await agent.controller.run(close_command(5))    # taken over, closes refused
            fake.outage(sparing=(ORDER,))
            await agent.controller.run(close_command(6))    # taken, nothing read back
            fake.clear_faults()
            await ticks(agent.engine, clock)
            assert fake.sim.position(OTHER).quantity == 0
            assert OTHER not in agent.engine.positions
            assert [p for p in agent.engine.store.open_positions() if p.symbol == OTHER] == []
            assert not fake.sim.open_orders(OTHER)
            assert len(alerts(agent.engine, "CLOSE")) == 1, alerts(agent.engine, "CLOSE")
            assert OTHER not in agent.engine.taken_over
            assert entries_on(fake, OTHER) == []


async def test_a_close_under_way_at_shutdown_is_carried_on_by_the_next_start(tmp_path):
    clock = ManualClock(datetime.now(UTC))
    async with FakeBinance(prices=PRICES) as fake:
        await fake.open_position_by_hand(OTHER, Side.SELL, Decimal("3"))
        async with booted(fake, tmp_path, clock=clock) as agent:
            fake.answer_documented(ORDER, "error_server_busy", times=100, only=CLOSES)
            await agent.controller.run(close_command(5))
            assert "the next start" in going_down_text(agent.engine)
        fake.clear_faults()
        async with booted(fake, tmp_path, clock=clock) as agent:
            assert OTHER in agent.engine.positions      # the CLOSING record, loaded
            # its stop, read over REST at boot: known to the tracker
            assert "WITHOUT a stop-loss" not in going_down_text(agent.engine)
            await ticks(agent.engine, clock)
            assert fake.sim.position(OTHER).quantity == 0
            assert OTHER not in agent.engine.positions
            assert not fake.sim.open_orders(OTHER)
            assert len(alerts(agent.engine, "CLOSE")) == 1, alerts(agent.engine, "CLOSE")
            assert OTHER not in agent.engine.taken_over
            assert entries_on(fake, OTHER) == []

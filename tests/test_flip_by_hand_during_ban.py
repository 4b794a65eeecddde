"""A LONG 0.507 reversed by hand (one SELL 1.0) during a 418 ban keeps its own size and
its part of the hand fill's fee, as outside a ban (tests/test_flip_by_hand_trade_record.py):
before, the close recorded from the stream and the close read back after the ban took the
whole hand fill: /trades "LONG 1.000 ... -42.71", CLOSE fees 37.13 (the right result is
about -30.56 for the 0.507 held). From review6 (test_rv6_flip_by_hand_during_ban)."""

from decimal import Decimal

from tests.fakes.binance_harness import eventually
from tests.positions import make
from tests.test_first_command_after_boot import SYMBOL, streaming_agent
from tests.test_flip_by_hand_trade_record import assert_the_long_keeps_its_share
from tests.test_stop_fill_during_ban import banned, dropping_fills, long_open, ticks
from trader.close_record import over_closed
from trader.domain import Fill, Side
from trader.startup import reconcile


async def reversed_during_a_ban(tmp_path, hear_fills: bool) -> None:
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        held = engine.positions[SYMBOL].quantity
        sent = await banned(agent, fake, 3)
        drain = engine.exchange.drain_events
        if not hear_fills:        # the hand trade's ORDER_TRADE_UPDATE lost
            engine.exchange.drain_events = dropping_fills(engine)
        await fake.open_position_by_hand(SYMBOL, Side.SELL, Decimal("1.0"))
        await ticks(engine, 4)
        engine.exchange.drain_events = drain
        assert len(fake.request_log) == sent, fake.request_log[sent:]
        assert await eventually(lambda: not engine.executor.circuit_open(), timeout=6.0)
        await ticks(engine, 4)
        await reconcile(engine)
        await ticks(engine, 3)
        await assert_the_long_keeps_its_share(agent, fake, held, Decimal("1.0"))
        assert fake.retry_after_watch.violations == []


async def test_a_long_reversed_by_hand_during_a_ban_keeps_its_own_size(tmp_path):
    """Every event heard: the close recorded from the stream, with the stream's SHORT."""
    await reversed_during_a_ban(tmp_path, hear_fills=True)


async def test_a_long_reversed_by_hand_during_a_ban_read_back_keeps_its_own_size(tmp_path):
    """The hand fill not heard: the result is read back after the ban, from the fills."""
    await reversed_during_a_ban(tmp_path, hear_fills=False)


def fill(side: Side, quantity: str) -> Fill:
    return Fill(f"t{side}{quantity}", SYMBOL, "", side, Decimal(quantity), Decimal("1"),
                Decimal("0"), Decimal("0"), make().opened_at)


def test_only_a_reversal_closes_beyond_what_it_opened() -> None:
    """The cap applies to a reversal only: a whole close, a partial one and an adopted
    position's (no opening fill among its fills) are all the position's."""
    long = make(side=Side.BUY)
    assert over_closed(long, [fill(Side.BUY, "0.507"), fill(Side.SELL, "1.0")]) \
        == Decimal("0.493")
    assert over_closed(long, [fill(Side.BUY, "0.507"), fill(Side.SELL, "0.507")]) == 0
    assert over_closed(long, [fill(Side.BUY, "0.507"), fill(Side.SELL, "0.2")]) == 0
    assert over_closed(long, [fill(Side.SELL, "1.0")]) == 0

"""/status says the equity's age, and that it is from before the last close, when a position
closed after the balance was read and the balance could not be read since (a Retry-After:
an IP ban forbids every REST request, up to 3 days).

Found by review6 (test_rv6_status_equity_after_ban_close.py): a stop filled during a 418
ban (the close heard on the stream); /status read "Equity 9,984.72 USDT · free margin
4,989.59 | Positions: none open" while the exchange had 9,779.46 / 9,779.46, with no age:
the close marked the balance due by forgetting when it was read, and the age was shown only
while positions were open.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.format import format_status
from tests.test_bot_format import plain
from tests.test_bot_support import SYMBOLS, RecordingEngine
from tests.test_first_command_after_boot import SYMBOL, streaming_agent
from tests.test_stop_fill_during_ban import banned, long_open, ticks
from trader.commands import CommandKind
from trader.display import money


async def test_equity_after_a_stop_filled_during_a_ban_says_it_is_from_before_the_close(
        tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        await ticks(engine, 2)
        await banned(agent, fake, 120)
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))
        await ticks(engine)
        assert engine.store.closed_positions(), "the close was not recorded in the ban"
        status = (await agent.run(CommandKind.STATUS)).status
        assert status is not None and status.positions == []
        first = plain(format_status(status)).splitlines()[1]
        truth = fake.sim.balance()
        assert money(truth.equity) in first or "before the last close" in first, (
            f"/status after the stop's close inside the ban: {first!r}; the exchange's "
            f"equity is {money(truth.equity)} (free margin {money(truth.available)})")
        assert " ago" in first, first


async def test_negative_a_flat_account_with_no_close_since_the_read_shows_no_age(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        await ticks(agent.engine, 2)
        await banned(agent, fake, 120)
        await ticks(agent.engine)
        status = (await agent.run(CommandKind.STATUS)).status
        assert status is not None and not status.equity_before_close
        first = plain(format_status(status)).splitlines()[1]
        assert "ago" not in first, first


def test_the_age_is_said_after_a_close_however_fresh():
    now = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    fresh = replace(RecordingEngine(SYMBOLS).status(), positions=[],
                    equity_read_at=now - timedelta(seconds=3), now=now)
    assert "ago" not in plain(format_status(fresh)).splitlines()[1]
    stale = replace(fresh, equity_before_close=True)
    assert "(read 3 s ago, before the last close)" in plain(format_status(stale))

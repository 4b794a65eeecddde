"""A /sl that Binance's PRICE_FILTER refuses, through the real engine and the real client
against the fake Binance server: the exchange raised the symbol's minPrice above the level
after the agent read its rules (the agent's own check could not see it), so the new stop is
refused (-4013 "Price less than min price.", error-code page 40xx), the rules are read again,
the resend is refused again, and then the move is given up: the old stop stays live on the
exchange (never cancelled for it), the answer and one PROTECTION alert say the move was
refused and why, and no tick after it sends the stop again."""

from dataclasses import replace

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.test_binance_faults import PRICE, SYMBOL, alerts, booted_long, run, stops
from trader.commands import CommandKind

ALGO_ORDER = "POST /fapi/v1/algoOrder"


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


async def test_a_stop_move_refused_by_the_price_filter_keeps_the_old_stop_and_is_not_retried(
        fake, tmp_path):
    async with booted_long(fake, tmp_path) as engine:
        [old] = await stops(engine)
        wanted = old.trigger_price - 1000                 # further away, still below the mark
        fake.sim.set_rules(replace(fake.sim.rules_for(SYMBOL), min_price=wanted + 100))

        result = await run(engine, CommandKind.SL, symbol=SYMBOL, price=wanted)

        assert not result.ok
        assert result.lines == [f"{SYMBOL}: stop-loss not moved: Binance refused the new stop "
                                f"at {wanted:,.0f}; the stop-loss stays at "
                                f"{old.trigger_price:,.0f} (the PROTECTION alert says why)"]
        [refused] = alerts(engine, "PROTECTION")
        assert "Binance refused the stop-loss" in refused and "-4013" in refused, refused
        assert [o.client_id for o in await stops(engine)] == [old.client_id]
        sent = len(fake.requests(ALGO_ORDER))
        for _ in range(3):
            await engine.tick()
        assert len(fake.requests(ALGO_ORDER)) == sent     # not sent again
        assert [o.client_id for o in await stops(engine)] == [old.client_id]
        assert engine.positions[SYMBOL].stop.trigger_price == old.trigger_price

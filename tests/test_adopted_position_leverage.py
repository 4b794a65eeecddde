"""A position opened by hand (or left by an earlier run) and adopted at start shows the
leverage it has on the account, not 1x.

GET /fapi/v3/positionRisk, the position read, carries no leverage field
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/
Position-Information-V3), and start() leaves the leverage of a symbol with an open position
as it is, so it was never learned: the adopted position read 1x (/status, /positions, the
margin a leg would need). GET /fapi/v1/symbolConfig gives it
(https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/
Symbol-Config; python-binance `futures_symbol_config`). Through python-binance and the fake
Binance; a refused read leaves the start going (the docs promise nothing of a testnet or an
older server having the endpoint)."""

from decimal import Decimal

import pytest

from tests.fakes.binance_harness import SYMBOL, booted_engine, settings_for
from tests.fakes.binance_server import FakeBinance
from trader.domain import Side
from trader.position import PositionState
from trader.views import position_view


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as server:
        yield server


async def test_an_adopted_position_shows_the_leverage_it_has_on_the_account(fake, tmp_path):
    fake.sim.set_leverage(SYMBOL, 20)                 # set by hand in the app
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    settings = settings_for(fake, db_path=tmp_path / "t.db")
    assert settings.leverage != 20
    async with booted_engine(settings) as engine:
        position = engine.positions[SYMBOL]
        assert position.state is PositionState.PROTECTED and position.adopted
        assert position.leverage == 20
        assert engine.tracker.position(SYMBOL).leverage == 20
    assert fake.sim.leverage(SYMBOL) == 20            # an open position keeps its leverage


async def test_a_refused_symbol_config_read_does_not_stop_the_start(fake, tmp_path):
    fake.inject_fault("GET /fapi/v1/symbolConfig", http_status=404, times=5)
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    settings = settings_for(fake, db_path=tmp_path / "t.db")
    async with booted_engine(settings) as engine:
        position = engine.positions[SYMBOL]
        assert position.state is PositionState.PROTECTED
        # Not read: the leverage is unknown, not 1x. The record keeps the configured one,
        # and /status shows it (an unknown leverage never replaces it).
        assert position.leverage == settings.leverage != 1
        assert position_view(engine, position, engine.clock.now()).leverage == settings.leverage

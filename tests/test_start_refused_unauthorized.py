"""-1002 UNAUTHORIZED "You are not authorized to execute this request." (error-code page,
https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code) at start-up
is the key's to fix, as -2014/-2015/-1022 are: one `config error` naming BINANCE_API_KEY /
BINANCE_API_SECRET. It was an ordinary refusal: the start-up retried it for ever."""

from decimal import Decimal

import pytest

from tests.fakes.binance_harness import settings_for
from tests.fakes.binance_server import FakeBinance
from trader.engine_setup import build_engine, start_exchange
from trader.exchange.base import ExchangeError
from trader.exchange.errors import classify
from trader.going_down import StartRefused


def test_unauthorized_is_a_credentials_problem_and_still_a_refusal() -> None:
    verdict = classify(ExchangeError(-1002, "You are not authorized to execute this request.",
                                     http_status=401), sending=False)
    assert verdict.credentials
    placed = classify(ExchangeError(-1002, "You are not authorized to execute this request.",
                                    http_status=401))
    assert placed.outcome.name != "UNKNOWN"      # refused: never probed as maybe placed


async def test_a_start_answered_unauthorized_names_the_key(tmp_path) -> None:
    async with FakeBinance(prices={"BTCUSDT": Decimal("50000")}) as fake:
        engine, close = await build_engine(settings_for(fake, db_path=tmp_path / "a.db"),
                                           start=False)
        try:
            fake.inject_fault("GET /fapi/v1/positionSide/dual", code=-1002, http_status=401,
                              msg="You are not authorized to execute this request.", times=5)
            with pytest.raises(StartRefused) as refused:
                await start_exchange(engine.exchange, engine.settings)
            assert "BINANCE_API_KEY / BINANCE_API_SECRET: rejected by Binance (code -1002" \
                in str(refused.value), str(refused.value)
        finally:
            await close()

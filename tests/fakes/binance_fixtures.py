"""pytest fixtures of the fake Binance and the adapter started on it, for test modules that
take them as they are (`pytest_plugins = ["tests.fakes.binance_fixtures"]`); a module that
needs other options defines its own."""

from collections.abc import AsyncIterator

import pytest

from tests.fakes.binance_harness import started_exchange
from tests.fakes.binance_server import FakeBinance
from trader.exchange.binance import BinanceExchange


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as server:
        yield server


@pytest.fixture
async def exchange(fake: FakeBinance) -> AsyncIterator[BinanceExchange]:
    async with started_exchange(fake) as started:
        yield started

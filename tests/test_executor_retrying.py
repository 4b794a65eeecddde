"""The executor's placement retries (the error table's, on tenacity) run on one retrying
object built with the executor: a placement builds none of its own, and each placement
still gets its own retries, each kind at most once."""

import asyncio
from decimal import Decimal

import pytest
from tenacity import AsyncRetrying

import trader.placement_retry as placement_module
from tests.engine_world import SYMBOL, make_world
from tests.test_engine import open_long
from trader.domain import OrderRole
from trader.exchange.errors import Outcome, Retry
from trader.intents import exit_intent


class CountedRetrying(AsyncRetrying):
    built = 0

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        CountedRetrying.built += 1
        super().__init__(*args, **kwargs)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[CountedRetrying]:
    CountedRetrying.built = 0
    monkeypatch.setattr(placement_module, "AsyncRetrying", CountedRetrying)
    return CountedRetrying


async def test_placements_build_no_retrying_of_their_own(tmp_path, counted) -> None:
    world = await make_world(tmp_path)
    built_with_the_engine = counted.built
    sent = world.sent
    await open_long(world)          # the entry, its stop-loss and its take-profit
    assert world.sent - sent >= 3
    assert counted.built == built_with_the_engine <= 1


async def test_each_placement_gets_its_own_retry_of_a_passed_level(tmp_path, counted) -> None:
    world = await make_world(tmp_path)
    position = await open_long(world)
    above_the_mark = world.last_close + 500     # a long's stop there would trigger at once
    for seq in (7, 8):
        stop = exit_intent(position, OrderRole.STOP_LOSS, f"tb-{SYMBOL}-{position.key}-sl{seq}",
                           position.quantity, world.clock.now(),
                           trigger_price=Decimal(above_the_mark))
        sent = world.sent
        result = await world.engine.executor.submit(stop)
        assert result.outcome is not Outcome.DONE
        assert result.verdict is not None and result.verdict.retry is Retry.ONCE_AFTER_PAUSE
        assert world.sent - sent == 2           # sent, refused (-2021), paused, sent again


async def test_two_placements_at_once_each_get_their_own_retries(tmp_path, counted) -> None:
    """The engine places one order at a time; should two overlap (the retry's pause lets the
    other run), the second gets a retrying object of its own and neither is confused."""
    world = await make_world(tmp_path)
    position = await open_long(world)
    built = counted.built
    above_the_mark = Decimal(world.last_close + 500)
    stops = [exit_intent(position, OrderRole.STOP_LOSS, f"tb-{SYMBOL}-{position.key}-sl{seq}",
                         position.quantity, world.clock.now(), trigger_price=above_the_mark)
             for seq in (7, 8)]
    sent = world.sent
    results = await asyncio.gather(*(world.engine.executor.submit(s) for s in stops))
    for result in results:
        assert result.verdict is not None and result.verdict.retry is Retry.ONCE_AFTER_PAUSE
    assert world.sent - sent == 4
    assert counted.built == built + 1

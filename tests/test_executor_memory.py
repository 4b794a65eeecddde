"""The executor's memory of the client ids it sent (`Executor.placed`, read by the
second-instance check) stays bounded in a long run, and never forgets the id of an order
whose outcome is still open: forgetting it would make that order, once it shows up live,
look like another instance's (SECOND_INSTANCE puts the agent to sleep)."""

from decimal import Decimal

import pytest

import trader.executor as executor_module
from tests.engine_world import SYMBOL, World, make_world
from tests.test_engine import open_long
from trader.domain import IntentStatus, OrderRole
from trader.exchange.errors import Outcome
from trader.intents import exit_intent
from trader.position import Position
from trader.startup import boot

KEPT = 20


@pytest.fixture(autouse=True)
def small_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor_module, "PLACED_IDS_KEPT", KEPT)


async def refused_stops(world: World, position: Position, count: int, first: int) -> None:
    """`count` stop-losses above the mark of a long: Binance refuses each (-2021, "would
    immediately trigger"), once more after the pause: finished orders, intents FAILED."""
    above_the_mark = Decimal(world.last_close + 500)
    for seq in range(first, first + count):
        stop = exit_intent(position, OrderRole.STOP_LOSS, f"tb-{SYMBOL}-{position.key}-sl{seq}",
                           position.quantity, world.clock.now(), trigger_price=above_the_mark)
        result = await world.engine.executor.submit(stop)
        assert result.intent.status is IntentStatus.FAILED


async def test_the_memory_of_sent_ids_stays_bounded_over_many_placements(tmp_path) -> None:
    world = await make_world(tmp_path)
    position = await open_long(world)
    executor = world.engine.executor
    sizes = []
    for batch in range(10):
        await refused_stops(world, position, 2 * KEPT, first=100 + batch * 2 * KEPT)
        sizes.append(len(executor.placed))
    assert world.sent >= 10 * 2 * KEPT
    assert max(sizes) <= KEPT + 1, sizes
    live = {o.client_id for o in await world.open_orders()}
    assert live and live <= executor.placed, "ids of live orders are kept"


async def test_the_id_of_an_order_whose_outcome_is_open_is_never_forgotten(tmp_path) -> None:
    """A take-profit whose answer is lost (the exchange placed it, the agent saw no answer:
    its intent stays SENT); then many finished placements make the executor forget ids. The
    open one stays: re-submitting it sends nothing, and the order, live on the exchange,
    is not taken for another instance's."""
    world = await make_world(tmp_path)
    await world.warm_up()
    await boot(world.engine)
    position = await open_long(world)
    executor = world.engine.executor
    far_above = Decimal(world.last_close * 2)
    lost = exit_intent(position, OrderRole.TAKE_PROFIT, f"tb-{SYMBOL}-{position.key}-tp9",
                       position.quantity, world.clock.now(), trigger_price=far_above)
    # The exchange's side cannot save its answer: the order is placed, the answer is lost.
    world.paper.store.db.execute("PRAGMA query_only = ON")
    try:
        result = await executor.submit(lost)
    finally:
        world.paper.store.db.execute("PRAGMA query_only = OFF")
    assert result.outcome is Outcome.UNKNOWN
    assert world.store.intent(lost.client_id).status is IntentStatus.SENT
    assert lost.client_id in {o.client_id for o in await world.open_orders()}

    await refused_stops(world, position, 5 * KEPT, first=100)
    assert len(executor.placed) <= KEPT + 2, "finished ids were forgotten"
    assert lost.client_id in executor.placed

    sent = world.sent
    again = await executor.submit(lost)          # a retry of the same intent
    assert again.outcome is Outcome.NOOP and world.sent == sent
    assert [o.client_id for o in await world.open_orders()].count(lost.client_id) == 1

    await world.step()     # the second-instance check sees the order live on the exchange
    assert not world.alerts("SECOND_INSTANCE")
    assert not world.engine.guard_state.asleep

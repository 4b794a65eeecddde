"""The executor's memory of the client ids it sent (`Executor.placed`, trader/sent_ids.py, read by the
second-instance check) stays bounded in a long run, and never forgets the id of an order
whose outcome is still open: forgetting it would make that order, once it shows up live,
look like another instance's (SECOND_INSTANCE puts the agent to sleep)."""

from datetime import timedelta
from decimal import Decimal

import pytest

import trader.sent_ids as sent_ids_module
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
    monkeypatch.setattr(sent_ids_module, "PLACED_IDS_KEPT", KEPT)


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


async def test_ids_seen_ended_are_finished_without_asking_the_order_records(tmp_path) -> None:
    """The scan that forgets finished ids takes an id whose order the executor saw end (a
    filled entry, its intent purged since) as finished without a query; an id it never
    saw end (a refused stop: no order, its intent purged) is still asked of the order
    records, as before, and kept. The answer is the one the records alone give."""
    world = await make_world(tmp_path)
    position = await open_long(world)           # the entry filled: seen ended
    executor = world.engine.executor
    await refused_stops(world, position, 2, first=100)
    store = world.store
    store.purge_resolved_intents(world.clock.now() + timedelta(days=1))
    placed = set(executor.placed)
    entry = next(cid for cid in placed if cid.endswith("-en1"))
    refused = {f"tb-{SYMBOL}-{position.key}-sl{seq}" for seq in (100, 101)}
    legs = {cid for cid in placed if store.intent(cid) is not None}
    assert store.intent(entry) is None and refused <= placed and legs

    asked: list[str] = []
    finished_orders = store.finished_orders

    def asking(client_ids: list[str]) -> set[str]:
        asked.extend(client_ids)
        return finished_orders(client_ids)

    store.finished_orders = asking  # type: ignore[method-assign]
    finished = executor.sent_ids.finished(placed)
    store.finished_orders = finished_orders  # type: ignore[method-assign]
    assert entry in finished and entry not in asked
    assert refused <= set(asked) and not refused & finished
    assert not legs & finished
    by_records = {cid for cid in placed if store.intent(cid) is not None
                  and store.intent(cid).status.resolved}  # type: ignore[union-attr]
    by_records |= finished_orders([cid for cid in placed if store.intent(cid) is None])
    assert finished == by_records

"""What the executor journals around one placement, seen in the SQL it runs: the intent is
committed once, as SENT, before the order goes out (write-ahead); the exchange's answer,
the intent's new status and the order, is one transaction (one commit, both or neither).
A failure to save the answer costs no crash and no second order: the intent stays SENT."""

import sqlite3
from decimal import Decimal

from tests.engine_world import SYMBOL, make_world
from tests.test_engine import open_long
from tests.test_store_statements import committed
from trader.domain import IntentStatus, OrderRole
from trader.intents import exit_intent


def transactions(statements: list[str]) -> list[list[str]]:
    """The statements grouped by transaction (BEGIN ... COMMIT), each as its first words."""
    groups: list[list[str]] = []
    for sql in statements:
        if sql == "BEGIN":
            groups.append([])
        elif sql != "COMMIT" and groups and not sql.startswith("PRAGMA"):
            groups[-1].append(" ".join(sql.split()[:3]))
    return groups


async def a_stop(world):  # type: ignore[no-untyped-def]
    position = await open_long(world)
    return exit_intent(position, OrderRole.STOP_LOSS, f"tb-{SYMBOL}-{position.key}-sl9",
                       position.quantity, world.clock.now(),
                       trigger_price=Decimal(world.last_close - 500))


async def test_the_intent_is_committed_once_before_the_send_and_the_answer_in_one(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    stop = await a_stop(world)
    exchange = world.engine.executor.exchange
    place = exchange.place
    at_the_send: list[list[tuple[object, ...]]] = []

    async def place_and_look(request):  # type: ignore[no-untyped-def]
        at_the_send.append(committed(world.store, "SELECT status FROM intents WHERE "
                                     f"client_id = '{stop.client_id}'"))
        return await place(request)

    exchange.place = place_and_look
    seen: list[str] = []
    world.store.db.conn.set_trace_callback(seen.append)
    result = await world.engine.executor.submit(stop)
    world.store.db.conn.set_trace_callback(None)
    assert result.order is not None and result.intent.status is IntentStatus.ACKED
    assert at_the_send == [[("SENT",)]]                   # committed before it went out
    assert transactions(seen) == [["INSERT INTO [intents]"],                  # SENT
                                  ["INSERT INTO [intents]", "INSERT INTO [orders]"]]
    assert committed(world.store, "SELECT status FROM intents WHERE "
                     f"client_id = '{stop.client_id}'") == [("ACKED",)]


async def test_an_answer_that_cannot_be_saved_leaves_the_intent_sent_and_sends_nothing_twice(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    stop = await a_stop(world)

    def no_orders(action: int, table: str | None, *_: object) -> int:
        return sqlite3.SQLITE_DENY if table == "orders" else sqlite3.SQLITE_OK

    sent = world.sent
    world.store.db.conn.set_authorizer(no_orders)
    result = await world.engine.executor.submit(stop)         # no exception
    world.store.db.conn.set_authorizer(None)
    assert result.order is not None and world.sent - sent == 1
    assert world.store.intent(stop.client_id).status is IntentStatus.SENT    # neither saved
    assert world.store.order(stop.client_id) is None
    assert world.store.health.total_failures >= 1              # SAVE_STATE_FAILURE follows
    again = await world.engine.executor.submit(stop)
    assert world.sent - sent == 1 and again.order is None      # not re-sent


async def test_an_intent_built_as_it_leaves_is_journaled_as_it_is(tmp_path) -> None:
    """An exit intent built SENT (`exit_intent(..., sending=True)`, what the action runner
    sends) is the very intent journaled before the send, not a copy; a PENDING one is
    copied to SENT at the send, as before; either, once sent, is never sent again."""
    world = await make_world(tmp_path)
    pending = await a_stop(world)
    position = world.engine.interpreter.positions[SYMBOL]
    sending = exit_intent(position, OrderRole.STOP_LOSS, f"tb-{SYMBOL}-{position.key}-sl8",
                          position.quantity, world.clock.now(),
                          trigger_price=Decimal(world.last_close - 400), sending=True)
    store = world.store
    journaled: list[object] = []
    save_intent = store.save_intent

    def keep(intent, now=None):  # type: ignore[no-untyped-def]
        journaled.append(intent)
        save_intent(intent, now)

    store.save_intent = keep  # type: ignore[method-assign]
    executor = world.engine.executor
    result = await executor.submit(sending)
    assert result.intent.status is IntentStatus.ACKED
    assert journaled[0] is sending                          # SENT, as built
    journaled.clear()
    result = await executor.submit(pending)
    assert result.intent.status is IntentStatus.ACKED
    first = journaled[0]
    assert first is not pending and first.status is IntentStatus.SENT  # type: ignore[attr-defined]
    assert first == pending.with_status(IntentStatus.SENT,           # type: ignore[attr-defined]
                                        sent_at=first.sent_at)      # type: ignore[attr-defined]
    sent = world.sent
    for again in (sending, pending):
        assert (await executor.submit(again)).order is None      # NOOP: sent already
    assert world.sent == sent

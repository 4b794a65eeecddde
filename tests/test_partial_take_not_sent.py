"""The one-TP plan's first profit (a MARKET partial take-profit) is never sent unjournaled
(trader/executor.py JOURNAL_REQUIRED). Found in the chaos run's log (CI of 7c3dfc1): while
the database refused writes, the partial was refused before sending, yet the phone read
"first profit taken: 0.238 of 0.476 closed at market", and the position was marked as
having taken it, so it was never tried again in that run: the whole size rode on.

Now the first profit is told only once its order is sent; one refused before sending is
said so, and taken on a later tick once writes work again."""

import sqlite3
from decimal import Decimal
from typing import Any

from tests.engine_world import SYMBOL, World
from tests.test_move_stop_command import world_with_a_long
from trader.alerts import Alert


def said(world: World) -> list[Alert]:
    """Every alert the engine publishes from now on (kept whether or not the database
    takes it)."""
    alerter, published = world.engine.alerter, []
    real = alerter.publish

    def publish(alert: Alert, *args: Any, **kwargs: Any) -> Any:
        published.append(alert)
        return real(alert, *args, **kwargs)
    alerter.publish = publish      # type: ignore[method-assign]
    return published


def refuse_writes(world: World) -> None:
    def authorizer(action: int, *_: Any) -> int:
        writes = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)
        return sqlite3.SQLITE_DENY if action in writes else sqlite3.SQLITE_OK
    world.store.db.conn.set_authorizer(authorizer)


def profit_mark(world: World) -> Decimal:
    """A close 0.6 % above the entry: past BTCUSDT's first-profit trigger (0.35 %), far
    from the target (4 %)."""
    return (world.engine.positions[SYMBOL].entry_price * Decimal("1.006")).quantize(
        Decimal("0.1"))


async def test_a_first_profit_not_sent_is_not_told_as_taken_and_is_taken_later(tmp_path):
    world = await world_with_a_long(tmp_path)
    held = world.engine.positions[SYMBOL].quantity
    published = said(world)
    refuse_writes(world)
    await world.step(profit_mark(world))
    texts = [a.text for a in published]
    assert not [t for t in texts if "first profit taken" in t], texts
    assert [t for t in texts if "first profit was not taken" in t], texts
    assert (await world.paper.position(SYMBOL)).size == held, "nothing was sent"
    assert not world.engine.positions[SYMBOL].partial_taken

    world.store.db.conn.set_authorizer(None)        # the disk is back
    await world.step(profit_mark(world))
    await world.step()
    texts = [a.text for a in published]
    assert [t for t in texts if "first profit taken" in t], texts
    assert (await world.paper.position(SYMBOL)).size < held
    assert world.engine.positions[SYMBOL].partial_taken


async def test_a_first_profit_sent_is_told_once(tmp_path):
    """The negative: with a working database the first profit is taken and told at once,
    as before."""
    world = await world_with_a_long(tmp_path)
    held = world.engine.positions[SYMBOL].quantity
    published = said(world)
    await world.step(profit_mark(world))
    texts = [a.text for a in published]
    assert len([t for t in texts if "first profit taken" in t]) == 1, texts
    assert not [t for t in texts if "not taken" in t], texts
    assert (await world.paper.position(SYMBOL)).size < held

"""A close whose fills could not be read is read again later and completed (trader/
close_readback.py): the exit price and the PnL come from the exchange's trades, the record
and its fills are saved together, and the operator is told. The real engine on the paper
exchange; the fills read fails as Binance's does when it answers 503."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from tests.engine_world import START, SYMBOL, World, long_signal, make_world, restart
from tests.positions import make
from trader.close_readback import POLL_EVERY, CloseReadback
from trader.display import money, number
from trader.domain import Fill, Side
from trader.exchange.base import UnknownOutcome
from trader.position import Position
from trader.position_fills import fills_of
from trader.startup import boot, reconcile


def readback_of(world: World) -> CloseReadback:
    engine = world.engine
    return CloseReadback(world.paper, engine.executor, world.store, engine.alerter, world.clock,
                         engine.guards)


async def fills_unreadable(symbol: str, since: object) -> list[Fill]:
    raise UnknownOutcome("fills: HTTP 503", code=-1000, http_status=503)


async def stopped_out_unread(world: World) -> Position:
    """A long stopped out while neither the stream nor a fills read reports the fill."""
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    stop = world.engine.positions[SYMBOL].stop.trigger_price
    world.paper.stream_live = False             # and what it would have said is lost
    world.paper.drain_events = list             # type: ignore[method-assign]
    world.paper.fills = fills_unreadable        # type: ignore[method-assign]
    await world.step(stop - 50, low=stop - 100)
    assert SYMBOL not in world.engine.positions
    [record] = world.store.closed_positions()
    assert record.exit_price is None and record.realized_pnl == 0
    return record


async def test_an_unknown_result_is_completed_once_the_fills_can_be_read(tmp_path):
    world = await make_world(tmp_path)
    record = await stopped_out_unread(world)
    del world.paper.fills                       # the exchange answers again
    [final] = await readback_of(world).sync()
    [saved] = world.store.closed_positions()
    assert saved == final and saved.key == record.key
    assert saved.exit_price is not None and saved.realized_pnl < 0 and saved.fees > 0
    assert saved.close_reason == record.close_reason and saved.closed_at == record.closed_at
    closing = [f for f in world.store.fills(SYMBOL) if f.side is Side.SELL]
    assert sum(f.quantity for f in closing) == saved.traded_quantity > 0
    [said] = [text for text in world.alerts("CLOSE") if "is now read" in text]
    assert f"{SYMBOL}: the LONG closed" in said and "(STOP_LOSS) is now read: exit " in said
    assert "USDT net of fees" in said and record.key in said


async def test_it_waits_while_the_exchange_still_fails_and_reads_once_per_round(tmp_path):
    world = await make_world(tmp_path)
    record = await stopped_out_unread(world)
    readback = readback_of(world)
    assert await readback.sync() == []          # still 503: nothing changes, nothing said
    assert world.store.closed_positions() == [record]
    assert not [text for text in world.alerts("CLOSE") if "is now read" in text]
    del world.paper.fills
    assert await readback.sync() == []          # not due before POLL_EVERY
    world.clock.advance(POLL_EVERY)
    assert len(await readback.sync()) == 1
    world.clock.advance(POLL_EVERY)
    assert await readback.sync() == []          # nothing unknown left: nothing read
    assert len([t for t in world.alerts("CLOSE") if "is now read" in t]) == 1


def fill(at_minutes: int, side: Side, symbol: str = SYMBOL) -> Fill:
    return Fill(f"t{at_minutes}", symbol, "c", side, Decimal("1"), Decimal("100"), Decimal("0"),
                Decimal("0"), START + timedelta(minutes=at_minutes))


def test_only_the_fills_between_its_opening_and_its_close_are_its_own() -> None:
    position = make(opened_at=START + timedelta(minutes=10),
                    closed_at=START + timedelta(minutes=20))
    trades = [fill(5, Side.SELL), fill(10, Side.BUY), fill(19, Side.SELL),
              fill(20, Side.SELL, "ETHUSDT"), fill(21, Side.BUY)]
    assert [f.trade_id for f in fills_of(position, trades, position.closed_at)] == ["t10", "t19"]


async def test_the_agent_reads_it_back_at_boot_and_in_its_periodic_reconciliation(tmp_path):
    """Production's path: `reconcile` (every TRADEBOT_RECONCILE_SECONDS, and after the stream
    reconnects) and `boot` read unknown closes back once every position is protected."""
    world = await make_world(tmp_path)
    await stopped_out_unread(world)
    engine = world.engine
    engine.booted = True
    # as app.py runs it; the exchange still fails: still unknown, and the agent goes on
    await engine.contained("periodic reconciliation", reconcile(engine))
    assert world.store.closed_positions()[0].exit_price is None
    del world.paper.fills
    world.clock.advance(POLL_EVERY)
    await engine.contained("periodic reconciliation", reconcile(engine))
    assert world.store.closed_positions()[0].exit_price is not None


async def test_a_restarted_agent_reads_it_back_at_boot(tmp_path):
    world = await make_world(tmp_path)
    await stopped_out_unread(world)
    del world.paper.fills
    world.store.close()
    again = restart(world)
    await boot(again.engine)
    [final] = again.store.closed_positions()
    assert final.exit_price is not None and final.realized_pnl < 0


async def test_a_read_back_that_cannot_be_saved_keeps_nothing_and_says_nothing(tmp_path):
    """The record and its fills are one transaction: a refused fill write leaves the close
    unknown (no half-completed record, no alert claiming it), counted by the write health,
    and the next round tries again."""
    world = await make_world(tmp_path)
    record = await stopped_out_unread(world)
    del world.paper.fills
    world.store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON fills "
                           "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    readback = readback_of(world)
    assert await readback.sync() == []
    assert world.store.closed_positions() == [record]
    assert not [text for text in world.alerts("CLOSE") if "is now read" in text]
    assert world.store.health.total_failures > 0 and world.store.health.pending_alert
    world.store.db.execute("DROP TRIGGER refuse")
    world.clock.advance(POLL_EVERY)
    [final] = await readback.sync()
    assert final.exit_price is not None


def paying_in_bnb(world: World, price: Decimal | None) -> None:
    """The exchange's trades read with their fees in BNB (at 600 USDT), BNB's price read
    as `price` (None: the read fails)."""
    real = world.paper.fills

    async def trades_in_bnb(symbol: str, since: object) -> list[Fill]:
        return [replace(f, fee=(f.fee / 600).quantize(Decimal("0.00000001")), fee_asset="BNB")
                for f in await real(symbol, since)]     # type: ignore[arg-type]

    async def bnb_price(asset: str) -> Decimal:
        if price is None:
            raise UnknownOutcome("premiumIndex: HTTP 503", code=-1000, http_status=503)
        return price
    world.paper.fills = trades_in_bnb               # type: ignore[method-assign]
    world.paper.asset_price = bnb_price             # type: ignore[method-assign]


async def test_a_read_back_values_fees_in_bnb_at_the_price_read_then(tmp_path):
    world = await make_world(tmp_path)
    await stopped_out_unread(world)
    del world.paper.fills
    paying_in_bnb(world, Decimal("600"))
    [final] = await readback_of(world).sync()
    [(asset, amount, usdt)] = [(f.asset, f.amount, f.usdt) for f in final.fees_in_kind]
    assert asset == "BNB" and usdt == amount * 600 and final.fees == usdt > 0
    [said] = [text for text in world.alerts("CLOSE") if "is now read" in text]
    assert f"USDT net of fees ({money(usdt)} USDT ({number(amount)} BNB))" in said, said


async def test_a_read_back_whose_bnb_price_cannot_be_read_leaves_the_streak_as_it_was(
        tmp_path):
    world = await make_world(tmp_path)
    await stopped_out_unread(world)
    del world.paper.fills
    paying_in_bnb(world, None)
    guards_before = world.engine.guards.state
    [final] = await readback_of(world).sync()
    assert [f.usdt for f in final.fees_in_kind] == [None] and final.fees == 0
    # a stop-loss: a loss before its fees, so a loss whatever they were worth
    assert final.realized_pnl < 0
    assert world.engine.guards.state.loss_streak.get(SYMBOL, 0) == \
        guards_before.loss_streak.get(SYMBOL, 0) + 1
    [said] = [text for text in world.alerts("CLOSE") if "is now read" in text]
    assert "not valued in USDT" in said, said

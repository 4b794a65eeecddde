"""A close recorded with a fee charged in BNB left unvalued (no request may be sent inside
an IP ban; the price read failed or was slow: trader/fee_prices.py) is valued by the close
read-back once BNB's price can be read (trader/close_readback.py): at the price then, said
so in a CLOSE, the record saved in one transaction with the guards, its result counted
into the loss streak once, as one known at the close would have been. Within the
read-back's LOOKBACK. (review9 item 4: nothing valued it; /pnl, /trades, /performance and
the daily summary said "+ fees of 0.0414 BNB not valued in USDT" forever, and the trade was
never counted won or lost.)"""

from dataclasses import dataclass, field, replace
from decimal import Decimal

from bot.format_history import format_pnl
from tests.engine_world import SYMBOL as PAPER_SYMBOL
from tests.engine_world import World, long_signal, make_world
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_close_readback import paying_in_bnb
from tests.test_fees_paid_in_bnb import (
    BNB_STEP,
    BNB_USDT,
    agent_paying_fees,
    bnb_price_reads,
    charged_in_bnb,
    close_texts,
    with_streak,
)
from tests.test_first_command_after_boot import SYMBOL, Agent
from tests.test_loss_read_back_guards import streak_of, target_hit_unread
from tests.test_stop_fill_during_ban import banned, long_open, ticks
from trader.close_readback import LOOKBACK, POLL_EVERY
from trader.commands import CommandKind
from trader.display import money, number
from trader.domain import FeeInKind, Fill
from trader.exchange.base import UnknownOutcome
from trader.guard_book import load_state
from trader.position import Position


def price_unreadable(fake: FakeBinance, times: int) -> None:
    """The next `times` reads of BNB's price refused as Binance refuses an unknown symbol
    (then it answers again)."""
    fake.inject_fault("GET /fapi/v1/premiumIndex", code=-1121, http_status=400,
                      msg="Invalid symbol.", times=times, only={"symbol": "BNBUSDT"})


async def read_back_round(agent: Agent) -> list[Position]:
    """One round of the read-back, as reconcile and boot run it."""
    agent.engine.close_readback.mark_due()
    return await agent.engine.close_readback.sync()


def valued_alerts(agent: Agent) -> list[str]:
    return [text for text in close_texts(agent) if "are now valued" in text]


async def closed_unvalued(agent: Agent, fake: FakeBinance, gross_move: str) -> Position:
    """A long closed by /close with the price moved by `gross_move`, the read of BNB's
    price at the close refused."""
    entry = await long_open(agent)
    await fake.move_price(SYMBOL, entry * Decimal(gross_move))
    price_unreadable(fake, 1)
    await agent.run(CommandKind.CLOSE)
    [record] = agent.engine.store.closed_positions()
    assert [f.usdt for f in record.fees_in_kind] == [None]
    return record


async def test_bnb_fees_of_a_close_inside_a_ban_are_valued_once_the_ban_ends(tmp_path):
    async with agent_paying_fees(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        await banned(agent, fake, 2)
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))     # the stop fills
        await ticks(engine, 3)
        [record] = engine.store.closed_positions()
        assert [(f.asset, f.usdt) for f in record.fees_in_kind] == [("BNB", None)]
        assert await eventually(lambda: not engine.executor.circuit_open(), timeout=5.0)
        await ticks(engine, 5)
        [valued] = await read_back_round(agent)
        bnb = charged_in_bnb(fake)
        usdt = (bnb * BNB_USDT).quantize(BNB_STEP)
        [record] = engine.store.closed_positions()
        assert record == valued
        assert record.fees_in_kind == (FeeInKind("BNB", bnb, usdt),)
        assert record.fees == usdt and record.closed_at == valued.closed_at
        [said] = valued_alerts(agent)
        assert f"{SYMBOL}: the fees of the LONG closed" in said and "(STOP_LOSS)" in said
        assert "are now valued at the price of " in said and "BNB 600 USDT" in said, said
        assert f"({money(usdt)} USDT ({number(bnb)} BNB))" in said, said
        pnl = (await agent.run(CommandKind.PNL)).pnl
        assert pnl is not None and (pnl.fees, pnl.unvalued_fees) == (usdt, "")
        assert "not valued" not in format_pnl(pnl)


async def test_a_trade_its_bnb_fees_made_a_loss_counts_once_when_they_are_valued(tmp_path):
    async with agent_paying_fees(tmp_path) as (fake, agent):
        with_streak(agent, 1)
        await closed_unvalued(agent, fake, "1.0003")                # gross a little above 0
        assert agent.engine.guards.state.loss_streak.get(SYMBOL) == 1, "not known yet"
        [valued] = await read_back_round(agent)
        assert 0 < valued.realized_pnl < valued.fees
        assert agent.engine.guards.state.loss_streak.get(SYMBOL) == 2
        reads = len(bnb_price_reads(fake))
        assert await read_back_round(agent) == []                  # valued: left alone
        assert len(bnb_price_reads(fake)) == reads
        assert agent.engine.guards.state.loss_streak.get(SYMBOL) == 2, "counted once"
        pnl = (await agent.run(CommandKind.PNL)).pnl
        assert pnl is not None and (pnl.trades, pnl.wins, pnl.unvalued_fees) == (1, 0, "")


async def test_a_trade_still_won_after_its_bnb_fees_counts_as_a_win(tmp_path):
    async with agent_paying_fees(tmp_path) as (fake, agent):
        with_streak(agent, 2)
        await closed_unvalued(agent, fake, "1.01")
        assert agent.engine.guards.state.loss_streak.get(SYMBOL) == 2
        [valued] = await read_back_round(agent)
        assert valued.realized_pnl > valued.fees > 0
        assert agent.engine.guards.state.loss_streak.get(SYMBOL) == 0


async def test_while_the_price_cannot_be_read_nothing_changes_and_nothing_is_said(tmp_path):
    """Negative: the read still refused: the record as it was, the streak as it was, no
    alert; one read per round."""
    async with agent_paying_fees(tmp_path) as (fake, agent):
        with_streak(agent, 1)
        record = await closed_unvalued(agent, fake, "1.0003")
        price_unreadable(fake, 10)
        reads = len(bnb_price_reads(fake))
        assert await read_back_round(agent) == []
        assert len(bnb_price_reads(fake)) == reads + 1
        assert agent.engine.store.closed_positions() == [record]
        assert agent.engine.guards.state.loss_streak.get(SYMBOL) == 1
        assert valued_alerts(agent) == []


async def test_fees_valued_at_the_close_are_never_read_again(tmp_path):
    """Negative: a close whose BNB fees were valued at the close: no price read after."""
    async with agent_paying_fees(tmp_path) as (fake, agent):
        await long_open(agent)
        await agent.run(CommandKind.CLOSE)
        [record] = agent.engine.store.closed_positions()
        assert record.fees_in_kind[0].usdt is not None
        assert await read_back_round(agent) == []
        assert len(bnb_price_reads(fake)) == 1
        assert valued_alerts(agent) == []


@dataclass
class BnbPrice:
    """BNB's price as the exchange answers it: refused until `readable`; what was asked."""
    readable: bool = False
    asked: list[str] = field(default_factory=list)

    async def __call__(self, asset: str) -> Decimal:
        self.asked.append(asset)
        if not self.readable:
            raise UnknownOutcome("premium index: TimeoutError()")
        return Decimal("600")


async def stopped_out_paying_bnb(world: World) -> tuple[Position, BnbPrice]:
    """A long stopped out on the paper exchange, its fees charged in BNB, BNB's price not
    read at the close (readable from then on, nothing asked yet)."""
    price = BnbPrice()
    real_fills = world.paper.fills

    async def fills_in_bnb(symbol: str, since: object) -> list[Fill]:
        return [replace(f, fee=(f.fee / 600).quantize(BNB_STEP), fee_asset="BNB")
                for f in await real_fills(symbol, since)]      # type: ignore[arg-type]
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    stop = world.engine.positions[PAPER_SYMBOL].stop.trigger_price
    world.paper.fills = fills_in_bnb                 # type: ignore[method-assign]
    world.paper.asset_price = price                  # type: ignore[method-assign]
    await world.step(stop - 50, low=stop - 100)
    [record] = world.store.closed_positions()
    assert [f.usdt for f in record.fees_in_kind] == [None]
    price.readable = True
    price.asked.clear()
    return record, price


async def test_a_close_valued_within_the_lookback_is_valued(tmp_path):
    world = await make_world(tmp_path)
    record, price = await stopped_out_paying_bnb(world)
    world.clock.advance(LOOKBACK - POLL_EVERY)
    [valued] = await world.engine.close_readback.sync()
    assert price.asked == ["BNB"] and valued.fees_in_kind[0].usdt is not None
    assert valued.closed_at == record.closed_at


async def test_a_close_older_than_the_lookback_is_left_unvalued(tmp_path):
    """Negative: past LOOKBACK (its price then is a week away from the close's) the record
    stays as it is, and nothing is read for it."""
    world = await make_world(tmp_path)
    record, price = await stopped_out_paying_bnb(world)
    world.clock.advance(LOOKBACK + POLL_EVERY)
    assert await world.engine.close_readback.sync() == []
    assert price.asked == [] and world.store.closed_positions() == [record]


async def test_a_result_read_back_with_its_bnb_fee_unvalued_is_counted_once_valued(tmp_path):
    """A close whose fills were unreadable, read back while BNB's price was not: its result
    known but not counted (a win on a net that leaves the fee out), counted once the fee is
    valued in a later round."""
    world = await make_world(tmp_path)
    streak_of(world, 2)
    await target_hit_unread(world)
    del world.paper.fills
    paying_in_bnb(world, None)
    world.clock.advance(POLL_EVERY)
    [read] = await world.engine.close_readback.sync()
    assert read.exit_price is not None and [f.usdt for f in read.fees_in_kind] == [None]
    assert world.engine.guards.state.loss_streak[PAPER_SYMBOL] == 2, "not known yet"
    world.paper.asset_price = BnbPrice(readable=True)   # type: ignore[method-assign]
    world.clock.advance(POLL_EVERY)
    [valued] = await world.engine.close_readback.sync()
    assert valued.realized_pnl > valued.fees > 0
    assert world.engine.guards.state.loss_streak[PAPER_SYMBOL] == 0, "a win, counted"
    assert load_state(world.store.get("guards")).loss_streak[PAPER_SYMBOL] == 0, "saved"

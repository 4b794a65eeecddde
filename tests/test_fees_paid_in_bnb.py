"""Fees paid in BNB ("BNB burn": GET /fapi/v2/account "feeBurn": true with BNB in the
wallet, https://developers.binance.com/docs/derivatives/usds-margined-futures/account/
rest-api/Account-Information-V2). Binance then names the fee's asset beside its amount:
ORDER_TRADE_UPDATE "N" (Commission Asset, .../user-data-streams/Event-Order-Update) and
GET /fapi/v1/userTrades "commissionAsset" (.../trade/rest-api/Account-Trade-List). A close
values such fees in USDT at BNB's price (GET /fapi/v1/premiumIndex of BNBUSDT); one whose
price cannot be read is said unvalued, and the loss streak does not count its trade as a
win on a net that leaves it out. (review7 item 3: the fees' BNB amounts were booked as
USDT, "fees 0.04" for ~25 USDT charged.)"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.format_history import format_performance, format_pnl, format_trades
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import (
    FAST_STREAMS,
    SYMBOL,
    Agent,
    booted,
    market_up_to_now,
)
from tests.test_stop_fill_during_ban import banned, long_open, ticks
from trader.commands import CommandKind
from trader.display import money, number
from trader.domain import FeeInKind
from trader.position import Position

BNB_USDT = Decimal("600")
BNB_STEP = Decimal("0.00000001")


@asynccontextmanager
async def agent_paying_fees(tmp_path: Path, fees_in_bnb: Decimal | None = BNB_USDT,
                            **env: Any) -> AsyncIterator[tuple[FakeBinance, Agent]]:
    """`streaming_agent`, its account paying its fees in BNB at `fees_in_bnb` USDT."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}, fees_in_bnb=fees_in_bnb) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS, **env) as agent:
            yield fake, agent


def charged_in_bnb(fake: FakeBinance) -> Decimal:
    """What the fake charged, in BNB (binance_wire.commission: each fill's USDT fee at
    BNB_USDT, to 8 decimals)."""
    return sum(((f.fee / BNB_USDT).quantize(BNB_STEP) for f in fake.sim.fills(SYMBOL)),
               Decimal(0))


def bnb_price_reads(fake: FakeBinance) -> list[Any]:
    return [r for r in fake.requests("GET /fapi/v1/premiumIndex")
            if r.params.get("symbol") == "BNBUSDT"]


def close_texts(agent: Agent) -> list[str]:
    return [a.text for a in agent.engine.store.recent_alerts(20) if a.name == "CLOSE"]


def with_streak(agent: Agent, streak: int) -> None:
    """The symbol's loss streak as if `streak` losses came before."""
    engine = agent.engine
    state = engine.guards.state
    engine.guards.state = replace(state, loss_streak={**state.loss_streak, SYMBOL: streak})


async def test_fees_charged_in_bnb_are_valued_in_usdt_at_the_close(tmp_path):
    async with agent_paying_fees(tmp_path) as (fake, agent):
        await long_open(agent)
        result = await agent.run(CommandKind.CLOSE)
        assert result.ok, result.lines
        [record] = agent.engine.store.closed_positions()
        bnb = charged_in_bnb(fake)
        usdt = (bnb * BNB_USDT).quantize(BNB_STEP)
        assert record.fees_in_kind == (FeeInKind("BNB", bnb, usdt),)
        assert record.fees == usdt, (
            f"{bnb} BNB (~{usdt} USDT) charged; recorded fees {record.fees}: {close_texts(agent)}")
        [close] = close_texts(agent)
        assert f"(fees {money(usdt)} USDT ({number(bnb)} BNB), funding" in close, close
        assert len(bnb_price_reads(fake)) == 1             # one read, weight 1
        pnl = (await agent.run(CommandKind.PNL)).pnl
        assert pnl is not None and (pnl.fees, pnl.unvalued_fees) == (usdt, "")
        assert "not valued" not in format_pnl(pnl)


async def test_a_trade_that_lost_only_to_its_bnb_fees_lengthens_the_loss_streak(tmp_path):
    async with agent_paying_fees(tmp_path) as (fake, agent):
        entry = await long_open(agent)
        with_streak(agent, 1)
        await fake.move_price(SYMBOL, entry * Decimal("1.0003"))   # gross a little above 0
        await agent.run(CommandKind.CLOSE)
        [record] = agent.engine.store.closed_positions()
        assert 0 < record.realized_pnl < record.fees, (record.realized_pnl, record.fees)
        assert agent.engine.guards.state.loss_streak.get(SYMBOL) == 2, (
            f"net {record.realized_pnl - record.fees}: a loss; {close_texts(agent)}")


async def test_bnb_fees_whose_price_cannot_be_read_are_said_unvalued_never_counted_a_win(
        tmp_path):
    async with agent_paying_fees(tmp_path) as (fake, agent):
        entry = await long_open(agent)
        with_streak(agent, 1)
        await fake.move_price(SYMBOL, entry * Decimal("1.0003"))
        fake.inject_fault("GET /fapi/v1/premiumIndex", code=-1121, http_status=400,
                          msg="Invalid symbol.", times=10)
        await agent.run(CommandKind.CLOSE)
        [record] = agent.engine.store.closed_positions()
        bnb = charged_in_bnb(fake)
        assert record.fees_in_kind == (FeeInKind("BNB", bnb, None),)
        assert record.fees == 0 and record.realized_pnl > 0
        [close] = close_texts(agent)
        net = money(record.realized_pnl, signed=True)
        assert f"PnL {net} USDT net before {number(bnb)} BNB of fees (fees 0.00 USDT + " \
               f"{number(bnb)} BNB not valued in USDT," in close, close
        assert "could not read the price of BNB" in close, close
        # neither a win (its net leaves the fee out) nor a loss (not known): as it was
        assert agent.engine.guards.state.loss_streak.get(SYMBOL) == 1, close
        # /pnl and /trades say the same: the net leaves out fees of so much BNB
        pnl = (await agent.run(CommandKind.PNL)).pnl
        trades = (await agent.run(CommandKind.TRADES)).trades
        assert pnl is not None and trades is not None
        assert (pnl.trades, pnl.wins, pnl.unvalued_fees) == (1, 0, f"{number(bnb)} BNB")
        assert f"+ fees of {number(bnb)} BNB not valued in USDT" in format_pnl(pnl)
        [trade] = trades
        assert trade.unvalued_fees == f"{number(bnb)} BNB"
        assert f"%) before {number(bnb)} BNB of fees not valued in USDT ·" \
            in format_trades(trades), format_trades(trades)
        # /performance too: no win, and the fee it leaves out named (it said 100 % won)
        rows = (await agent.run(CommandKind.PERFORMANCE)).performance
        assert rows is not None
        [row] = rows
        assert (row.trades, row.wins, row.unvalued_fees) == (1, 0, f"{number(bnb)} BNB")
        assert f"{SYMBOL}: fees of {number(bnb)} BNB not valued in USDT" \
            in format_performance(rows), format_performance(rows)


async def test_a_close_inside_a_ban_leaves_the_bnb_fees_unvalued_and_says_why(tmp_path):
    async with agent_paying_fees(tmp_path) as (fake, agent):
        engine = agent.engine
        entry = await long_open(agent)
        sent = await banned(agent, fake, 120)
        await fake.move_price(SYMBOL, entry * Decimal("0.985"))     # the stop fills
        await ticks(engine)
        assert len(fake.request_log) == sent           # nothing sent, no price read either
        [record] = engine.store.closed_positions()
        assert [(f.asset, f.usdt) for f in record.fees_in_kind] == [("BNB", None)]
        [close] = close_texts(agent)
        assert "not valued in USDT: no request may be sent for its price" in close, close


async def test_fees_in_usdt_read_and_say_as_before(tmp_path):
    """Negative: the fake's default, "feeBurn" true with no BNB to pay with: USDT fees, no
    price read, the record and the CLOSE as they always were."""
    async with agent_paying_fees(tmp_path, fees_in_bnb=None) as (fake, agent):
        await long_open(agent)
        await agent.run(CommandKind.CLOSE)
        [record] = agent.engine.store.closed_positions()
        charged = sum((f.fee for f in fake.sim.fills(SYMBOL)), Decimal(0))
        assert (record.fees, record.fees_in_kind) == (charged, ())
        [close] = close_texts(agent)
        assert f"(fees {money(charged)}, funding" in close, close
        assert bnb_price_reads(fake) == []


def test_an_older_record_reads_back_without_fees_in_kind():
    """A position saved before the field existed: no fee in another asset."""
    assert Position.__dataclass_fields__["fees_in_kind"].default == ()

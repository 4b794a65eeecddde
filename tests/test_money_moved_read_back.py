"""Money moved read back from the income history, and the balance reads that see it first
(found by a reviewer, rv17-01/02/04; their scripts were adapted here).

GET /fapi/v1/income (https://developers.binance.com/docs/derivatives/usds-margined-futures/
account/rest-api/Get-Income-History): every row names its "asset"; "If incomeType is not
sent, all kinds of flow will be returned"; "trandId is unique in the same incomeType for a
user" (the page's own example gives a TRANSFER and a COMMISSION row the same tranId). The
drawdown rule's peak and the equity are USDT: only USDT rows move the peak.

Through the real engine, python-binance and the user-data socket against the fake Binance.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import FAST_STREAMS, SYMBOL, booted, market_up_to_now
from tests.test_money_moved_is_no_drawdown import WALLET, agent_with_risk_state, risk_state
from trader.commands import CommandKind
from trader.domain import to_ms
from trader.exchange import binance_codec as codec
from trader.exchange.base import FundingIncome
from trader.money_moved import MovedMoney
from trader.risk_state import RISK_KEY
from trader.startup import reconcile
from trader.trade_store import TradeStore


def saved_risk(tmp_path: Path, peak: str, fraction: str) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    store.put(RISK_KEY, {"peak": peak, "fraction": fraction}, datetime.now(UTC))
    store.close()


# --- rv17-01: only USDT rows ---------------------------------------------------------------
@pytest.mark.parametrize(("moved", "loss", "fraction"), [
    (Decimal("5000"), Decimal("0"), "0.025"),        # in: the peak would be 15,000 (1.5 %)
    (Decimal("-5000"), Decimal("1000"), "0.015")])   # out: a real 10 % loss kept 2.5 %
async def test_money_of_another_asset_read_back_leaves_the_usdt_peak_alone(
        tmp_path, moved, loss, fraction):
    saved_risk(tmp_path, str(WALLET), "0.025")
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            await agent.engine.tick()
        # while the agent is away: USDC moved between spot and the futures wallet
        fake.income.book_transfer(moved, "TRANSFER", to_ms(fake.now()))
        fake.income.rows[-1]["asset"] = "USDC"
        fake.sim.ledger.wallet = fake.sim.ledger.wallet - loss       # a trading loss
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            await agent.engine.tick()
            state = risk_state(agent)
            assert Decimal(state["peak"]) == WALLET, state
            assert state["fraction"] == fraction, state


async def test_money_of_another_asset_moved_while_streaming_is_not_taken_at_a_reconnect(
        tmp_path):
    async with agent_with_risk_state(tmp_path, str(WALLET), "0.025") as (fake, agent):
        engine = agent.engine
        fake.income.book_transfer(Decimal("-5000"), "TRANSFER", to_ms(fake.now()))
        fake.income.rows[-1]["asset"] = "BNB"
        await fake.drop_streams()
        assert await eventually(lambda: engine.resync_due and engine.exchange.streaming, 5.0)
        await reconcile(engine)
        assert Decimal(risk_state(agent)["peak"]) == WALLET


def test_the_move_rows_are_the_usdt_rows_of_the_kinds_that_move_money_in_or_out():
    """The page's example (tests/fixtures/binance/income_history.json's shape): a TRANSFER
    row and a COMMISSION row sharing tranId 9689322392; other kinds and assets beside."""
    def row(kind: str, asset: str, income: str, tran_id: int = 9689322392) -> dict[str, object]:
        return {"symbol": "", "incomeType": kind, "income": income, "asset": asset,
                "info": kind, "time": 1570608000000, "tranId": tran_id, "tradeId": ""}
    rows = [row("TRANSFER", "USDT", "-0.375"), row("COMMISSION", "USDT", "-0.01"),
            row("TRANSFER", "USDC", "5000"), row("INTERNAL_TRANSFER", "USDT", "20"),
            row("STRATEGY_UMFUTURES_TRANSFER", "USDT", "-3"),
            row("CROSS_COLLATERAL_TRANSFER", "USDT", "4"), row("FUNDING_FEE", "USDT", "-1"),
            row("REALIZED_PNL", "USDT", "7"), row("AUTO_EXCHANGE", "USDT", "2", 5)]
    moved = codec.money_moved_rows(rows)
    assert [(m.amount, m.asset) for m in moved] == [
        (Decimal("-0.375"), "USDT"), (Decimal("20"), "USDT"), (Decimal("-3"), "USDT"),
        (Decimal("4"), "USDT"), (Decimal("2"), "USDT")]
    assert len({m.tran_id for m in moved}) == len(moved)      # keyed by type and tranId


# --- the kinds beyond TRANSFER, in one request ------------------------------------------------
async def test_an_internal_transfer_read_back_moves_the_peak_with_one_request(tmp_path):
    async with agent_with_risk_state(tmp_path, str(WALLET), "0.025") as (fake, agent):
        engine = agent.engine
        fake.income.book_transfer(Decimal("-1000"), "INTERNAL_TRANSFER", to_ms(fake.now()))
        fake.sim.ledger.wallet = fake.sim.ledger.wallet - 1000      # the stream missed it
        fake.clear_request_log()
        await fake.drop_streams()
        assert await eventually(lambda: engine.resync_due and engine.exchange.streaming, 5.0)
        await reconcile(engine)
        reads = [r.params.get("incomeType") for r in fake.requests("GET /fapi/v1/income")]
        assert [kind for kind in reads if kind != "FUNDING_FEE"] == [None], reads
        assert Decimal(risk_state(agent)["peak"]) == WALLET - 1000
        engine.balance_keeper.read_at = None
        await engine.tick()
        assert risk_state(agent)["fraction"] == "0.025"


# --- rv17-02: a balance read that sees the money before any report of it ------------------
async def test_a_deposit_missed_by_the_stream_seen_by_polling_then_read_back_counts_once(
        tmp_path):
    async with agent_with_risk_state(tmp_path, str(WALLET), "0.025") as (fake, agent):
        engine = agent.engine
        await fake.drop_streams(refuse_for=3.0)          # the stream is down a while
        assert await eventually(lambda: not engine.exchange.streaming, 5.0)
        await fake.move_money_by_hand(Decimal("1000"), "DEPOSIT")   # nobody hears it
        engine.balance_keeper.read_at = None              # the polling balance read (10 s)
        await engine.tick()
        assert await eventually(lambda: engine.exchange.streaming, 10.0)
        await reconcile(engine)                           # the reconnect's read back
        engine.balance_keeper.read_at = None              # the next balance read
        await engine.tick()
        state = risk_state(agent)
        assert Decimal(state["peak"]) == WALLET + 1000, state    # no trade: no drawdown
        assert state["fraction"] == "0.025", state


async def test_a_deposit_mid_drawdown_seen_by_polling_restores_nothing(tmp_path):
    """6 % below the peak (10,638.30 -> 10,000: 1.5 %); 1,000 deposited while the stream is
    down: README "A deposit in a drawdown does not restore 2.5 %"."""
    async with agent_with_risk_state(tmp_path, "10638.30", "0.015") as (fake, agent):
        engine = agent.engine
        await fake.drop_streams(refuse_for=3.0)
        assert await eventually(lambda: not engine.exchange.streaming, 5.0)
        await fake.move_money_by_hand(Decimal("1000"), "DEPOSIT")   # nobody hears it
        engine.balance_keeper.read_at = None              # the polling balance read (10 s)
        await engine.tick()
        assert risk_state(agent)["fraction"] == "0.015", risk_state(agent)
        assert await eventually(lambda: engine.exchange.streaming, 10.0)
        await reconcile(engine)                           # the reconnect's read back
        engine.balance_keeper.read_at = None
        await engine.tick()
        state = risk_state(agent)
        assert Decimal(state["peak"]) == Decimal("11638.30"), state
        assert state["fraction"] == "0.015", state


async def test_a_trading_high_seen_while_polling_is_the_peak_once_read_back_finds_no_move(
        tmp_path):
    async with agent_with_risk_state(tmp_path, "10638.30", "0.015") as (fake, agent):
        engine = agent.engine
        await fake.drop_streams(refuse_for=3.0)
        assert await eventually(lambda: not engine.exchange.streaming, 5.0)
        fake.sim.ledger.wallet = fake.sim.ledger.wallet + 1000      # a profit, no income row
        engine.balance_keeper.read_at = None
        await engine.tick()                                          # held: not known yet
        assert risk_state(agent)["fraction"] == "0.015"
        engine.transfer_backfill.last_read = None                    # 15 min later
        await engine.transfer_backfill.sync()                        # polling's read back
        state = risk_state(agent)
        assert Decimal(state["peak"]) == WALLET + 1000, state
        assert state["fraction"] == "0.025", state


async def test_a_deposit_heard_but_not_yet_taken_does_not_raise_the_peak_before_a_long(
        tmp_path):
    """/long reads the balance before its entry, before the tick takes the stream's events:
    the deposit is in that balance and in the event still waiting."""
    async with agent_with_risk_state(tmp_path, "10638.30", "0.015") as (fake, agent):
        engine = agent.engine
        await fake.move_money_by_hand(Decimal("1000"), "DEPOSIT")
        assert await eventually(lambda: len(engine.exchange.streams.events) > 0, 2.0)
        await agent.run(CommandKind.LONG)
        await engine.tick()
        state = risk_state(agent)
        assert Decimal(state["peak"]) == Decimal("11638.30"), state
        assert state["fraction"] == "0.015", state


# --- rv17-04: each report pairs with one move at most ---------------------------------------
def test_a_second_equal_deposit_heard_after_the_first_was_read_back_is_taken():
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    ledger, _ = MovedMoney().read_back([], now)                    # boot: nothing owed
    first = FundingIncome("TRANSFER:1", "", Decimal("500"), "USDT", now + timedelta(minutes=1))
    ledger, fresh = ledger.read_back([first], now + timedelta(minutes=2))   # reconnect
    assert [r.tran_id for r in fresh] == ["TRANSFER:1"]
    heard, read_already = ledger.heard(now + timedelta(minutes=3), Decimal("500"))
    assert not read_already                                     # the second one: taken
    # ... and once heard, the next read back takes its row as told, not as a third
    second = FundingIncome("TRANSFER:2", "", Decimal("500"), "USDT", now + timedelta(minutes=3))
    assert heard.read_back([first, second], now + timedelta(minutes=10))[1] == []


def test_a_stream_report_after_its_row_was_read_back_is_taken_once():
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    ledger, _ = MovedMoney().read_back([], now)
    row = FundingIncome("TRANSFER:1", "", Decimal("500"), "USDT", now + timedelta(minutes=1))
    ledger, _ = ledger.read_back([row], now + timedelta(minutes=2))
    ledger, read_already = ledger.heard(now + timedelta(minutes=1), Decimal("500"))
    assert read_already                                         # the row's own report
    assert MovedMoney.from_json(ledger.to_json()) == ledger
    assert not ledger.heard(now + timedelta(minutes=1), Decimal("500"))[1]   # another one

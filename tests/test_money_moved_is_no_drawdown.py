"""Money moved in or out of the account is no trading result (found by a reviewer, rv16/04).

The drawdown rule (trader/risk.py `risk_fraction`) cuts the risk fraction from the base
(2.5 %) to 1.5 % after a 5 % drawdown from the equity's peak, and restores it at a new peak.
The peak was max(peak, equity): a deposit mid-drawdown restored the full fraction at once and
raised the peak; a transfer out read as a drawdown. Binance's ACCOUNT_UPDATE says why the
wallet moved ("m": DEPOSIT, WITHDRAW, ASSET_TRANSFER, ...) and by how much apart from PnL and
commission ("bc"): https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Balance-and-Position-Update. Money moved shifts the peak by as much.

Through the real engine, python-binance and the user-data socket against the fake Binance
(`FakeBinance.move_money_by_hand` sends the event as that page shows it).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import payload
from tests.test_first_command_after_boot import (
    FAST_STREAMS,
    SYMBOL,
    Agent,
    booted,
    market_up_to_now,
)
from trader.exchange.base import FundingIncome
from trader.exchange.binance_event_codec import money_moved_from_account_event
from trader.money_moved import MovedMoney
from trader.risk import peak_after_move
from trader.risk_state import RISK_KEY
from trader.startup import reconcile
from trader.trade_store import TradeStore

WALLET = Decimal("10000")      # the fake account's (SimConfig.balance)


@asynccontextmanager
async def agent_with_risk_state(tmp_path: Path, peak: str, fraction: str
                                ) -> AsyncIterator[tuple[FakeBinance, Agent]]:
    """An agent booted with its user-data stream on a database whose risk state says
    `peak` and `fraction` (a drawdown the last run saw), the wallet at WALLET."""
    store = TradeStore.open(tmp_path / "t.db")
    store.put(RISK_KEY, {"peak": peak, "fraction": fraction}, datetime.now(UTC))
    store.close()
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            await agent.engine.tick()
            yield fake, agent


async def moved(fake: FakeBinance, agent: Agent, amount: str, reason: str) -> None:
    """`amount` moved by hand for `reason`, its event taken in by a tick."""
    engine = agent.engine
    await fake.move_money_by_hand(Decimal(amount), reason)
    assert await eventually(lambda: len(engine.exchange.streams.events) > 0, 2.0)
    await engine.tick()


def risk_state(agent: Agent) -> dict[str, str]:
    return dict(agent.engine.store.get(RISK_KEY, {}))


async def test_a_deposit_mid_drawdown_keeps_the_reduced_fraction_and_moves_the_peak(tmp_path):
    """6 % below the peak (10,638.30 -> 10,000): 1.5 %. A deposit of 1,000 is no recovery."""
    async with agent_with_risk_state(tmp_path, "10638.30", "0.015") as (fake, agent):
        assert risk_state(agent)["fraction"] == "0.015"
        await moved(fake, agent, "1000", "DEPOSIT")
        state = risk_state(agent)
        assert Decimal(state["peak"]) == Decimal("11638.30")
        assert state["fraction"] == "0.015"


async def test_a_transfer_out_is_no_drawdown(tmp_path):
    async with agent_with_risk_state(tmp_path, str(WALLET), "0.025") as (fake, agent):
        await moved(fake, agent, "-1000", "ASSET_TRANSFER")
        state = risk_state(agent)
        assert Decimal(state["peak"]) == WALLET - 1000
        assert state["fraction"] == "0.025"
        assert agent.engine.balance is not None and agent.engine.balance.equity == WALLET - 1000


async def test_the_moved_peak_is_what_a_restart_measures_from(tmp_path):
    async with agent_with_risk_state(tmp_path, str(WALLET), "0.025") as (fake, agent):
        await moved(fake, agent, "-1000", "WITHDRAW")
        await agent.engine.tick()
    store = TradeStore.open(tmp_path / "t.db")
    try:
        assert Decimal(store.get(RISK_KEY, {})["peak"]) == WALLET - 1000
    finally:
        store.close()


@pytest.mark.parametrize(("reason", "bc", "moved_amount"), [
    ("DEPOSIT", "1000", Decimal("1000")), ("WITHDRAW", "-250.5", Decimal("-250.5")),
    ("ASSET_TRANSFER", "-10", Decimal("-10")), ("AUTO_EXCHANGE", "3", Decimal("3")),
    ("ORDER", "0", None), ("FUNDING_FEE", "-0.5", None), ("INSURANCE_CLEAR", "-12.5", None),
    ("MARGIN_TYPE_CHANGE", "0", None), ("DEPOSIT", "0", None)])
def test_money_moved_is_the_usdt_balance_change_of_a_reason_that_is_no_trading(
        reason, bc, moved_amount):
    """The page's example, its reason and USDT "bc" changed: the trade's own reasons (a fill,
    funding, a liquidation's clearance fee) and a margin type change move no money; the
    BUSD row of the example is never counted."""
    event = payload("event_account_update")
    event["a"]["m"], event["a"]["B"][0]["bc"] = reason, bc
    told = money_moved_from_account_event(event)
    assert (told.amount if told is not None else None) == moved_amount


def test_the_peak_moves_by_the_money_and_never_below_zero_nor_before_it_is_known():
    assert peak_after_move(Decimal("10000"), Decimal("-1000")) == Decimal("9000")
    assert peak_after_move(Decimal("500"), Decimal("-1000")) == Decimal("0")
    assert peak_after_move(Decimal("0"), Decimal("1000")) == Decimal("0")


async def test_a_transfer_made_while_the_agent_was_away_is_read_back_before_the_balance(
        tmp_path):
    """No socket heard it: the income history's TRANSFER row moves the peak at the next
    start, before the balance read that shows the wallet 1,000 lighter."""
    store = TradeStore.open(tmp_path / "t.db")
    store.put(RISK_KEY, {"peak": str(WALLET), "fraction": "0.025"}, datetime.now(UTC))
    store.close()
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            await agent.engine.tick()
        await fake.move_money_by_hand(Decimal("-1000"), "WITHDRAW")     # nobody listening
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            state = risk_state(agent)
            assert Decimal(state["peak"]) == WALLET - 1000
            assert state["fraction"] == "0.025"
            assert len(fake.requests("GET /fapi/v1/income")) >= 1


async def test_a_transfer_heard_and_read_back_after_a_reconnect_moves_the_peak_once(tmp_path):
    async with agent_with_risk_state(tmp_path, str(WALLET), "0.025") as (fake, agent):
        engine = agent.engine
        await moved(fake, agent, "500", "DEPOSIT")
        fake.clear_request_log()
        await fake.drop_streams()
        assert await eventually(lambda: engine.resync_due and engine.exchange.streaming, 5.0)
        await reconcile(engine)                   # the one a reconnect asks for
        assert [r.params.get("incomeType") for r in fake.requests("GET /fapi/v1/income")
                if r.params.get("incomeType") != "FUNDING_FEE"] == [None]   # every kind
        assert Decimal(risk_state(agent)["peak"]) == WALLET + 500


def income(tran_id: str, amount: str, at: datetime) -> FundingIncome:
    return FundingIncome(f"TRANSFER:{tran_id}", "", Decimal(amount), "USDT", at)


def test_each_move_is_taken_once_whichever_report_comes_first():
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    ledger, fresh = MovedMoney().read_back([], now)          # never read: nothing owed
    assert (ledger.through, fresh) == (now, [])
    heard, read_already = ledger.heard(now + timedelta(minutes=1), Decimal("100"))
    assert not read_already
    later = now + timedelta(minutes=10)
    rows = [income("1", "100", now + timedelta(minutes=1)),        # the one heard
            income("2", "100", now + timedelta(minutes=2))]        # the same amount, missed
    ledger, fresh = heard.read_back(rows, later)
    assert [row.tran_id for row in fresh] == ["TRANSFER:2"]
    assert ledger.read_back(rows, later)[1] == []                  # read again: nothing new
    assert ledger.heard(now + timedelta(minutes=2), Decimal("100"))[1]   # read first
    assert MovedMoney.from_json(ledger.to_json()) == ledger
    assert ledger.window_start(later) == now + timedelta(minutes=5)

"""Funding from Binance reaches the journal, so every period's realised PnL counts it:
ACCOUNT_UPDATE with reason FUNDING_FEE carries the payment as the USDT balance's "bc".

Binance's page, https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Balance-and-Position-Update: "When FUNDING FEE occurs in a crossed
position, ACCOUNT_UPDATE will be pushed with only the balance B (including the FUNDING FEE
asset only), without any position P message. When FUNDING FEE occurs in an isolated
position, ACCOUNT_UPDATE will be pushed with only the balance B (including the FUNDING FEE
asset only) and the relative position message P (including the isolated position on which
the FUNDING FEE occurs only, without any other position message)." "bc": "Balance Change
except PnL and Commission". Both layouts are tested.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.binance_harness import SYMBOL, eventually, market, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_streams import FAST
from trader.domain import Side
from trader.exchange.base import FundingApplied
from trader.exchange.binance_event_codec import funding_from_account_event

DOCUMENTED = json.loads(
    (Path(__file__).parent / "fixtures/binance/event_account_update.json").read_text())["payload"]


def with_reason(reason: str, positions: bool) -> dict:
    """The documented example as Binance sends it for a funding fee (cross: no P)."""
    data = {**DOCUMENTED["a"], "m": reason}
    data["B"] = [DOCUMENTED["a"]["B"][0]]                 # the funding asset only
    if positions:
        data["P"] = [DOCUMENTED["a"]["P"][0]]
    else:
        del data["P"]
    return {**DOCUMENTED, "a": data}


def test_a_crossed_funding_fee_is_the_usdt_balance_change_without_a_symbol():
    funding = funding_from_account_event(with_reason("FUNDING_FEE", positions=False))
    assert funding == FundingApplied("", Decimal(0), Decimal("50.12345678"),
                                     datetime.fromtimestamp(1564745798.938, UTC))


def test_an_isolated_funding_fee_names_its_position():
    funding = funding_from_account_event(with_reason("FUNDING_FEE", positions=True))
    assert funding is not None and funding.symbol == DOCUMENTED["a"]["P"][0]["s"]


@pytest.mark.parametrize("reason", ["ORDER", "DEPOSIT", "ADMIN_DEPOSIT", "MARGIN_TRANSFER"])
def test_other_balance_changes_are_not_funding(reason):
    assert funding_from_account_event(with_reason(reason, positions=False)) is None


@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


async def test_a_funding_settlement_arrives_on_the_stream_as_funding(fake, tmp_path):
    async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
        assert await eventually(lambda: exchange.streaming)
        await exchange.place(market(Side.BUY, "0.01"))
        await fake.settle_funding(SYMBOL, Decimal("0.0001"))
        events: list = []

        def arrived() -> bool:
            events.extend(exchange.drain_events())
            return any(isinstance(e, FundingApplied) for e in events)

        assert await eventually(arrived, 3.0), f"events so far: {events}"
    [funding] = [e for e in events if isinstance(e, FundingApplied)]
    assert funding.symbol == SYMBOL and funding.amount < 0      # a long pays a positive rate

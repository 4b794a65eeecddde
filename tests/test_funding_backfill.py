"""Funding the user-data stream missed is read back from Binance's income history
(GET /fapi/v1/income, incomeType FUNDING_FEE; https://developers.binance.com/docs/derivatives/
usds-margined-futures/account/rest-api/Get-Income-History, example in tests/fixtures/binance/
income_history.json) and journaled once: never twice, whichever report comes first.

The codec reads the documented rows and skips bad ones; the fake Binance serves the endpoint
as documented (inclusive startTime / endTime, the 7-day default, limit); the adapter pages
through the gate; `FundingBackfill` reads from the last payment journaled (or the position's
opening), dedupes by tranId and against the stream's reports (which carry no tranId), and
the stream path skips what was read back first.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from binance.exceptions import BinanceAPIException

from tests.fakes.binance_harness import SYMBOL, captured_logs, eventually, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented, payload
from tests.positions import protected
from tests.test_binance_streams import FAST
from trader.alerter import Alerter
from trader.clock import SystemClock
from trader.domain import Side, to_ms
from trader.exchange.base import FundingApplied, FundingIncome
from trader.exchange.binance_codec import funding_from_income
from trader.exchange.gate import RetryPolicy
from trader.funding_backfill import (
    LOOKBACK,
    MATCH_WINDOW,
    POLL_EVERY,
    FundingBackfill,
    already_read_back,
    unrecorded,
    window_start,
)
from trader.guard_book import GuardBook
from trader.guard_state import GuardConfig
from trader.position_journal import PositionJournal
from trader.telemetry import Counters
from trader.trade_store import FundingPayment, TradeStore

INCOME = "GET /fapi/v1/income"
AMOUNT = Decimal("-0.5")            # a long 0.1 at 50000 pays 0.01 % funding
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
FAST_RETRIES = RetryPolicy(attempts=3, initial=0.01, cap=0.05)


def funding_row(**changes: object) -> dict:
    """The documented example's row, as a FUNDING_FEE payment."""
    row = payload("income_history")[1]
    row.update({"incomeType": "FUNDING_FEE", "info": "FUNDING_FEE", "tradeId": ""}, **changes)
    return row


def income(tran_id: str, at: datetime = T0, amount: Decimal = AMOUNT,
           symbol: str = SYMBOL) -> FundingIncome:
    return FundingIncome(tran_id, symbol, amount, "USDT", at)


def from_stream(at: datetime = T0, amount: Decimal = AMOUNT,
                symbol: str = SYMBOL) -> tuple[FundingPayment, str]:
    return FundingPayment(at, symbol, amount), ""


# --- the codec: the documented rows ------------------------------------------------------

def test_the_documented_example_holds_no_funding_and_a_funding_row_reads_whole():
    assert funding_from_income(payload("income_history")) == []   # TRANSFER, COMMISSION
    [read] = funding_from_income([funding_row()])
    assert read == FundingIncome("9689322392", "BTCUSDT", Decimal("-0.01"), "USDT",
                                 datetime.fromtimestamp(1570636800, UTC))


def test_a_tran_id_sent_as_a_string_reads_the_same():
    """The USD-M page sends tranId as a number, the COIN-M page as a string."""
    assert funding_from_income([funding_row(tranId="9689322392")])[0].tran_id == "9689322392"


@pytest.mark.parametrize("bad", [
    "not an object", {"incomeType": "FUNDING_FEE"}, funding_row(tranId=None),
    funding_row(income="abc"), funding_row(income="NaN"), funding_row(time=None),
    funding_row(time="yesterday"), funding_row(asset="")])
def test_a_bad_row_is_logged_and_skipped_and_its_neighbours_are_read(bad):
    good = [funding_row(tranId=1), funding_row(tranId=2)]
    with captured_logs("WARNING") as logs:
        read = funding_from_income([good[0], bad, good[1]])
    assert [r.tran_id for r in read] == ["1", "2"]
    assert any("income row skipped type=FUNDING_FEE" in line for line in logs)


# --- the fake serves the endpoint as documented ----------------------------------------------

@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


async def settle(fake: FakeBinance, times: int = 1) -> None:
    """A long 0.1 (opened once) pays funding `times` times."""
    if fake.sim.position(SYMBOL).quantity == 0:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
    for _ in range(times):
        await fake.settle_funding(SYMBOL, Decimal("0.0001"))


async def test_the_fake_answers_funding_rows_in_the_documented_shape(fake):
    await settle(fake)
    async with started_exchange(fake) as exchange:
        rows = await exchange.client.futures_income_history(incomeType="FUNDING_FEE")
    [row] = rows
    assert set(row) == set(documented("income_history").payload[0])
    assert (row["symbol"], row["incomeType"], row["asset"], row["tradeId"]) == (
        SYMBOL, "FUNDING_FEE", "USDT", "")
    assert Decimal(row["income"]) == AMOUNT and isinstance(row["tranId"], int)


async def test_the_fake_filters_by_inclusive_times_and_answers_the_first_rows_of_a_limit(fake):
    await settle(fake, times=3)
    base = fake.income.rows[0]["time"] - 10_000
    for n, row in enumerate(fake.income.rows):          # a second apart: times are distinct
        row["time"] = base + 1000 * n
    times = [row["time"] for row in fake.income.rows]
    async with started_exchange(fake) as exchange:
        client = exchange.client
        inside = await client.futures_income_history(startTime=times[1], endTime=times[2])
        first = await client.futures_income_history(startTime=times[0], limit=2)
        others = await client.futures_income_history(incomeType="TRANSFER")
        none_after = await client.futures_income_history(startTime=times[2] + 1)
        with pytest.raises(BinanceAPIException) as refused:
            await client.futures_income_history(limit=1001)
    tran_ids = [row["tranId"] for row in fake.income.rows]
    assert [r["tranId"] for r in inside] == tran_ids[1:]
    assert [r["tranId"] for r in first] == tran_ids[:2]
    assert others == [] and none_after == []
    assert refused.value.code == -1130


async def test_without_times_the_fake_answers_the_last_seven_days(fake):
    await settle(fake)
    old = dict(fake.income.rows[0], tranId=1, time=to_ms(fake.now() - timedelta(days=8)))
    fake.income.rows.insert(0, old)
    async with started_exchange(fake) as exchange:
        recent = await exchange.client.futures_income_history()
        both = await exchange.client.futures_income_history(startTime=old["time"])
    assert [r["tranId"] for r in recent] == [fake.income.rows[1]["tranId"]]
    assert len(both) == 2


# --- the adapter ---------------------------------------------------------------------------------

async def test_the_adapter_asks_for_funding_fees_in_the_window_and_reads_them(fake):
    since = fake.now() - timedelta(minutes=1)
    await settle(fake, times=2)
    async with started_exchange(fake) as exchange:
        read = await exchange.funding_income(since, fake.now())
    [request] = fake.requests(INCOME)
    assert request.params["incomeType"] == "FUNDING_FEE" and request.params["limit"] == "1000"
    assert request.params["startTime"] == str(to_ms(since))
    assert [i.tran_id for i in read] == [str(r["tranId"]) for r in fake.income.rows]
    assert all(i.amount == AMOUNT and i.symbol == SYMBOL for i in read)


async def test_a_full_page_is_followed_by_the_next_from_its_latest_row(fake):
    await settle(fake)
    row = fake.income.rows[0]
    fake.income.rows[:] = [dict(row, tranId=row["tranId"] + n, time=row["time"] - 1500 + n)
                           for n in range(1500)]
    async with started_exchange(fake) as exchange:
        read = await exchange.funding_income(fake.now() - timedelta(minutes=1), fake.now())
    assert len(read) == 1500 and len({i.tran_id for i in read}) == 1500
    assert len(fake.requests(INCOME)) == 2


async def test_a_bad_row_in_the_answer_is_skipped_and_a_503_is_retried(fake):
    await settle(fake, times=2)
    fake.inject_fault(INCOME, code=-1001, http_status=503, msg="Internal error.", times=1)
    fake.reshape_answers(INCOME, lambda rows: [{**rows[0], "income": "abc"}, *rows[1:]],
                         times=2)                   # the 503 takes the first one
    async with started_exchange(fake, retry_policy=FAST_RETRIES) as exchange:
        read = await exchange.funding_income(fake.now() - timedelta(minutes=1), fake.now())
    assert [i.tran_id for i in read] == [str(fake.income.rows[1]["tranId"])]
    assert len(fake.requests(INCOME)) == 2


# --- dedupe, both orders (pure) ------------------------------------------------------------------

def test_a_payment_the_stream_reported_is_not_journaled_again_from_the_history():
    journal = [from_stream(T0 + timedelta(milliseconds=3))]
    assert unrecorded([income("7")], journal) == []


def test_a_payment_read_back_before_is_known_by_its_tran_id():
    journal = [(FundingPayment(T0, SYMBOL, AMOUNT), "7")]
    assert unrecorded([income("7")], journal) == []
    assert unrecorded([income("8", at=T0 + timedelta(hours=8))], journal) == [
        income("8", at=T0 + timedelta(hours=8))]


def test_a_cross_margin_stream_report_names_no_symbol_and_still_matches():
    assert unrecorded([income("7")], [from_stream(symbol="")]) == []


def test_one_stream_report_answers_for_one_payment_only():
    """Two symbols paid the same at the same time; the stream (cross margin: no symbol)
    reported one of them."""
    two = [income("7", symbol="BTCUSDT"), income("8", symbol="ETHUSDT")]
    assert unrecorded(two, [from_stream(symbol="")]) == [two[1]]


def test_other_amounts_times_or_symbols_are_other_payments():
    journal = [from_stream()]
    assert unrecorded([income("7", amount=Decimal("-0.4"))], journal)
    assert unrecorded([income("7", at=T0 + MATCH_WINDOW + timedelta(seconds=1))], journal)
    assert unrecorded([income("7", symbol="ETHUSDT")], journal)


def test_the_stream_skips_only_what_the_history_journaled():
    read_back = [(FundingPayment(T0, SYMBOL, AMOUNT), "7")]
    assert already_read_back(FundingPayment(T0 + timedelta(seconds=1), SYMBOL, AMOUNT), read_back)
    assert already_read_back(FundingPayment(T0, "", AMOUNT), read_back)
    assert not already_read_back(FundingPayment(T0, SYMBOL, AMOUNT), [from_stream()])
    assert not already_read_back(FundingPayment(T0, SYMBOL, Decimal("-0.4")), read_back)


def test_the_window_starts_at_the_last_payment_journaled_else_at_the_opening():
    now = T0 + timedelta(hours=20)
    position = protected(opened_at=T0 - timedelta(hours=3))
    journal = [from_stream(T0), from_stream(T0 + timedelta(hours=8), symbol="ETHUSDT")]
    assert window_start(journal, [SYMBOL], [position], now) == T0
    assert window_start([], [SYMBOL], [position], now) == position.opened_at
    assert window_start([], [SYMBOL], [], now) is None
    old = protected(opened_at=now - LOOKBACK - timedelta(days=3))
    assert window_start([], [SYMBOL], [old], now) == now - LOOKBACK


# --- FundingBackfill and the stream path on a real store, against the fake -----------------------

@pytest.fixture
async def store(tmp_path):
    opened = TradeStore.open(tmp_path / "tradebot.db")
    yield opened
    opened.close()


def stream_journal(store: TradeStore) -> PositionJournal:
    clock = SystemClock()
    alerter = Alerter(store)
    return PositionJournal(store, alerter, GuardBook(store, alerter, clock, Counters(),
                                                     GuardConfig()), clock)


def stream_event(fake: FakeBinance, row: int = -1, delay_ms: int = 4) -> FundingApplied:
    """The ACCOUNT_UPDATE of the fake's income row `row`, as the stream decodes it (its
    event time a few ms after the ledger's)."""
    booked = fake.income.rows[row]
    return FundingApplied(SYMBOL, Decimal(0), Decimal(booked["income"]),
                          datetime.fromtimestamp((booked["time"] + delay_ms) / 1000, UTC))


async def test_stream_first_then_history_journals_the_payment_once(fake, store):
    position = protected(opened_at=fake.now() - timedelta(minutes=5))
    await settle(fake)
    stream_journal(store).record_funding([stream_event(fake)], [SYMBOL])
    async with started_exchange(fake) as exchange:
        added = await FundingBackfill(exchange, store, SystemClock(), [SYMBOL]).sync([position])
    assert added == 0 and [p.amount for p in store.funding_payments()] == [AMOUNT]


async def test_history_first_then_stream_journals_the_payment_once(fake, store):
    position = protected(opened_at=fake.now() - timedelta(minutes=5))
    await settle(fake)
    async with started_exchange(fake) as exchange:
        added = await FundingBackfill(exchange, store, SystemClock(), [SYMBOL]).sync([position])
    with captured_logs() as logs:
        stream_journal(store).record_funding([stream_event(fake)], [SYMBOL])
    assert added == 1 and [p.amount for p in store.funding_payments()] == [AMOUNT]
    assert any("already read back" in line for line in logs)
    [(_, tran_id)] = store.funding_journal(fake.now() - timedelta(hours=1))
    assert tran_id == str(fake.income.rows[0]["tranId"])


async def test_the_next_read_starts_at_the_last_payment_journaled(fake, store):
    position = protected(opened_at=fake.now() - timedelta(hours=1))
    await settle(fake)
    last = stream_event(fake)
    stream_journal(store).record_funding([last], [SYMBOL])
    await settle(fake)                                   # missed by the stream
    async with started_exchange(fake) as exchange:
        added = await FundingBackfill(exchange, store, SystemClock(), [SYMBOL]).sync([position])
    assert added == 1 and len(store.funding_payments()) == 2
    [request] = fake.requests(INCOME)
    assert request.params["startTime"] == str(to_ms(last.time - MATCH_WINDOW))


async def test_nothing_is_asked_when_nothing_could_have_paid(fake, store):
    async with started_exchange(fake) as exchange:
        assert await FundingBackfill(exchange, store, SystemClock(), [SYMBOL]).sync([]) == 0
    assert fake.requests(INCOME) == []


async def test_funding_of_other_symbols_and_assets_is_not_journaled(fake, store):
    position = protected(opened_at=fake.now() - timedelta(minutes=5))
    await settle(fake)
    row = fake.income.rows[0]
    fake.income.rows += [dict(row, tranId=1, symbol="XRPUSDT"), dict(row, tranId=2, asset="BNB")]
    async with started_exchange(fake) as exchange:
        added = await FundingBackfill(exchange, store, SystemClock(), [SYMBOL]).sync([position])
    assert added == 1


async def test_a_failed_read_is_tried_again_from_the_same_start(fake, store):
    position = protected(opened_at=fake.now() - timedelta(minutes=5))
    await settle(fake)
    fake.inject_fault(INCOME, code=-1003, http_status=418, msg="banned", retry_after=0.0)
    async with started_exchange(fake, retry_policy=FAST_RETRIES) as exchange:
        backfill = FundingBackfill(exchange, store, SystemClock(), [SYMBOL])
        with captured_logs("WARNING") as logs:
            assert await backfill.sync([position]) == 0
        assert any("funding history not read" in line for line in logs)
        assert backfill.due(fake.now()) and backfill.owed_since is not None
        assert await backfill.sync([position]) == 1
    first, second = fake.requests(INCOME)
    assert first.params["startTime"] == second.params["startTime"]


async def test_with_the_stream_up_the_next_read_waits_for_a_reconnect(fake, store):
    async with started_exchange(fake, streams=True, stream_options=FAST) as exchange:
        assert await eventually(lambda: exchange.streaming)
        backfill = FundingBackfill(exchange, store, SystemClock(), [SYMBOL])
        await backfill.sync([])
        assert not backfill.due(fake.now() + POLL_EVERY)
        fake.freeze_streams()
        assert await eventually(lambda: not exchange.streaming)
        fake.freeze_streams(False)
        assert await eventually(lambda: backfill.due(fake.now()), timeout=5.0)


async def test_while_polling_funding_is_read_every_poll_period(fake, store):
    async with started_exchange(fake) as exchange:          # no stream: polling REST
        backfill = FundingBackfill(exchange, store, SystemClock(), [SYMBOL])
        await backfill.sync([])
        read_at = backfill.last_read
        assert read_at is not None
        assert not backfill.due(read_at + POLL_EVERY / 2) and backfill.due(read_at + POLL_EVERY)

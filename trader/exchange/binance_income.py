"""The income history (GET /fapi/v1/income) read page by page: the funding paid
(trader/funding_backfill.py) and the money moved in or out (trader/transfer_backfill.py)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from loguru import logger

from trader.domain import to_ms
from trader.exchange import binance_codec as codec
from trader.exchange.base import FundingIncome
from trader.exchange.binance_fields import rows_of
from trader.exchange.binance_rest import BinanceRest

INCOME_WEIGHT = 30        # GET /fapi/v1/income, whatever the limit
INCOME_PAGE = 1000        # its maximum limit
INCOME_PAGES = 10         # funding: ~21 rows a symbol a week; money moved: every kind, trades too


async def read_income(rest: BinanceRest, params: dict[str, Any],
                      wanted: Callable[[list[Any]], list[FundingIncome]],
                      since: datetime, until: datetime) -> list[FundingIncome]:
    """GET /fapi/v1/income with `params`, startTime `since` to endTime `until` (both
    included), the `wanted` rows of each page, oldest first; weight 30 a page of up to
    1000 rows, through the gate (its circuit, pacing and retries). A page that is full
    is followed by one from its latest row on, whatever that row's type (Binance
    answers "startTime + limit" when more rows match: the Binance Link page of the same
    endpoint); rows seen twice are counted once (by tran_id). Unreadable rows are
    logged and skipped (binance_codec); raises ExchangeError / UnknownOutcome like
    every read. https://developers.binance.com/docs/derivatives/usds-margined-futures/
    account/rest-api/Get-Income-History"""
    found: dict[str, FundingIncome] = {}
    start = since
    for _ in range(INCOME_PAGES):
        raw = await rest.call(
            "income history", rest.client.futures_income_history, weight=INCOME_WEIGHT,
            startTime=to_ms(start), endTime=to_ms(until), limit=INCOME_PAGE, **params)
        rows = rows_of(raw, codec.INCOME)
        found |= {income.tran_id: income for income in wanted(rows)}
        latest = codec.latest_income_time(rows) if len(rows) >= INCOME_PAGE else None
        if latest is None or latest <= start:    # the last page, or no way past it
            break
        start = latest
    else:
        logger.warning("income history cut at {} pages params={} rows={} until={}",
                       INCOME_PAGES, params, len(found), start.isoformat())
    return sorted(found.values(), key=lambda income: (income.time, income.tran_id))

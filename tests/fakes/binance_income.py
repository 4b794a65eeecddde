"""The fake Binance's income history, GET /fapi/v1/income, as Binance documents it
(https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/
Get-Income-History; the example is tests/fixtures/binance/income_history.json).

The simulator's funding payments are booked as FUNDING_FEE rows when they happen, whether
or not a user-data socket was there to hear their ACCOUNT_UPDATE; money moved by hand
(`FakeBinance.move_money_by_hand`) as TRANSFER rows (or its own type, AUTO_EXCHANGE ...);
no other income type is booked.

    ledger = IncomeLedger(now_ms)
    ledger.book(events)                       # FundingApplied -> a row
    rows = ledger.history({"incomeType": "FUNDING_FEE", "startTime": "1570608000000"})
"""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.fakes.binance_wire import num
from trader.domain import to_ms
from trader.exchange.base import ExchangeError, FundingApplied
from trader.exchange.sim import SimEvent

Json = dict[str, Any]

# The page: "If neither startTime nor endTime is sent, the recent 7-day data will be
# returned", "Income history only contains data for the last three months", limit "Default
# 100; max 1000". Its example's tranId is 9689322392 (a JSON number).
DEFAULT_WINDOW_MS = int(timedelta(days=7).total_seconds() * 1000)
KEPT_MS = int(timedelta(days=90).total_seconds() * 1000)
LIMIT_DEFAULT, LIMIT_MAX = 100, 1000
FIRST_TRAN_ID = 9689322392


class IncomeLedger:
    """The account's income rows, and the endpoint that answers from them."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self.now_ms = now_ms
        self.rows: list[Json] = []

    def book(self, events: list[SimEvent]) -> None:
        """One FUNDING_FEE row per funding payment among `events`, in the example's shape
        ("info" names the type, as the example's TRANSFER and COMMISSION rows do)."""
        for event in events:
            if isinstance(event, FundingApplied):
                self.rows.append({
                    "symbol": event.symbol, "incomeType": "FUNDING_FEE",
                    "income": num(event.amount), "asset": "USDT", "info": "FUNDING_FEE",
                    "time": to_ms(event.time), "tranId": FIRST_TRAN_ID + len(self.rows),
                    "tradeId": ""})

    def book_transfer(self, amount: Decimal, income_type: str, time_ms: int) -> None:
        """A row of money moved in (+) or out (-), in the example's TRANSFER row's shape
        (its symbol "", "info" the type)."""
        self.rows.append({
            "symbol": "", "incomeType": income_type, "income": num(amount), "asset": "USDT",
            "info": income_type, "time": time_ms, "tranId": FIRST_TRAN_ID + len(self.rows),
            "tradeId": ""})

    def history(self, params: dict[str, str]) -> list[Json]:
        """Filtered by symbol and incomeType; startTime and endTime both inclusive (the
        page: "INCLUSIVE"); neither sent: the last 7 days; rows older than three months
        are gone. Oldest first; when more rows match than `limit`, the first `limit` from
        startTime: the Binance Link page of the same endpoint says "response will be return
        as startTime+limit" (https://developers.binance.com/docs/binance_link/link-and-trade/
        futures/Get-Income-History). A limit outside 1..1000 is refused with -1130, Binance's
        "Data sent for parameter '%s' is not valid." (the page names no code for it)."""
        now = self.now_ms()
        limit = int(params.get("limit", LIMIT_DEFAULT))
        if not 1 <= limit <= LIMIT_MAX:
            raise ExchangeError(-1130, "Data sent for parameter 'limit' is not valid.")
        start, end = params.get("startTime"), params.get("endTime")
        oldest = now - (DEFAULT_WINDOW_MS if start is None and end is None else KEPT_MS)
        low = max(oldest, int(start)) if start is not None else oldest
        high = int(end) if end is not None else now
        rows = [row for row in self.rows if low <= row["time"] <= high
                and params.get("symbol", row["symbol"]) == row["symbol"]
                and params.get("incomeType", row["incomeType"]) == row["incomeType"]]
        rows.sort(key=lambda row: (row["time"], row["tranId"]))
        return [dict(row) for row in rows[:limit]]

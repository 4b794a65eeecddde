"""A placement whose request left but whose answer could not be read, whatever python-binance
or aiohttp raised for it, is an unknown outcome: its intent stays SENT and is probed by its
client id until recvWindow + skew has passed (trader/executor.py). Read as "not in flight"
(the executor's NOT_IN_FLIGHT, meant for our own bug before the request leaves), a probe
that does not find it yet settles it as never placed at once, and the leg is sent again
under a new id while the first may still land: two stops, or for an entry two positions.

Binance: "HTTP 5XX return codes are used for internal errors; the issue is on Binance's
side. It is important to NOT treat this as a failure operation; the execution status is
UNKNOWN and could have been a success" (https://developers.binance.com/docs/derivatives/
usds-margined-futures/general-info, "General API Information"). What python-binance 1.0
and aiohttp 3 raise for each kind, found against a raw socket: a timeout (TimeoutError),
a dropped connection (ServerDisconnectedError), a body cut short (ClientPayloadError), an
answer that is not HTTP (ClientResponseError), a 5xx page that is not UTF-8
(UnicodeDecodeError, from aiohttp's `text()`), a 5xx whose JSON body is not an object (an
AttributeError inside python-binance's BinanceAPIException). The last two came out of the
adapter raw and were taken for our own bug: NOT_IN_FLIGHT.

Through python-binance against the fake Binance; each fault lets the order reach the
matching engine (`execute`), so the probe finds it."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.fakes.binance_harness import SYMBOL, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.positions import make
from trader.clock import SystemClock
from trader.domain import IntentStatus, OrderRole, Side
from trader.exchange.errors import Outcome
from trader.executor import NOT_IN_FLIGHT, Executor
from trader.intents import exit_intent
from trader.order_tracker import OrderTracker
from trader.position import PositionState
from trader.trade_store import TradeStore

ALGO_ORDER = "POST /fapi/v1/algoOrder"
QUANTITY, STOP = Decimal("0.010"), Decimal("49000")
TIMEOUT = 0.3


def http(status: str, content_type: str, body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {size}\r\n\r\n").encode() + body


LOST_ANSWERS = {
    "timeout": {"delay": 2 * TIMEOUT},
    "dropped connection": {"drop_connection": True},
    "body cut short": {"raw_answer": http("200 OK", "application/json", b'{"algoId": 21',
                                          length=400)},
    "not an HTTP answer": {"raw_answer": b"SSH-2.0-OpenSSH_9.6\r\n\r\n"},
    "headers, then nothing": {"raw_answer": b"HTTP/1.1 200 OK\r\nContent-Type: "
                                            b"application/json\r\n"},
    "gateway page not in UTF-8": {"raw_answer": http(
        "502 Bad Gateway", "text/html", "<h1>Passerelle défaillante</h1>".encode("latin-1"))},
    "5xx JSON body not an object": {"raw_answer": http(
        "503 Service Unavailable", "application/json", b"null")},
}


@pytest.mark.parametrize("fault", list(LOST_ANSWERS), ids=list(LOST_ANSWERS))
async def test_a_stop_whose_answer_is_lost_mid_flight_is_unknown_and_found_by_its_probe(
        tmp_path, fault):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, QUANTITY)
        async with started_exchange(fake, request_timeout=TIMEOUT) as exchange:
            store, clock = TradeStore.open(tmp_path / "t.db"), SystemClock()
            try:
                executor = Executor(exchange, store, clock, OrderTracker())
                position = make(SYMBOL, Side.BUY, PositionState.ATTACHING, QUANTITY, "50000",
                                STOP, "51000", live_legs=False)
                intent = exit_intent(position, OrderRole.STOP_LOSS, "tb-BTCUSDT-k1-sl1",
                                     QUANTITY, datetime.now(UTC), trigger_price=STOP)
                fake.inject_fault(ALGO_ORDER, **LOST_ANSWERS[fault])

                result = await executor.submit(intent)

                assert result.outcome is Outcome.UNKNOWN, result
                saved = store.intent(intent.client_id)
                assert saved is not None and saved.status is IntentStatus.SENT
                assert not saved.detail.startswith(NOT_IN_FLIGHT), saved.detail
                assert intent.client_id in fake.accepted_orders, "the fault kept it out"
                assert (await executor.probe(saved)).status is IntentStatus.ACKED
            finally:
                store.close()

"""The fake Binance's control API (tests/fakes/binance_control.py) as a person playing by hand
uses it with curl: a request the simulated exchange refuses (a position opened by hand on a
symbol without a price yet) answers 400 with the exchange's code and message, as a wrong
argument does, not "500 Internal Server Error / Server got itself in trouble" with the
traceback only in the server's terminal."""

from decimal import Decimal

import aiohttp

from tests.fakes.binance_server import FakeBinance


async def test_a_refused_control_answers_400_with_the_exchange_error():
    async with FakeBinance(prices={"BTCUSDT": Decimal("50000")}) as fake, \
            aiohttp.ClientSession() as http:
        async with http.post(f"{fake.url}/_control/open_position_by_hand",
                             json={"symbol": "SOLUSDT", "side": "BUY", "qty": "1"}) as answer:
            assert answer.status == 400
            body = await answer.json()
        assert body["ok"] is False and "-2010" in body["error"], body
        assert "No market price for SOLUSDT" in body["error"], body

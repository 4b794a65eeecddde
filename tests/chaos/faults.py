"""The faults the chaos test and the soak benchmark inject into the fake Binance, by name.

    description = await inject(fake, "read-429", rng, "BTCUSDT", retry_after=(1, 2))

Each kind is something Binance or its operator does to a running agent: order errors,
bursts of 503 and 429 / 418 with Retry-After on reads (or any path), malformed answers and
user-data events, a stop cancelled or a position closed by hand in the Binance app, a
liquidation, a tick-size change, dropped streams. `inject` returns what it did, in words.

On a server without the Algo Order API (`FakeBinance(algo_api=False)`: its paths answer
404, stops and targets go to the classic /fapi/v1/order) the faults meant for algo paths
aim at the classic ones instead: the 503 of an "unknown-stop" meets the next classic
STOP_MARKET, reads and any-path faults pick among the paths that server has, and the
malformed user-data events leave out ALGO_UPDATE (which such a server never sends).
"""

import random
from dataclasses import replace
from decimal import Decimal

from tests.fakes.binance_faults import MALFORMED_READS, malformed_user_events
from tests.fakes.binance_server import FakeBinance
from trader.domain import CLIENT_ID_PREFIX, OrderType, to_ms
from trader.exchange.sim import rules_for

READS = ("GET /fapi/v3/positionRisk", "GET /fapi/v1/openOrders",
         "GET /fapi/v1/openAlgoOrders", "GET /fapi/v1/ticker/bookTicker", "GET /fapi/v2/account")
ANY_PATH = (*READS, "POST /fapi/v1/order", "POST /fapi/v1/algoOrder", "DELETE /fapi/v1/order",
            "DELETE /fapi/v1/algoOrder", "GET /fapi/v1/order", "GET /fapi/v1/algoOrder",
            "GET /fapi/v1/userTrades", "GET /fapi/v1/exchangeInfo", "PUT /fapi/v1/listenKey")
ALGO_PATHS = ("/fapi/v1/algoOrder", "/fapi/v1/openAlgoOrders", "/fapi/v1/algoOpenOrders")
KINDS = ("margin", "unknown-stop", "busy-order", "read-error", "read-503-burst", "read-429",
         "read-418", "any-429", "malformed-answer", "malformed-event", "cancel-stop",
         "close-by-hand", "liquidation", "tick-size", "drop-streams")
OURS = CLIENT_ID_PREFIX + "-"
IDLE = "(nothing to do)"   # a kind that needs an open position or a live stop found none
NEEDS_A_STOP = ("cancel-stop", "close-by-hand", "liquidation", "malformed-event")
ON_REQUESTS = ("read-error", "read-503-burst", "read-429", "read-418", "any-429")
COARSE_TICK = Decimal("0.5")     # a tick-size change: every 0.1-tick price that is not a
                                 # multiple of 0.5 is rejected (-4014) until rules are re-read


def served(fake: FakeBinance, endpoints: tuple[str, ...]) -> tuple[str, ...]:
    """The `endpoints` ("METHOD /path") the fake serves: without the Algo API, not its."""
    if fake.endpoints.algo_api:
        return endpoints
    return tuple(e for e in endpoints if e.partition(" ")[2] not in ALGO_PATHS)


def our_stops(fake: FakeBinance, symbol: str) -> list[str]:
    return [o.client_id for o in fake.sim.open_orders(symbol)
            if o.type is OrderType.STOP_MARKET and o.client_id.startswith(OURS)]


async def inject(fake: FakeBinance, kind: str, rng: random.Random, symbol: str, *,
                 retry_after: tuple[int, int] = (1, 2)) -> str:
    """Inject one fault of `kind` (one of KINDS); `retry_after` bounds the seconds announced
    with 429 / 418. Returns a description, ending in IDLE when the kind needs an open
    position or a live stop and there is none."""
    seconds = rng.randint(*retry_after)
    if kind == "margin":
        fake.inject_fault("POST /fapi/v1/order", code=-2019, times=1)
    elif kind == "unknown-stop":       # the stop is placed, the client sees a 503
        if fake.endpoints.algo_api:
            fake.inject_fault("POST /fapi/v1/algoOrder", http_status=503, times=1, execute=True)
        else:
            fake.inject_fault("POST /fapi/v1/order", http_status=503, times=1, execute=True,
                              only={"type": "STOP_MARKET"})
    elif kind == "busy-order":
        fake.inject_fault("POST /fapi/v1/order", http_status=503, times=1,
                          execute=rng.random() < 0.5)
    elif kind == "read-error":
        fake.inject_fault("GET /fapi/v1/openOrders", code=-1001, times=2)
    elif kind == "read-503-burst":
        endpoint, times = rng.choice(served(fake, READS)), rng.randint(3, 6)
        fake.inject_fault(endpoint, http_status=503, times=times)
        return f"{kind} {times}x {endpoint}"
    elif kind in ("read-429", "read-418", "any-429"):
        endpoint = rng.choice(served(fake, ANY_PATH if kind == "any-429" else READS))
        status = 418 if kind == "read-418" else 429
        fake.inject_fault(endpoint, code=-1003, http_status=status, retry_after=seconds)
        return f"{kind} {endpoint} Retry-After {seconds}"
    elif kind == "malformed-answer":
        endpoint = rng.choice(sorted(served(fake, tuple(MALFORMED_READS))))
        fake.reshape_answers(endpoint, MALFORMED_READS[endpoint])
        return f"{kind} {endpoint}"
    elif kind == "malformed-event":
        stops = our_stops(fake, symbol)
        texts = malformed_user_events(symbol, stops[0] if stops else f"{OURS}x",
                                      to_ms(fake.now()))
        if not fake.endpoints.algo_api:      # a server without the Algo API sends no ALGO_UPDATE
            texts = [text for text in texts if '"ALGO_UPDATE"' not in text]
        await fake.hub.send_user_text(texts, fake.endpoints.listen_key)
    else:
        return await _by_hand(fake, kind, rng, symbol)
    return kind


async def _by_hand(fake: FakeBinance, kind: str, rng: random.Random, symbol: str) -> str:
    """Faults made on the exchange itself: the operator's Binance app, Binance's own engine."""
    open_position = fake.sim.position(symbol).quantity != 0
    if kind == "cancel-stop":
        stops = our_stops(fake, symbol)
        if not stops:
            return f"{kind} {IDLE}"
        await fake.cancel_order_by_hand(symbol, stops[0])
        return f"{kind} {stops[0]}"
    if kind == "close-by-hand" and open_position:
        await fake.close_position_by_hand(symbol)
    elif kind == "liquidation" and open_position:
        await fake.close_position_by_exchange(symbol, f"autoclose-{to_ms(fake.now())}")
    elif kind == "tick-size":
        fake.sim.set_rules(replace(fake.sim.rules_for(symbol), tick_size=COARSE_TICK))
    elif kind == "drop-streams":
        await fake.drop_streams(refuse_for=rng.uniform(0.0, 3.0))
    elif kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    else:
        return f"{kind} {IDLE}"
    return kind


def restore_rules(fake: FakeBinance, symbol: str) -> None:
    """Undo a tick-size change (the simulator's default filters for `symbol`)."""
    fake.sim.set_rules(rules_for(symbol))

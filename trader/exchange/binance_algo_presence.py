"""Whether the server we talk to has Binance's Algo Order API, learnt from its answers.

Since 2025-12-09 Binance USD-M takes conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET)
only on the Algo Order API (/fapi/v1/algoOrder, keyed by clientAlgoId); the classic POST
/fapi/v1/order answers them -4120 STOP_ORDER_SWITCH_ALGO (change log, 2025-11-06 entry:
https://developers.binance.com/docs/derivatives/change-log). A server without the Algo API
(a testnet, a proxy, a fake written from the pre-migration docs) answers HTTP 404 on the
algo paths; with the Algo API assumed, the agent would never get past its start-up read of
GET /fapi/v1/openAlgoOrders.

So `BinanceOrders` starts with the Algo API assumed present and flips on evidence only:

    a 404 (HTTP status) on an algo endpoint -> absent: conditional orders go to the
        classic /fapi/v1/order (STOP_MARKET / TAKE_PROFIT_MARKET with stopPrice), open
        orders come from the classic list only, protective ids are asked there;
    -4120 from the classic endpoint         -> present again (and the place is sent once
        more on the Algo API);
    an answer of an algo endpoint           -> present again (a query by client id still
        asks the Algo API after the classic one: a passing 404 must not hide our orders).

A 404 on any other endpoint says nothing about the Algo API (the caller only reports the
errors of algo endpoints here). Each flip logs one WARNING naming the endpoint.
"""

from typing import Final

from loguru import logger

from trader.exchange.base import ExchangeError

NOT_FOUND: Final = 404
STOP_ORDER_SWITCH_ALGO: Final = -4120


class AlgoApiPresence:
    """What the last answers said about the Algo Order API; present until a 404 says not.

        presence = AlgoApiPresence()
        if presence.missing_after(error, "GET /fapi/v1/openAlgoOrders"): ...classic only...
    """

    def __init__(self) -> None:
        self.available = True

    def missing_after(self, error: ExchangeError, endpoint: str) -> bool:
        """True when `error`, the answer of the algo `endpoint`, is HTTP 404: from now on
        the Algo API counts as absent. False for any other error (raise it)."""
        if error.http_status != NOT_FOUND:
            return False
        if self.available:
            logger.warning("binance has no Algo Order API here: {} answered HTTP 404 "
                           "code={} msg={}; conditional orders go to /fapi/v1/order as "
                           "STOP_MARKET / TAKE_PROFIT_MARKET from now on", endpoint, error.code,
                           error.message)
        self.available = False
        return True

    def back_after(self, error: ExchangeError, endpoint: str) -> bool:
        """True when `error`, the classic `endpoint`'s answer to a conditional order, is
        -4120 STOP_ORDER_SWITCH_ALGO: the Algo API counts as present again."""
        if error.code != STOP_ORDER_SWITCH_ALGO:
            return False
        logger.warning("binance wants the Algo Order API again: {} answered -4120 msg={}; "
                       "conditional orders go to /fapi/v1/algoOrder", endpoint, error.message)
        self.available = True
        return True

    def answered(self, endpoint: str) -> None:
        """The algo `endpoint` answered (not a 404): the Algo API is here after all."""
        if not self.available:
            logger.warning("binance has the Algo Order API after all: {} answered; "
                           "conditional orders go to /fapi/v1/algoOrder again", endpoint)
        self.available = True

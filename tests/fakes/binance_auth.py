"""How the fake Binance server admits a request before answering it: the API key and the
HMAC-SHA256 signature of SIGNED endpoints with their timestamp inside recvWindow, then the
request weight and order counts of Binance's usage windows.

Binance's rules: "SIGNED (TRADE and USER_DATA) Endpoint security" and "Timing security"
(https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info), the
limits' headers X-MBX-USED-WEIGHT-1M / X-MBX-ORDER-COUNT-10S / -1M and their 429s (same
page, "LIMITS"); codes and messages from the Error Codes page.
"""

import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import parse_qsl

from tests.fakes.binance_faults import Usage
from trader.exchange.base import ExchangeError

PUBLIC, KEYED, SIGNED = "public", "keyed", "signed"
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder")


def parse_form(text: str) -> list[tuple[str, str]]:
    return parse_qsl(text, keep_blank_values=True)


class Admission:
    """Checks a request's key and signature (`authenticate`) and counts its usage
    (`count_usage`); each raises ExchangeError with Binance's code, message and status."""

    def __init__(self, api_key: str, api_secret: str, usage: Usage,
                 now_ms: Callable[[], int]) -> None:
        self.api_key, self.api_secret, self.usage, self.now_ms = api_key, api_secret, usage, now_ms

    def authenticate(self, api_key: str | None, security: str, query: str, body: str) -> None:
        """`api_key`: the X-MBX-APIKEY header; `query` and `body` as received."""
        if security == PUBLIC:
            return
        if api_key != self.api_key:
            raise ExchangeError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if security == SIGNED:
            self._verify_signature(query, body)

    def _verify_signature(self, query: str, body: str) -> None:
        total = query + body
        head, separator, signature = total.rpartition("&signature=")
        if not separator and total.startswith("signature="):
            head, signature = "", total.removeprefix("signature=")
        expected = hmac.new(self.api_secret.encode(), head.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(expected, signature.lower()):
            raise ExchangeError(-1022, "Signature for this request is not valid.", 401)
        params = dict(parse_form(head))
        if "timestamp" not in params:
            raise ExchangeError(-1102, "Mandatory parameter 'timestamp' was not sent, was "
                                       "empty/null, or malformed.")
        stamp, window = int(params["timestamp"]), int(params.get("recvWindow", "5000"))
        server = self.now_ms()
        if not (stamp < server + 1000 and server - stamp <= window):
            raise ExchangeError(-1021, "Timestamp for this request is outside of the "
                                       "recvWindow.")

    def count_usage(self, path: str, method: str, weight: int) -> dict[str, str]:
        """The usage headers of this answer; -1003 / -1015 (HTTP 429 with Retry-After to the
        window's end) past a limit."""
        now_ms = self.now_ms()
        used = self.usage.add("weight", 60, weight, now_ms)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if used > self.usage.weight_per_minute:
            # -1003 TOO_MANY_REQUESTS, worded as on Binance's Error Codes page
            raise ExchangeError(-1003, f"Too many requests; current limit is "
                                       f"{self.usage.weight_per_minute} requests per minute. "
                                       "Please use the websocket for live updates to avoid "
                                       "polling the API.", 429,
                                retry_after=60 - (now_ms // 1000) % 60)
        if method == "POST" and path in ORDER_PATHS:
            count_10s = self.usage.add("orders", 10, 1, now_ms)
            count_1m = self.usage.add("orders", 60, 1, now_ms)
            headers |= {"X-MBX-ORDER-COUNT-10S": str(count_10s),
                        "X-MBX-ORDER-COUNT-1M": str(count_1m)}
            if count_10s > self.usage.orders_per_10s or count_1m > self.usage.orders_per_minute:
                raise ExchangeError(-1015, "Too many new orders.", 429,
                                    retry_after=10 - (now_ms // 1000) % 10)
        return headers

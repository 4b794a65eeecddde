"""FakeBinance's fault controls: the next requests to an endpoint fail as Binance's do (an
error code, an HTTP status, a documented error answer, a delay, a dropped connection, a body
cut short), or their answers are reshaped. Mixed into `FakeBinance` (binance_server.py),
whose request pipeline applies them (`_apply_fault`, `_reshaped`)."""

from collections.abc import Callable
from typing import Any

from tests.fakes.binance_faults import Fault, FaultBook, documented_error

Handler = Callable[[dict[str, str]], Any]


class FaultControls:
    fault_book: FaultBook
    _reshapes: dict[tuple[str, str], list[Callable[[Any], Any]]]
    _routes: dict[tuple[str, str], Any]      # the REST routes served (binance_server.py)

    def inject_fault(self, path_or_endpoint: str, code: int | None = None,
                     http_status: int | None = None, *, times: int = 1,
                     retry_after: float | None = None, delay: float | None = None,
                     drop_connection: bool = False, msg: str | None = None,
                     execute: bool | None = None, only: dict[str, str] | None = None,
                     raw_answer: bytes | None = None) -> None:
        """Make the next `times` requests to an endpoint ("POST /fapi/v1/order" or just
        the path) fail. `execute` (default: only for delays, drops and raw answers)
        processes the request before failing, so the order exists although the client saw
        an error. `only`: just the requests with these parameters (e.g. {"type":
        "STOP_MARKET"}). `raw_answer`: these bytes go on the socket as the answer, then the
        connection closes (a body cut short, a gateway's error page)."""
        self.fault_book.inject(path_or_endpoint, code, http_status, times=times,
                               retry_after=retry_after, delay=delay,
                               drop_connection=drop_connection, msg=msg, execute=execute,
                               only=only, raw_answer=raw_answer)

    def answer_documented(self, path_or_endpoint: str, name: str, *, times: int = 1,
                          execute: bool = False, only: dict[str, str] | None = None,
                          exempt_reducing: bool = False) -> None:
        """Answer the next `times` requests with the documented error answer `name`
        (tests/fixtures/binance/error_*.json, each with its page): its HTTP status and its
        body as the page shows it. `execute`: the request is processed first, so an order
        exists although the answer says otherwise (the "execution status unknown" answers:
        -1006, -1007, 408, 503 "Unknown error"). `exempt_reducing`: orders that reduce
        exposure pass (-1008: "Reduce-only/close-position orders are exempt", General Info,
        https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info)."""
        status, body = documented_error(name)
        self.fault_book.inject(path_or_endpoint, None, status, times=times, retry_after=None,
                               delay=None, drop_connection=False, msg=None, execute=execute,
                               only=only, body=body, exempt_reducing=exempt_reducing)

    def outage(self, name: str = "error_503_unknown", *, times: int = 100_000,
               sparing: tuple[str, ...] = ()) -> None:
        """Every REST route but those `sparing` ("METHOD /path") answers the documented
        error answer `name` (default HTTP 503 "Unknown error, please check your request or
        try again later.", which General Info's "HTTP 503 Status: Message Variants &
        Handling" calls execution status UNKNOWN: https://developers.binance.com/docs/
        derivatives/usds-margined-futures/general-info) for its next `times` requests,
        nothing executed, until `clear_faults`: Binance's REST API failing as a whole while
        the streams stay up."""
        for method, path in self._routes:
            if f"{method} {path}" not in sparing:
                self.answer_documented(f"{method} {path}", name, times=times)

    def throttle_new_orders(self, times: int = 1) -> None:
        """Binance's system-level protection, as General Info's HTTP 503 variant C tells
        it: the next `times` new orders on POST /fapi/v1/order are refused with 503 -1008
        ("100% failure"), orders that reduce exposure and cancels are not."""
        self.answer_documented("POST /fapi/v1/order", "error_request_throttled", times=times,
                               exempt_reducing=True)

    def reshape_answers(self, endpoint: str, transform: Callable[[Any], Any],
                        times: int = 1) -> None:
        """Pass the next `times` answers of "METHOD /path" through `transform`: a test's way
        to answer like a Binance that sends fields or values this fake never does."""
        method, _, path = endpoint.partition(" ")
        self._reshapes.setdefault((method, path), []).extend([transform] * times)

    def _reshaped(self, method: str, path: str, handler: Handler) -> Handler:
        pending = self._reshapes.get((method, path))
        if not pending:
            return handler
        transform = pending.pop(0)
        return lambda params: transform(handler(params))

    def clear_faults(self) -> None:
        """Forget the injected faults and the answers still to be reshaped."""
        self.fault_book.faults.clear()
        self._reshapes.clear()

    @property
    def faults(self) -> list[Fault]:
        return self.fault_book.faults

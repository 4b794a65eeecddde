"""One table from Binance error code / HTTP status to an outcome and a retry policy.

Callers branch on `Outcome`, never on raw codes. Each code carries Binance's own meaning
(USD-M futures error codes, https://developers.binance.com/docs/derivatives/
usds-margined-futures/error-code) beside what we do about it and why.

An answer to a request that could create or cancel an order is one of three kinds:
- execution unknown: the order may exist (-1000, -1006, -1007, -1010, HTTP 408, a 5xx
  Binance does not document as a failure). A send is probed by its client id, never sent again blind
  (`Outcome.UNKNOWN`; `execution_unknown` decides, binance_codec.py raises UnknownOutcome).
- a failure: Binance executed nothing. Final for the order (a refusal: -2019, -4164, ...),
  or retryable (`Retry.BACKOFF`: -1001, -1008, 503 "Service Unavailable."), which the gate
  retries for reads and cancels; a stop or a close is placed again by its caller's own
  retry (trader/placement_retry.py, trader/market_exit.py `close_retry_pause`); an
  entry is not (its moment passed: the reply says nothing is open, /long sends a new one).
- rate limited / banned (429, 418, -1003, -1015): the circuit opens.
The 5xx kinds are told by their message (USD-M General Info, "HTTP Return Codes" and "HTTP
503 Status: Message Variants & Handling", https://developers.binance.com/docs/derivatives/
usds-margined-futures/general-info).
"""

from dataclasses import dataclass
from enum import StrEnum

from trader.domain import OrderRole
from trader.exchange.base import ExchangeError, UnknownOutcome


class Outcome(StrEnum):
    DONE = "done"              # accepted, or the code means success for this role
    SKIPPED = "skipped"        # not worth retrying; the reason is logged
    NOOP = "noop"              # already in the wanted state (-2011 on cancel)
    THROTTLED = "throttled"    # skipped, and the symbol is throttled for a while
    UNKNOWN = "unknown"        # sent, result unknown: probe by client id, never re-send blind
    FAILED = "failed"          # fatal for this action: alert, keep the engine alive
    CIRCUIT_OPEN = "circuit"   # rate limited / banned: stop calling, honour Retry-After


class Retry(StrEnum):
    NONE = "none"
    ONCE_AFTER_PAUSE = "once"      # one retry after 300-400 ms
    BACKOFF = "backoff"            # capped exponential backoff
    RESYNC_TIME = "resync"         # resync the clock offset, then retry (the request gate)
    REDUCE_ONLY = "reduce_only"    # resend as a plain reduce-only order
    REFRESH_RULES = "rules"        # a filter rejection: re-read the symbol's rules, resend once


@dataclass(frozen=True, slots=True)
class Policy:
    code: int
    meaning: str      # Binance's own wording
    outcome: Outcome  # after retries are exhausted
    retry: Retry = Retry.NONE
    verify: bool = False  # success by code: confirm on the exchange that the order exists
    credentials: bool = False  # the key/secret/IP is refused: a configuration error at start
    listen_key_gone: bool = False  # the user-data stream's key expired: create a new one
    post_only_rejected: bool = False  # a post-only (GTX) order would have taken liquidity
    # a closePosition stop / take-profit in this direction rests already: what the refused
    # one would close is covered (trader/stop_backup.py)
    closing_order_exists: bool = False
    # refused for the book of this moment, which moves: the same order may pass later
    book_moves: bool = False


# Binance answers -2021 when the mark price sits on the trigger; 350 ms lets it move. Fixed,
# not random: one order retried once needs no spread, and a backtest (whose clock this pause
# advances) must give the same trades every run.
WOULD_TRIGGER_PAUSE_SECONDS = 0.35

PROTECTIVE_SUCCESS = (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1)

TABLE: dict[int, Policy] = {p.code: p for p in [
    Policy(-1000, "UNKNOWN: an unknown error occurred while processing the request",
           Outcome.UNKNOWN, Retry.BACKOFF),
    # General Info, HTTP 503 variant 3: "Internal error; unable to process your request.
    # Please try again." (-1001's message) "means this is a failure API operation and you
    # can resend your request if you need": nothing executed.
    Policy(-1001, "DISCONNECTED: internal error; unable to process your request",
           Outcome.SKIPPED, Retry.BACKOFF),
    Policy(-1003, "TOO_MANY_REQUESTS: too many requests; use the websocket for live updates",
           Outcome.CIRCUIT_OPEN),
    Policy(-1015, "TOO_MANY_ORDERS: too many new orders", Outcome.CIRCUIT_OPEN),
    # Unknown for a send (probed by client id, never resent); a read or a cancel is
    # simply asked again, as for -1000.
    Policy(-1006, "UNEXPECTED_RESP: an unexpected response was received from the message "
           "bus; execution status unknown", Outcome.UNKNOWN, Retry.BACKOFF),
    # In the page's "General Server or Network issues" with no meaning beyond its name:
    # whether a send executed is not said, so it is probed by client id like -1006.
    Policy(-1010, "ERROR_MSG_RECEIVED: an error message was received (Binance says no more)",
           Outcome.UNKNOWN, Retry.BACKOFF),
    Policy(-1007, "TIMEOUT: timeout waiting for response from backend server; send status unknown",
           Outcome.UNKNOWN, Retry.BACKOFF),
    # General Info, HTTP 503 variant C: "System overload; 100% failure", "Retry with backoff"
    # (also the older "Server is currently overloaded with other requests"). Orders that
    # reduce exposure (reduceOnly, closePosition) and cancels are exempt: one that meets it
    # anyway failed as well, and its caller places it again.
    Policy(-1008, "REQUEST_THROTTLED: request throttled by system-level protection; "
           "nothing executed", Outcome.SKIPPED, Retry.BACKOFF),
    Policy(-1021, "INVALID_TIMESTAMP: timestamp for this request is outside of the recvWindow",
           Outcome.FAILED, Retry.RESYNC_TIME),
    Policy(-1022, "INVALID_SIGNATURE: signature for this request is not valid", Outcome.FAILED,
           credentials=True),
    # The key may not do this (a key without the Futures permission, say): the operator's to
    # fix, as -2014 / -2015 are; a refusal, nothing executed.
    Policy(-1002, "UNAUTHORIZED: you are not authorized to execute this request",
           Outcome.FAILED, credentials=True),
    Policy(-1106, "PARAM_NOT_REQUIRED: a parameter was sent when not required "
           "(e.g. reduceOnly together with closePosition)", Outcome.FAILED, Retry.REDUCE_ONLY),
    Policy(-1013, "INVALID_MESSAGE: a filter failure (price, quantity or notional off the "
           "symbol's filters)", Outcome.FAILED, Retry.REFRESH_RULES),
    Policy(-1111, "BAD_PRECISION: precision is over the maximum defined for this asset",
           Outcome.FAILED, Retry.REFRESH_RULES),
    Policy(-2010, "NEW_ORDER_REJECTED: the order was rejected by the matching engine",
           Outcome.THROTTLED),
    Policy(-2011, "CANCEL_REJECTED: unknown order sent (already filled, cancelled or never placed)",
           Outcome.NOOP),
    Policy(-2013, "NO_SUCH_ORDER: order does not exist", Outcome.NOOP),
    Policy(-2014, "BAD_API_KEY_FMT: API-key format invalid", Outcome.FAILED, credentials=True),
    Policy(-2015, "REJECTED_MBX_KEY: invalid API key, IP, or permissions for action",
           Outcome.FAILED, credentials=True),
    Policy(-2018, "BALANCE_NOT_SUFFICIENT: balance is insufficient", Outcome.SKIPPED),
    Policy(-2019, "MARGIN_NOT_SUFFICIENT: margin is insufficient", Outcome.SKIPPED),
    Policy(-2021, "ORDER_WOULD_IMMEDIATELY_TRIGGER: order would immediately trigger",
           Outcome.FAILED, Retry.ONCE_AFTER_PAUSE),
    Policy(-2022, "REDUCE_ONLY_REJECT: ReduceOnly order is rejected (no position to reduce)",
           Outcome.SKIPPED),
    # 40xx filter failures: the symbol's rules may have changed since we loaded them; one
    # that comes back after the re-read is the order's own (`Verdict.filter_refused`).
    *[Policy(code, meaning, Outcome.FAILED, Retry.REFRESH_RULES) for code, meaning in (
        (-4002, "PRICE_GREATER_THAN_MAX_PRICE: price greater than max price"),
        (-4003, "QTY_LESS_THAN_ZERO: quantity less than or equal to zero"),
        (-4004, "QTY_LESS_THAN_MIN_QTY: quantity less than min quantity"),
        (-4005, "QTY_GREATER_THAN_MAX_QTY: quantity greater than max quantity"),
        (-4006, "STOP_PRICE_LESS_THAN_ZERO: stop price less than zero"),
        (-4007, "STOP_PRICE_GREATER_THAN_MAX_PRICE: stop price greater than max price"),
        (-4013, "PRICE_LESS_THAN_MIN_PRICE: price less than min price"),
        (-4014, "PRICE_NOT_INCREASED_BY_TICK_SIZE: price not increased by tick size"),
        (-4016, "PRICE_HIGHTER_THAN_MULTIPLIER_UP: price is higher than mark price "
                "multiplier cap"),
        (-4023, "QTY_NOT_INCREASED_BY_STEP_SIZE: quantity not increased by step size"),
        (-4024, "PRICE_LOWER_THAN_MULTIPLIER_DOWN: price is lower than mark price "
                "multiplier floor"),
        (-4029, "INVALID_TICK_SIZE_PRECISION: tick size precision is invalid"),
        (-4030, "INVALID_STEP_SIZE_PRECISION: step size precision is invalid"),
    )],
    # A MARKET order refused for the book of this moment, not for anything in the order:
    # the best counterparty price is outside the PERCENT_PRICE band around the mark price
    # (a thin book in a fast move). The same order may pass a moment later, as the book
    # refills or the mark moves (Binance updates it every 1-3 s): a market close is sent
    # again on the backoff of a refusal for now, for as long as it lasts, never given up
    # for it (`Verdict.refused_for_now`, trader/close_retry.py); the band bounds the price
    # it fills at. An entry is not sent again (the next signal decides).
    Policy(-4131, "MARKET_ORDER_REJECT: the counterparty's best price does not meet the "
           "PERCENT_PRICE filter limit", Outcome.FAILED, book_moves=True),
    # A cancel refused because the stop is being triggered: it did nothing, and the stop
    # is on its way to execute; asked again with backoff, then read back by its id like a
    # cancel whose outcome is unknown (trader/executor.py `cancel_and_verify`).
    Policy(-4117, "STOP_ORDER_TRIGGERING: stop order is triggering", Outcome.SKIPPED,
           Retry.BACKOFF),
    Policy(-4120, "STOP_ORDER_SWITCH_ALGO: order type not supported on this endpoint; "
           "use the Algo Order API", Outcome.FAILED),
    # Checked among open orders only (trader/exchange/sim.py): for a stop or take-profit
    # the order holding the id is ours, sent before under that id (its answer lost, or
    # never recorded before a restart): it protects, so success, read back by the id and
    # taken for what it covers (`Order.closes`: a closePosition one, the whole position);
    # a holder of another side or type is not the order sent: refused (trader/executor.py).
    # An entry stays refused.
    Policy(-4116, "DUPLICATED_CLIENT_ORDER_ID: clientOrderId is duplicated", Outcome.FAILED,
           verify=True),
    Policy(-4130, "An open stop or take profit order with GTE and closePosition in the "
           "direction is existing", Outcome.SKIPPED, verify=True, closing_order_exists=True),
    Policy(-4164, "MIN_NOTIONAL: order's notional must be no smaller than the minimum",
           Outcome.SKIPPED, verify=True),
    # The symbol's exchangeInfo status takes no such order (the page names no status for
    # each): -4140 an order that would open on a symbol not TRADING, -4141 any order once
    # it is CLOSE, -1122 the page's general word. No filter: re-reading the rules cures
    # nothing, the same order is refused again; the next rules read (housekeeping) learns
    # the status, and only TRADING takes entries (trader/symbol_rules.py).
    Policy(-1122, "INVALID_SYMBOL_STATUS: invalid symbol status", Outcome.FAILED),
    Policy(-4140, "INVALID_OPENING_POSITION_STATUS: invalid symbol status for opening "
           "position", Outcome.FAILED),
    Policy(-4141, "SYMBOL_ALREADY_CLOSED: symbol is closed", Outcome.FAILED),
    Policy(-4046, "NO_NEED_TO_CHANGE_MARGIN_TYPE: no need to change margin type", Outcome.NOOP),
    Policy(-4048, "MARGIN_TYPE_CANNOT_BE_CHANGED: margin type cannot be changed if there "
           "exists position", Outcome.SKIPPED),
    Policy(-1125, "INVALID_LISTEN_KEY: this listenKey does not exist", Outcome.FAILED,
           listen_key_gone=True),
    Policy(-4059, "NO_NEED_TO_CHANGE_POSITION_SIDE: no need to change position side",
           Outcome.NOOP),
    # A maker-first entry's quote arrived after the touch moved: not an error, the quoter
    # re-quotes at the new touch (trader/maker_entry.py). Error-code page, 50xx section;
    # also nautilus_trader's BINANCE_GTX_ORDER_REJECT_CODE ("returned when a GTX order
    # would immediately match as taker": https://nautilustrader.io/docs/rust-api-latest/
    # nautilus_binance/common/consts/constant.BINANCE_GTX_ORDER_REJECT_CODE.html).
    Policy(-5022, "GTX_ORDER_REJECT: due to the order could not be executed as maker, the "
           "Post Only order will be rejected", Outcome.SKIPPED, post_only_rejected=True),
]}

# HTTP statuses that carry their own policy regardless of the JSON code.
RATE_LIMITED = (429, 418)   # 429: over the limit; 418: IP auto-banned after ignoring 429s
RATE_LIMIT_CODES = (-1003, -1015)
# General Info, HTTP Return Codes: "HTTP 408 return code is used when a timeout has occurred
# while waiting for a response from the backend server" (-1007's words): the request may
# have been processed, with or without a JSON body.
BACKEND_TIMEOUT_STATUS = 408
# General Info, "HTTP 503 Status: Message Variants & Handling", told by the message (the
# page gives no code for A and B): A is "execution status unknown ... could have been a
# success", B is "100% failure" (retry with backoff). C is -1008 and 3 is -1001 (TABLE).
UNKNOWN_ERROR_503 = "Unknown error, please check your request or try again later."
SERVICE_UNAVAILABLE_503 = "Service Unavailable."
SERVICE_UNAVAILABLE = Policy(0, "Service Unavailable: Binance executed nothing (HTTP 503, "
                             "100% failure)", Outcome.SKIPPED, Retry.BACKOFF)
SERVICE_UNAVAILABLE_LABEL = "503 Service Unavailable"   # its code is none of its own
THROTTLE_SECONDS = 60.0
DEFAULT_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    retry: Retry
    code: int
    http_status: int
    meaning: str
    verify: bool = False
    retry_after: float | None = None
    credentials: bool = False
    listen_key_gone: bool = False
    post_only_rejected: bool = False
    closing_order_exists: bool = False
    book_moves: bool = False
    label: str = ""      # the code and its name, for a reply: "-1008 REQUEST_THROTTLED"

    @property
    def retryable(self) -> bool:
        return self.retry is not Retry.NONE

    @property
    def refused_for_now(self) -> bool:
        """A refusal that waiting cures: Binance executed nothing and documents a retry
        with backoff (-1001, -1008, 503 "Service Unavailable.": General Info, "HTTP 503
        Status: Message Variants & Handling"), or refused a MARKET order for the book of
        this moment (-4131). A market close so refused is sent again on a backoff for as
        long as it lasts, and never counts towards its give-up (trader/close_retry.py).
        Every other refusal is the order's own (-2022 nothing to reduce, -4164, -2019
        margin, a filter, the symbol's status, the key): the same close is refused again,
        and three of them give it up."""
        return self.outcome is not Outcome.UNKNOWN \
            and (self.retry is Retry.BACKOFF or self.book_moves)

    @property
    def filter_refused(self) -> bool:
        """A filter failure (price, trigger or quantity off the symbol's filters). The
        placement re-read the rules and resent once already (trader/placement_retry.py), so
        one that reaches a caller is refused as it stands: the same order is refused again
        (a stop move past PRICE_FILTER's maxPrice: trader/placement_refusals.py)."""
        return self.retry is Retry.REFRESH_RULES


def execution_unknown(http_status: int, code: int, message: str) -> bool:
    """Whether Binance's error answer leaves unknown if the request executed (see the
    module docstring): the code says so (TABLE: -1000, -1006, -1007, -1010), or the 503 message
    does (variant A), or HTTP 408; or a 5xx Binance does not document as a failure (a
    gateway's page, "Request occur unknown error."): slower when probed, never wrong.

    >>> execution_unknown(400, -1006, "An unexpected response was received ...")
    True
    >>> execution_unknown(503, -1008, "Request throttled by system-level protection. ...")
    False
    """
    # the 503 variants are told by their message, whatever code comes with it
    if message.strip() == UNKNOWN_ERROR_503:
        return True
    if _service_unavailable(http_status, message):
        return False
    policy = TABLE.get(code)
    if (policy is not None and policy.outcome is Outcome.UNKNOWN) \
            or http_status == BACKEND_TIMEOUT_STATUS:
        return True
    if policy is not None or _refusal_code(code):
        return False     # a code Binance documents as a failure (-1001, -1008, a refusal)
    return http_status >= 500


# The error-code page's server issues (10xx) that refuse the request outright: not
# authorized, IP lists, unsupported, shutting down, not found. Every code from -1100 on
# (11xx request issues, 20xx processing, 40xx filters, 50xx order execution) is a
# refusal too. -1000 / -1006 / -1007 / -1010 are unknown, -1001 / -1008 failures (TABLE).
REFUSED_SERVER_CODES = frozenset({-1002, -1004, -1005, -1011, -1014, -1016, -1020, -1023,
                                  -1099})


def _refusal_code(code: int) -> bool:
    return code <= -1100 or code in REFUSED_SERVER_CODES


def _service_unavailable(http_status: int, message: str) -> bool:
    return http_status == 503 and message.strip() == SERVICE_UNAVAILABLE_503


def classify(error: BaseException, role: OrderRole | None = None, *, sending: bool = True) -> Verdict:
    """The outcome of one failed exchange call for an order of `role`.

    `sending` is True when the call could have created an order (place); then an answer
    that leaves its execution unknown (`execution_unknown`) is UNKNOWN. For reads and
    cancels the same errors are simply retryable.
    """
    if isinstance(error, UnknownOutcome):
        outcome = Outcome.UNKNOWN if sending else Outcome.SKIPPED
        return Verdict(outcome, Retry.NONE if sending else Retry.BACKOFF, error.code,
                       error.http_status, f"request outcome unknown: {error}")
    if not isinstance(error, ExchangeError):
        raise TypeError(f"not an exchange error: {error!r}")
    if error.http_status in RATE_LIMITED or error.code in RATE_LIMIT_CODES:
        return Verdict(Outcome.CIRCUIT_OPEN, Retry.NONE, error.code, error.http_status,
                       "rate limited" if error.http_status != 418 else "IP banned",
                       retry_after=error.retry_after or DEFAULT_RETRY_AFTER)
    service_unavailable = _service_unavailable(error.http_status, error.message)
    policy = SERVICE_UNAVAILABLE if service_unavailable else TABLE.get(error.code)
    if execution_unknown(error.http_status, error.code, error.message) \
            and (policy is None or policy.outcome is not Outcome.UNKNOWN):
        # 408, 503 variant A, an undocumented 5xx: unknown whatever the code says
        outcome = Outcome.UNKNOWN if sending else Outcome.SKIPPED
        return Verdict(outcome, Retry.NONE if sending else Retry.BACKOFF, error.code,
                       error.http_status, f"server error {error.http_status}: "
                       f"{error.message} (execution status unknown)")
    if policy is None:
        # Any other code of the error-code page (11xx, 20xx, 40xx, 50xx) is a refusal:
        # nothing executed, and the same request is refused again.
        return Verdict(Outcome.FAILED, Retry.NONE, error.code, error.http_status,
                       f"unexpected error: {error.message}")
    outcome, retry = policy.outcome, policy.retry
    if policy.verify and role in PROTECTIVE_SUCCESS:
        # For a protective reduce-only/closePosition order these codes mean the
        # protection is (probably) there already: success, then verify on the exchange.
        outcome = Outcome.DONE
    if outcome is Outcome.UNKNOWN and not sending:
        outcome = Outcome.SKIPPED
    label = SERVICE_UNAVAILABLE_LABEL if service_unavailable \
        else f"{error.code} {policy.meaning.partition(':')[0]}"
    return Verdict(outcome, retry, error.code, error.http_status, policy.meaning,
                   verify=policy.verify and outcome is Outcome.DONE,
                   credentials=policy.credentials, listen_key_gone=policy.listen_key_gone,
                   post_only_rejected=policy.post_only_rejected,
                   closing_order_exists=policy.closing_order_exists,
                   book_moves=policy.book_moves, label=label)

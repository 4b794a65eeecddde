"""Logging setup: loguru, one event per line with key=value context; LOG_JSON=1 for JSON.

Secrets never reach a log line: every configured secret value is masked in the whole
line written, an exception's message and traceback included, and tracebacks carry no
variable values.

The libraries log through the standard `logging` module (python-telegram-bot as
`telegram.*`, httpx, python-binance, aiohttp, asyncio), and Python warnings through
`warnings`: both are routed into loguru (`InterceptHandler`, the recipe of loguru's README),
so their lines are masked and formatted like ours, keep their logger's name, and carry
their exception. The chatty ones speak at WARNING: httpx, httpcore, matplotlib and PIL
always (httpx logs every request at INFO: python-telegram-bot's getUpdates long poll,
every few seconds), telegram, binance and aiohttp unless LOG_LEVEL=DEBUG.
"""

import inspect
import json
import logging
import sys
from typing import Any

from loguru import logger

from trader.log_ring import RECENT

_secrets: list[str] = []


def register_secret(value: str | None) -> None:
    """Make sure this value is masked wherever it would appear in a log line, in its JSON
    spelling too (LOG_JSON=1 writes `"` as `\\"` in a traceback's text)."""
    if not value or len(value) < 6:
        return
    for spelling in (value, json.dumps(value, ensure_ascii=False)[1:-1]):
        if spelling not in _secrets:
            _secrets.append(spelling)


def mask(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "********")
    return text


def _mask_record(record: Any) -> bool:
    if _secrets:
        record["message"] = mask(record["message"])
    return True


def _write_masked(line: Any) -> None:
    """The stderr sink: the whole formatted line, an exception's text and traceback
    included, masked (the record filter reaches only the message). Looked up at each write,
    so a replaced sys.stderr (tests, a redirected run) is honoured."""
    sys.stderr.write(mask(str(line)))


# matplotlib (the /chart images) says at INFO that it built its font cache (every start on
# a wiped disk), and at DEBUG scores every font it looks up; PIL dumps PNG chunks at DEBUG.
ALWAYS_QUIET = ("httpx", "httpcore", "matplotlib", "PIL")
QUIET_UNLESS_DEBUG = ("telegram", "binance", "aiohttp")


class InterceptHandler(logging.Handler):
    """A standard-logging handler that hands each record to loguru: the same level, the
    logger's name (e.g. `telegram.request.BaseRequest`), the exception with its traceback,
    and the caller's frame for function and line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:          # a level loguru does not know by that name
            level = record.levelno
        try:
            message = record.getMessage()
        except (TypeError, ValueError) as exc:   # the library's arguments do not fit its format
            message = f"{record.msg} (arguments not formatted: {exc})"
        if record.stack_info:
            message += "\n" + record.stack_info
        exception = record.exc_info if record.exc_info and record.exc_info[0] else None
        if exception is not None and _network_error(exception[1]):
            message = f"{message.rstrip()} error={_qualified(type(exception[1]))}: {exception[1]}"
            exception = None
        logger.patch(lambda loguru_record: loguru_record.update({"name": record.name})).opt(
            depth=_caller_depth(), exception=exception).log(level, message.rstrip("\n"))


# A library's trouble with the network (a dropped connection, a timeout): no bug, so one line
# with the error and no traceback (python-telegram-bot's ran to 70 lines on a terminal).
# By qualified class name, so the check imports none of these libraries.
# (requests' errors are OSErrors; asyncio.TimeoutError is TimeoutError since Python 3.11)
NETWORK_ERRORS = frozenset({
    "builtins.OSError", "builtins.TimeoutError", "httpx.TransportError",
    "telegram.error.NetworkError", "aiohttp.client_exceptions.ClientError",
})


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _network_error(error: BaseException | None) -> bool:
    return error is not None and any(_qualified(kind) in NETWORK_ERRORS
                                     for kind in type(error).__mro__)


def _caller_depth() -> int:
    """How many frames up the code that called `logging` is (past logging's own frames)."""
    frame, depth = inspect.currentframe(), 0
    while frame is not None:
        filename = frame.f_code.co_filename
        inside_logging = filename == logging.__file__ or filename == __file__
        if depth > 0 and not inside_logging:
            break
        frame = frame.f_back
        depth += 1
    return max(depth - 1, 0)


def _route_standard_logging(level: str) -> None:
    """Every standard-logging record (and warning) at `level` or above goes to loguru."""
    logging.basicConfig(handlers=[InterceptHandler()], level=logger.level(level).no, force=True)
    logging.captureWarnings(True)
    for name in ALWAYS_QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in QUIET_UNLESS_DEBUG:
        logging.getLogger(name).setLevel(logging.NOTSET if level in ("DEBUG", "TRACE")
                                         else logging.WARNING)


def setup_logging(*, json_lines: bool = False, level: str = "INFO") -> None:
    """One sink on stderr (JSON lines with `json_lines`) and the /logs ring; the standard
    `logging` module and `warnings` routed into them. Tracebacks show no variable values
    (`diagnose=False`: a frame's locals may hold a key)."""
    logger.remove()
    if json_lines:
        logger.add(_write_masked, level=level, serialize=True, filter=_mask_record,
                   diagnose=False)
    else:
        logger.add(_write_masked, level=level, filter=_mask_record, diagnose=False,
                   format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {name}: {message}")
    RECENT.install(_mask_record)   # the last warnings and errors, for /logs
    _route_standard_logging(level)

"""Logging setup: loguru, one event per line with key=value context; LOG_JSON=1 for JSON.

Secrets never reach a log line: every configured secret value is masked in the whole
line written, an exception's message and traceback included, and tracebacks carry no
variable values.
"""

import sys
from typing import Any

from loguru import logger

from trader.log_ring import RECENT

_secrets: list[str] = []


def register_secret(value: str | None) -> None:
    """Make sure this value is masked wherever it would appear in a log line."""
    if value and len(value) >= 6 and value not in _secrets:
        _secrets.append(value)


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


def setup_logging(*, json_lines: bool = False, level: str = "INFO") -> None:
    """One sink on stderr (JSON lines with `json_lines`) and the /logs ring. Tracebacks
    show no variable values (`diagnose=False`: a frame's locals may hold a key)."""
    logger.remove()
    if json_lines:
        logger.add(_write_masked, level=level, serialize=True, filter=_mask_record,
                   diagnose=False)
    else:
        logger.add(_write_masked, level=level, filter=_mask_record, diagnose=False,
                   format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {name}: {message}")
    RECENT.install(_mask_record)   # the last warnings and errors, for /logs

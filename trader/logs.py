"""Logging setup: loguru, one event per line with key=value context; LOG_JSON=1 for JSON.

Secrets never reach a log line: the sink filter masks every configured secret value.
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


def setup_logging(*, json_lines: bool = False, level: str = "INFO") -> None:
    logger.remove()
    if json_lines:
        logger.add(sys.stderr, level=level, serialize=True, filter=_mask_record)
    else:
        logger.add(sys.stderr, level=level, filter=_mask_record,
                   format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {name}: {message}")
    RECENT.install(_mask_record)   # the last warnings and errors, for /logs

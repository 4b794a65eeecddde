"""The last warnings and errors, kept in memory for /logs: a bounded ring fed by a loguru sink.

The agent's disk is wiped on restart and its log goes to the platform, so the operator's
phone gets the recent WARNING+ records from here. Messages pass the same secret-masking
filter as every other sink (trader/logs.py); each is cut to `MAX_MESSAGE` characters.

    RECENT.install()                    # done by setup_logging; idempotent per handler
    RECENT.last(10)                     # newest last: [LogLine(at, "ERROR", "trader.engine", ...)]
"""

import contextlib
from collections import deque
from collections.abc import Callable
from datetime import UTC
from typing import Any

from loguru import logger

from trader.commands import LogLine

CAPACITY = 200
MAX_MESSAGE = 500


class LogRing:
    """A bounded ring of WARNING+ log records (oldest dropped first)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.records: deque[LogLine] = deque(maxlen=capacity)
        self.handler_id: int | None = None

    def write(self, message: Any) -> None:
        """The loguru sink: `message.record` is loguru's record dict."""
        record = message.record
        text = record["message"]
        if record["exception"] is not None and record["exception"].type is not None:
            text += f" ({record['exception'].type.__name__})"
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE - 1] + "…"
        self.records.append(LogLine(record["time"].astimezone(UTC), record["level"].name,
                                    record["name"] or "", text))

    def install(self, record_filter: Callable[[Any], bool] | None = None,
                level: str = "WARNING") -> None:
        """Add the sink to loguru (again after a `logger.remove()`: the old id is stale)."""
        if self.handler_id is not None:
            # ValueError: already removed by a logger.remove() (setup_logging starts with one)
            with contextlib.suppress(ValueError):
                logger.remove(self.handler_id)
        self.handler_id = logger.add(self.write, level=level, filter=record_filter,
                                     format="{message}", catch=True)

    def last(self, count: int) -> list[LogLine]:
        """The newest `count` records, oldest first."""
        return list(self.records)[-count:] if count > 0 else []


RECENT = LogRing()

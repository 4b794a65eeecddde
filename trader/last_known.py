"""What the trade store knew before a failed write, answered while the database cannot be
read either (a failing disk: chaos's read-only fault gave "disk I/O error" on a SELECT).

A failed write makes the store forget its cached intents and open positions (what the
database holds is then unknown); reading them again raises while the disk fails, and
protection, which reads them before each placement, would stop. `LastKnown` keeps the
cache as it was when forgotten and answers it until a read succeeds:

    intents = LastKnown[dict[str, Intent]]("intents")
    intents.forgotten(cache)                  # the store's caches forget after a failed write
    value, read = intents.read(read_intents)  # read=False: the database failed, `value` is
                                              # the last known (not to be cached as read)
"""

import sqlite3
from collections.abc import Callable
from typing import Generic, TypeVar

from loguru import logger

from storage import SaveStateFailure

T = TypeVar("T")


class LastKnown(Generic[T]):
    """One cache of the store, as last known; logged once per outage."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._last: T | None = None
        self._unreadable_said = False

    def forgotten(self, known: T | None) -> None:
        """The store's cache is forgotten (a failed write): keep what it held."""
        if known is not None:
            self._last = known

    def read(self, read: Callable[[], T]) -> tuple[T, bool]:
        """`read()`, or what was known before the failed write when the database cannot be
        read: (value, True when read). Raises when nothing was known (nothing to answer)."""
        try:
            value = read()
        except (sqlite3.Error, SaveStateFailure) as exc:
            if self._last is None:
                raise
            if not self._unreadable_said:
                self._unreadable_said = True
                logger.error("database not readable: the {} known before its failed write are "
                             "used until it reads again error={}", self.what, exc)
            return self._last, False
        self._last = None
        if self._unreadable_said:
            self._unreadable_said = False
            logger.info("database readable again what={}", self.what)
        return value, True

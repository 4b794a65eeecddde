"""Injected time. The engine and the feed never read the system clock directly."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time (live trading)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """Time that moves only when told to: tests and the replay feed drive it.

    `speed` > 0 makes `sleep` take real time scaled down (replay at N x); `speed` = 0
    makes it instant (backtests).
    """

    def __init__(self, start: datetime, speed: float = 0.0) -> None:
        self._now = start
        self.speed = speed

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment > self._now:
            self._now = moment

    def advance(self, delta: timedelta | float) -> datetime:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self._now += step
        return self._now

    async def sleep(self, seconds: float) -> None:
        if self.speed > 0:
            await asyncio.sleep(seconds / self.speed)
        else:
            await asyncio.sleep(0)
        self._now += timedelta(seconds=seconds)

"""Who is running on which database: the running agent's heartbeat row, what the
`tradebot shutdown|wake` CLI reads to know whether an agent will answer, and where a replay
keeps its database (`replay_db_path`).

The agent writes `agent:presence` every second from its own task (wall-clock time, also in a
replay): pid, host, when it started, the heartbeat, the last time the engine ticked, and
whether it is a replay. A CLI request (`cli:request`, trader/control.py) is noticed within
`WATCH_SECONDS` and wakes the engine's loop so it is answered at once, not at the next tick.
A clean stop marks the row stopped.

    presence = AgentPresence(store, lambda: engine.ticks, engine.wakeup, SystemClock(),
                             replay=False)
    presence.start(); ...; await presence.stop()
    record = read_presence(store)               # in another process
    alive = record is not None and record.alive(datetime.now(UTC))

Alive means: a heartbeat younger than `FRESH_SECONDS`, not marked stopped, and (same host)
the pid still exists. A killed agent leaves a fresh-looking row for up to `FRESH_SECONDS`
only on another host; on the same host its pid is gone at once.
"""

import asyncio
import os
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger

from storage import SaveStateFailure, Store
from trader.cli_mailbox import CLI_REQUEST_KEY, answer_key
from trader.clock import Clock

PRESENCE_KEY = "agent:presence"
BEAT_SECONDS = 1.0
WATCH_SECONDS = 0.2
FRESH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class PresenceRecord:
    """The heartbeat row as another process reads it."""
    pid: int
    host: str
    started_at: datetime
    beat_at: datetime
    replay: bool
    last_tick_at: datetime | None = None
    stopped_at: datetime | None = None

    def alive(self, now: datetime) -> bool:
        if self.stopped_at is not None or now - self.beat_at > timedelta(seconds=FRESH_SECONDS):
            return False
        return self.host != socket.gethostname() or _pid_exists(self.pid)

    def describe(self, now: datetime) -> str:
        """ "pid 4242 on host-1, replay, started 12:00:03 UTC, last heartbeat 1 s ago" """
        kind = "replay" if self.replay else "live"
        ago = (now - self.beat_at).total_seconds()
        ended = f", stopped at {self.stopped_at:%Y-%m-%d %H:%M:%S} UTC" if self.stopped_at else ""
        started = f"{self.started_at:%Y-%m-%d %H:%M:%S}"
        return (f"pid {self.pid} on {self.host}, {kind}, started {started} UTC, "
                f"last heartbeat {ago:.0f} s ago{ended}")

    def to_record(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "started_at": self.started_at.isoformat(),
                "beat_at": self.beat_at.isoformat(), "replay": self.replay,
                "last_tick_at": _iso(self.last_tick_at), "stopped_at": _iso(self.stopped_at)}


def read_presence(store: Store) -> PresenceRecord | None:
    """The heartbeat row of this database; None when no agent ever ran on it (or unreadable)."""
    raw = store.get(PRESENCE_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        return PresenceRecord(
            int(raw["pid"]), str(raw["host"]), datetime.fromisoformat(raw["started_at"]),
            datetime.fromisoformat(raw["beat_at"]), bool(raw["replay"]),
            _time(raw.get("last_tick_at")), _time(raw.get("stopped_at")))
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("agent presence row unreadable row={} error={!r}", raw, exc)
        return None


class AgentPresence:
    """The running agent's side: heartbeat, last tick seen, CLI requests noticed."""

    def __init__(self, store: Store, ticks: Callable[[], int], wakeup: asyncio.Event,
                 clock: Clock, *, replay: bool) -> None:
        self.store = store
        self.ticks = ticks                  # the engine's tick counter
        self.wakeup = wakeup                # set: the engine's loop runs commands now
        self.clock = clock                  # wall-clock time
        self.replay = replay
        self.started_at = clock.now()
        self.last_tick_at: datetime | None = None
        self._ticks_seen = ticks()
        self._task: asyncio.Task[None] | None = None
        self._beat_failing = False          # logged once per failing streak, not every second
        self._unreadable = False            # the CLI request unreadable: logged once per streak

    def start(self) -> None:
        self._beat()
        self._task = asyncio.create_task(self._run(), name="agent-presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._beat(stopped=True)

    async def _run(self) -> None:
        beats_every = max(1, round(BEAT_SECONDS / WATCH_SECONDS))
        rounds = 0
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            rounds += 1
            try:
                self._watch(beat=rounds % beats_every == 0)
            except Exception as exc:  # noqa: BLE001 - the heartbeat outlives one bad round
                logger.opt(exception=exc).error("agent presence round failed")

    def _watch(self, *, beat: bool) -> None:
        ticks = self.ticks()
        if ticks != self._ticks_seen:
            self._ticks_seen = ticks
            self.last_tick_at = self.clock.now()
        if self._request_waiting():
            self.wakeup.set()
        if beat:
            self._beat()

    def _request_waiting(self) -> bool:
        """Whether a CLI request waits. Unreadable (another process locks the file): one
        WARNING when it begins, one line when it ends; it is read every 0.2 s."""
        try:
            request = self.store.get(CLI_REQUEST_KEY)
            waiting = bool(request) and self.store.get(answer_key(str(request.get("id")))) is None
        except sqlite3.Error as exc:
            (logger.debug if self._unreadable else logger.warning)(
                "cli request not readable error={!r}", exc)
            self._unreadable = True
            return False
        if self._unreadable:
            logger.info("cli requests readable again")
            self._unreadable = False
        return waiting

    def _beat(self, *, stopped: bool = False) -> None:
        now = self.clock.now()
        record = PresenceRecord(os.getpid(), socket.gethostname(), self.started_at, now,
                                self.replay, self.last_tick_at, now if stopped else None)
        try:
            self.store.put(PRESENCE_KEY, record.to_record(), now)
        except SaveStateFailure as exc:    # counted by the store's write health
            if not self._beat_failing:
                logger.warning("heartbeat not saved (the CLI will not see this agent) error={}",
                               exc)
            self._beat_failing = True
            return
        self._beat_failing = False


def replay_db_path(db_path: Path) -> Path:
    """Where `run --replay` keeps its throwaway session: `<db>-replay.db` beside TRADEBOT_DB."""
    return db_path.with_name(db_path.stem + "-replay.db")


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                      # exists, owned by someone else
    return True


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None

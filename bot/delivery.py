"""Alert delivery: the database outbox -> every allowed Telegram chat, in order, once each
(UNAUTHORIZED to the private ones: bot/alert_audience.py).

A background task wakes when the engine publishes (`wake()` only sets an event, so the
engine never waits for Telegram) and every few seconds. It sends the alerts the database
could not keep (`Alerter.take_unsaved`) and the outbox's pending ones, oldest first, and
marks each delivered one sent. CRITICAL alerts go first (SAVE_STATE_FAILURE, SL_MISSING must
not wait behind a backlog of FILL chatter after an outage or under flood control), the others
after them; within each group the order is the order of publication. Each alert rings or
not as `Loudness` decides (INFO and the operator's TRADEBOT_ALERTS_SILENT names go with
`disable_notification`; only the first part of a long alert rings). While Telegram is
unreachable the alerts stay pending (the attempt is counted) and tenacity repeats the pass
with capped exponential backoff, resuming at
the first undelivered alert, so nothing is lost, reordered or sent twice. A token Telegram
refuses (401: revoked) counts as unreachable too: the alerts wait in the outbox. A chat that
refuses the bot for now (403: blocked, removed; 400: no right to send, chat not found:
bot/telegram_refusals.py) is tried again every few minutes and then gets what it missed,
CRITICAL first (bot/blocked_chats.py), and the other chats are told; a chat under flood control
(429) is held the same way for its `retry_after` while the other chats go on. One part to one chat and
Telegram's answer to it: bot/alert_sender.py. A pass that raises is logged with its
traceback and repeated the same way: the task only ends when it is stopped. Stopping lets
the breaker trips the alerter holds for their clear go out in the last pass.
"""

import asyncio
import itertools
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_when_event_set,
)

from bot.alert_audience import addressed
from bot.alert_order import ENDS_CRITICAL, UrgencyOrder
from bot.alert_sender import ChatOutcome, ChatSender, SendText
from bot.blocked_chats import BlockedChats
from bot.format import format_alert
from bot.sending import TOKEN_REFUSED, Backoff
from bot.telegram_text import split_message
from bot.trouble_log import TroubleLog
from storage import SaveStateFailure, Store
from trader.alert_routing import Loudness
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName, OutgoingAlert, Severity
from trader.clock import Clock
from trader.display import duration


class Delivery(StrEnum):
    ALL_SENT = "all_sent"          # the outbox is empty (as far as this pass could see)
    UNREACHABLE = "unreachable"    # Telegram did not answer; retry later from the same alert


@dataclass(frozen=True, slots=True)
class _Queued:
    key: str                       # "db:<outbox id>" or "mem:<n>" (kept in memory only)
    alert: OutgoingAlert


@dataclass
class _Progress:
    """Parts already delivered per chat, so a retry resumes instead of repeating."""
    parts_sent: dict[int, int] = field(default_factory=dict)
    refused: set[int] = field(default_factory=set)   # chats that refused it for good
    delivered_somewhere: bool = False
    silent: bool = True          # decided once per alert (Loudness remembers what rang)


@dataclass(frozen=True, slots=True)
class _Owed:
    """An alert delivered elsewhere that a blocked chat gets once it accepts messages."""
    item: _Queued
    progress: _Progress


class AlertDelivery:
    """Sends outbox alerts to the allowed chats; `run()` is the background loop."""

    def __init__(self, send: SendText, chat_ids: Iterable[int], alerter: Alerter, store: Store,
                 clock: Clock, *, interval: float = 5.0, backoff: Backoff | None = None,
                 batch: int = 50, on_migrated: Callable[[int, int], None] | None = None,
                 token_trouble: TroubleLog | None = None,
                 blocked: BlockedChats[_Owed] | None = None,
                 on_chat_took: Callable[[int], None] | None = None) -> None:
        self.blocked: BlockedChats[_Owed] = blocked or BlockedChats()
        self.sender = ChatSender(send, self.blocked, token_trouble or TroubleLog(TOKEN_REFUSED),
                                 on_migrated, on_chat_refused=self._chat_refuses,
                                 on_chat_took=on_chat_took)
        self.chat_ids = list(chat_ids)
        self.moved = self.sender.moved    # a group that became a supergroup -> its new id
        self.alerter = alerter
        self.store = store
        self.clock = clock
        self.interval = interval
        self.backoff = backoff or Backoff()
        self.batch = batch
        self.loudness = Loudness(alerter.routing)
        self.order = UrgencyOrder()
        self._unsaved: list[_Queued] = []
        self._progress: dict[str, _Progress] = {}
        self._unmarked: dict[int, str] = {}      # outbox id -> status not yet written
        self._sequence = itertools.count(1)
        self._backoff_wait = self.backoff.exponential()
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- control ------------------------------------------------------------------------
    def wake(self) -> None:
        """New alerts are waiting. Never blocks."""
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="telegram-alert-delivery")

    async def stop(self, timeout: float) -> None:
        """One last delivery pass (best effort, at most `timeout` seconds), then end the loop."""
        self._stop_requested.set()
        self.alerter.release_held()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            logger.warning("alert flush timed out timeout_s={} pending stay in the outbox", timeout)
            self._task.cancel()
        self._task = None

    async def run(self) -> None:
        """Deliver until stopped: after a pass that emptied the outbox, wait `interval` or a
        wake-up; after one that did not reach Telegram (or raised), retry with backoff."""
        while True:
            await self._retrying()(self.deliver_once)
            if self._stop_requested.is_set():
                return
            held = self.blocked.next_try_in()    # a chat's flood wait or blocked retry
            await self._pause(self.interval if held is None else min(self.interval, held),
                              wakeable=True)

    def _retrying(self) -> AsyncRetrying:
        """Repeat a pass while Telegram is unreachable or the pass raised, until stopped.

        Stopping ends the waits at once; the pass under way (or the next one, when stop came
        during a wait) is the last: the flush on shutdown.
        """
        return AsyncRetrying(
            retry=retry_if_result(lambda outcome: outcome is Delivery.UNREACHABLE)
            | retry_if_exception_type(Exception),
            wait=self._wait, stop=stop_when_event_set(self._stop_requested),  # type: ignore[arg-type]
            sleep=self._sleep, after=self._log_failed_pass,
            retry_error_callback=lambda state: Delivery.UNREACHABLE)

    def _wait(self, retry_state: RetryCallState) -> float:
        return float(self._backoff_wait(retry_state))

    async def _sleep(self, seconds: float) -> None:
        await self._pause(seconds, wakeable=False)

    @staticmethod
    def _log_failed_pass(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        if outcome is not None and outcome.failed:
            # A bug here must not silence every later alert: log it whole, then try again.
            logger.opt(exception=outcome.exception()).error(
                "alert delivery pass failed attempt={}; retrying", retry_state.attempt_number)

    async def _pause(self, seconds: float, *, wakeable: bool) -> None:
        events = [self._stop_requested, *([self._wakeup] if wakeable else [])]
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._wakeup.clear()

    # --- one pass -----------------------------------------------------------------------
    async def deliver_once(self) -> Delivery:
        """Send everything waiting, urgent first (bot/alert_order.py), each group oldest
        first; stop at the first alert Telegram did not take. An alert published meanwhile is
        read before the next non-urgent one is sent, so a CRITICAL one never waits for the
        rest of a batch."""
        async with self._lock:
            if not await self._deliver_owed():
                return Delivery.UNREACHABLE
            for _ in range(20):   # bounded; whatever is left goes in the next pass
                self._wakeup.clear()    # set again by what is published from here on
                self._unsaved.extend(_Queued(f"mem:{next(self._sequence)}", alert)
                                     for alert in self.alerter.take_unsaved())
                queue, urgent, more = self._queue()
                interrupted, finished = False, 0
                for index, item in enumerate(queue):
                    if index >= max(urgent, 1) and self._wakeup.is_set():
                        interrupted = True
                        break
                    done = await self._deliver(item)
                    if done is None:
                        return Delivery.UNREACHABLE
                    finished += done
                if not (more or interrupted) or not finished:
                    break   # (nothing finished: every chat left is blocked; read no further)
            return Delivery.ALL_SENT

    def _queue(self) -> tuple[list[_Queued], int, bool]:
        """(what to send in order, how many of the first are urgent, whether the outbox
        holds more than was read)."""
        self._write_unmarked()
        try:
            # The urgent ones may be anywhere in a long backlog: read them on their own.
            candidates = self.alerter.pending(self.batch, Severity.CRITICAL, ENDS_CRITICAL)
            pending = self.alerter.pending(self.batch)
        except (SaveStateFailure, sqlite3.Error) as exc:
            logger.error("alert outbox unreadable error={}", exc)
            candidates, pending = [], []
        unique = {alert.outbox_id: alert for alert in [*candidates, *pending]
                  if alert.outbox_id not in self._unmarked}
        stored = [_Queued(f"db:{outbox_id}", alert) for outbox_id, alert in unique.items()]
        waiting = sorted([*self._unsaved, *stored], key=lambda item: item.alert.created_at)
        queue, urgent = self.order.arrange([(item, item.alert) for item in waiting])
        full = len(pending) >= self.batch
        if full:   # a candidate that is not urgent waits for the alerts published before it
            last = pending[-1].outbox_id or 0
            queue = queue[:urgent] + [item for item in queue[urgent:]
                                      if (item.alert.outbox_id or 0) <= last]
        return queue, urgent, full or len(candidates) >= self.batch

    async def _deliver(self, item: _Queued) -> bool | None:
        """True when this alert is done (sent, or refused by every chat); False: kept pending
        for chats that refuse the bot for now (bot/blocked_chats.py); None: unreachable."""
        progress = self._progress.get(item.key)
        if progress is None:
            progress = self._progress[item.key] = _Progress(silent=self.loudness.silent(item.alert))
        blocked: list[int] = []
        for chat_id, parts in self._parts(item.alert).items():
            if chat_id in progress.refused or progress.parts_sent.get(chat_id, 0) >= len(parts):
                continue
            outcome = ChatOutcome.BLOCKED if self.blocked.waiting(chat_id) \
                else await self._send_parts(item, chat_id, parts, progress)
            if outcome is ChatOutcome.UNREACHABLE:
                self._count_attempt(item)
                return None
            progress.delivered_somewhere |= outcome is ChatOutcome.SENT
            if outcome is ChatOutcome.BLOCKED:
                blocked.append(chat_id)
            elif outcome is ChatOutcome.REFUSED:
                progress.refused.add(chat_id)
        if blocked and not progress.delivered_somewhere:
            return False     # stays pending in the outbox until one of them takes it
        for chat_id in blocked:
            self.blocked.owe(chat_id, _Owed(item, _Progress(silent=progress.silent)))
        self._finish(item, "sent" if progress.delivered_somewhere else "failed")
        return True

    async def _deliver_owed(self) -> bool:
        """Chats that refused the bot and are due for a try get what they missed first,
        urgent first (bot/alert_order.py); the first send is the try. False: unreachable."""
        for chat_id in self.blocked.due():
            owed = self.blocked.owed_to(chat_id)
            owed.sort(key=lambda entry: entry.item.alert.created_at)
            ordered, _ = UrgencyOrder().arrange([(entry, entry.item.alert) for entry in owed])
            for entry in ordered:
                parts = self._parts(entry.item.alert).get(chat_id, [])
                outcome = await self._send_parts(entry.item, chat_id, parts, entry.progress)
                if outcome is ChatOutcome.UNREACHABLE:
                    return False
                if outcome is ChatOutcome.BLOCKED:
                    break                       # still refused: tried again later
                owed.remove(entry)
                if outcome is ChatOutcome.REFUSED:
                    logger.error("owed alert given up alert={} chat={}", entry.item.key, chat_id)
                else:
                    self.blocked.accepted(chat_id)      # forgotten once nothing is owed
        return True

    def _parts(self, alert: OutgoingAlert) -> dict[int, list[str]]:
        """The message parts each allowed chat gets of `alert` (bot/alert_audience.py)."""
        split: dict[int, list[str]] = {}       # by id() of the alert as a chat reads it
        parts: dict[int, list[str]] = {}
        for chat_id, told in addressed(alert, self.chat_ids).items():
            if id(told) not in split:
                split[id(told)] = split_message(format_alert(told))
            parts[chat_id] = split[id(told)]
        return parts

    async def _send_parts(self, item: _Queued, chat_id: int, parts: list[str],
                          progress: _Progress) -> ChatOutcome:
        for index in range(progress.parts_sent.get(chat_id, 0), len(parts)):
            silent = progress.silent or index > 0   # one sound per alert
            outcome = await self.sender.send_part(item.key, chat_id, parts[index], silent)
            if outcome is not ChatOutcome.SENT:
                return outcome
            progress.parts_sent[chat_id] = index + 1
        return ChatOutcome.SENT

    def _chat_refuses(self, chat_id: int, words: str) -> None:
        """A chat began to refuse the bot: the other chats read why, and that its alerts are
        kept for it (it reads this too once it takes messages again). Alone, it has nobody
        to tell: the log says it (bot/blocked_chats.py)."""
        if all(other == chat_id for other in self.chat_ids):
            return
        every = duration(timedelta(seconds=self.blocked.retry_every))
        self.alerter.publish(Alert(
            AlertName.ERROR, f"Telegram chat {chat_id} takes no message from the bot for now "
            f"(Telegram: {words}). Its alerts are kept, CRITICAL first, and it is tried again "
            f"every {every}. A group: let the bot send messages there (an admin "
            "restricted it, or removed it); a private chat: open the bot and unblock it or "
            "press Start; else check TELEGRAM_ALLOWED_CHAT_IDS.",
            dedup_key=f"telegram-chat-refuses:{chat_id}"), self.clock.now())

    # --- bookkeeping --------------------------------------------------------------------
    def _finish(self, item: _Queued, status: str) -> None:
        self._progress.pop(item.key, None)
        self.order.delivered(item.alert)
        if item in self._unsaved:
            self._unsaved.remove(item)
            return
        outbox_id = item.alert.outbox_id
        if outbox_id is None:
            return
        logger.info("alert delivered id={} name={} status={}", outbox_id, item.alert.name, status)
        self._unmarked[outbox_id] = status
        self._write_unmarked()

    def _write_unmarked(self) -> None:
        """Record delivered alerts; kept in memory (never resent) while the database fails."""
        for outbox_id, status in list(self._unmarked.items()):
            try:
                self.store.mark_alert(outbox_id, status, self.clock.now())
            except SaveStateFailure as exc:
                logger.error("alert delivered but not recorded id={} error={}", outbox_id, exc)
                return
            del self._unmarked[outbox_id]

    def _count_attempt(self, item: _Queued) -> None:
        if item.alert.outbox_id is None:
            return
        try:
            self.store.count_alert_attempt(item.alert.outbox_id)
        except SaveStateFailure as exc:
            logger.error("alert attempt not counted id={} error={}", item.alert.outbox_id, exc)

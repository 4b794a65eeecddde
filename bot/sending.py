"""Retry policies for the bot's calls to Telegram, applied with tenacity.

Telegram's flood control answers HTTP 429 with `parameters.retry_after`, "the number of
seconds left to wait before the request can be repeated"
(https://core.telegram.org/bots/api#responseparameters; limits in
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
python-telegram-bot raises that as `RetryAfter`; a policy waits exactly that long. A request
that did not reach Telegram or whose answer was lost (`NetworkError`, `TimedOut`) waits a
capped exponential backoff. Every other error is Telegram's answer (BadRequest, Forbidden,
InvalidToken) and is not repeated. A policy is bounded by attempts and by a time budget
that counts every wait, so no handler waits for Telegram forever.

    policy = RetryPolicy(attempts=4, budget=30.0)
    message = await call_with_retries(policy, "reply chat=42",
                                      partial(bot.send_message, 42, "hello"))

A timed-out request may have reached Telegram: repeating it can show a message twice,
which we prefer to losing a reply about the operator's money.

`FloodGate` (the application's rate limiter) makes a 429 hold every call that sends a
message to the same chat until `retry_after` has passed, not only the call that got it:
alert delivery, command replies, prompt edits and the pinned state share one bot, and a
reply sent inside another caller's wait would only earn a longer one. Other chats go on.
"""

import asyncio
import json
import math
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from loguru import logger
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter
from telegram.request import HTTPXRequest, RequestData
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
)
from tenacity.wait import wait_base

from bot.trouble_log import TroubleLog

T = TypeVar("T")

TOKEN_REFUSED = ("telegram refuses TELEGRAM_BOT_TOKEN (revoked?): alerts stay in the outbox and "
                 "commands cannot arrive until it is accepted again")


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait Telegram asked for, in seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # PTB warns that retry_after will become a timedelta
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_transient(exc: BaseException) -> bool:
    """Worth repeating: flood control, or the request never got a real answer.

    BadRequest subclasses NetworkError in python-telegram-bot, but it is Telegram's answer.
    """
    if isinstance(exc, RetryAfter | TimeoutError):
        return True
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


class FloodAwareWait(wait_base):
    """Telegram's `retry_after` after a 429; the given backoff after anything else."""

    def __init__(self, backoff: wait_base) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(error, RetryAfter):
            return retry_after_seconds(error)
        return float(self.backoff(retry_state))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff in seconds: initial, 2 x initial, 4 x initial ... cap."""
    initial: float = 1.0
    cap: float = 60.0

    def exponential(self) -> wait_base:
        return wait_exponential(multiplier=self.initial, max=self.cap)

    def delay(self, failures: int) -> float:
        """The wait after `failures` (>= 1) failures in a row."""
        return min(self.cap, self.initial * 2 ** min(failures - 1, 30))

    def wait(self) -> wait_base:
        """The backoff, except after flood control, which waits what Telegram asked."""
        return FloodAwareWait(self.exponential())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long one call to Telegram is repeated: at most `attempts` tries, and no wait that
    would end more than `budget` seconds after the first try."""
    attempts: int = 4
    budget: float = 30.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, cap=8.0))

    def retrying(self, what: str) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(is_transient), wait=self.backoff.wait(),
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.budget),
            before_sleep=RetryLog(what), reraise=True)


async def call_with_retries(policy: RetryPolicy, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """`call()` under `policy`. Raises the last `TelegramError` when the policy gives up or
    Telegram refuses (`BadRequest`, `Forbidden` ...: never repeated)."""
    result: T = await policy.retrying(what)(call)
    return result


@dataclass(frozen=True, slots=True)
class RetryLog:
    """tenacity `before_sleep` hook: one warning per retry, with what, attempt and wait."""
    what: str

    def __call__(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        kind = "flood control" if isinstance(error, RetryAfter) else "unreachable"
        logger.warning("telegram {} what={} attempt={} retry_in_s={:.1f} error={!r}", kind,
                       self.what, retry_state.attempt_number, retry_state.upcoming_sleep, error)


# The calls that put or change a message in a chat: a 429 on one holds them all. Hints
# (sendChatAction) and button answers are held only by their own 429s: a refused "sending
# photo…" must not hold the photo up.
MESSAGE_CALLS = frozenset({"sendMessage", "sendPhoto", "editMessageText",
                           "editMessageReplyMarkup", "pinChatMessage", "unpinChatMessage"})


class FloodGate(BaseRateLimiter[None]):
    """python-telegram-bot rate limiter: after a 429 (RetryAfter), the calls of its kind
    (MESSAGE_CALLS, or else the same method) to its chat are not sent until its
    `retry_after` has passed: each is answered RetryAfter(the seconds left) at once, which
    its caller's retry policy waits out or gives up on (never a call held longer than its
    caller would wait). A 429 on a call without a chat (answerCallbackQuery, getMe ...) holds
    that kind for every chat. getUpdates never comes here (python-telegram-bot exempts it):
    commands keep arriving.

    Per chat, because Telegram's limits that a bot with a few chats meets are per chat
    ("avoid sending more than one message per second" to a chat, "not more than 20 messages
    per minute" to a group; the 30 per second across chats is far off,
    https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this), so a
    busy group's wait must not hold the owner's CRITICAL alert up. The docs do not say
    whether a 429 is per chat or per bot (https://core.telegram.org/bots/api#responseparameters:
    retry_after, "the number of seconds left to wait before the request can be repeated"):
    were it per bot, each other chat meets its own 429 once and is held from then on."""

    def __init__(self) -> None:
        # (kind, chat id or None for every chat) -> loop time it opens again
        self._closed_until: dict[tuple[str, object], float] = {}

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    def seconds_held(self, endpoint: str, chat: object) -> float:
        """Seconds a call of `endpoint` to `chat` is still held (a 429 was read for it);
        0 or less: it goes."""
        kind = "messages" if endpoint in MESSAGE_CALLS else endpoint
        opens = max(self._closed_until.get((kind, chat), 0.0),
                    self._closed_until.get((kind, None), 0.0))
        return opens - asyncio.get_running_loop().time()

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]],
                              args: Any, kwargs: dict[str, Any], endpoint: str,
                              data: dict[str, Any], rate_limit_args: None) -> Any:
        loop = asyncio.get_running_loop()
        kind = "messages" if endpoint in MESSAGE_CALLS else endpoint
        chat = (data or {}).get("chat_id")
        left = self.seconds_held(endpoint, chat)
        if left > 0:
            # Not sent: answered like Telegram would, so each caller's own policy decides
            # whether to wait the rest (a reply within its budget) or keep it for later.
            raise RetryAfter(math.ceil(left))
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            wait = retry_after_seconds(exc)
            key = (kind, chat)
            self._closed_until[key] = max(self._closed_until.get(key, 0.0), loop.time() + wait)
            logger.warning("telegram flood control method={} held={} chat={} retry_after_s={}",
                           endpoint, kind, chat if chat is not None else "all", wait)
            raise


class PollingRequest(HTTPXRequest):
    """The getUpdates connection.

    - A 401 or 404: python-telegram-bot ends its polling for good on either (it takes both for
      a wrong token), so a token revoked mid-run, or one 404 from a proxy, would leave the
      agent deaf to commands until restarted, and its stop() would re-raise the error. Such
      an answer is handed on as a 502 instead: polling backs off (python-telegram-bot's own
      backoff, up to 30 s) and goes on, and works again as soon as Telegram does. A token
      wrong from the start is still caught by getMe (a ConfigError, bot/app.py).
    - An outage (a 5xx answer, a connection refused or closed without an answer): the
      library would sleep 1, 1.5, 2.25 ... s between polls, up to 30 s
      (telegram/ext/_utils/networkloop.py, not configurable), so a command sent just after
      Telegram came back waited up to 30 s. The failure is handed on as TimedOut, which the
      library polls again at once, and this connection waits its own `backoff` (capped at
      5 s by default) before the next long poll; a stop cancels that wait with the poll.
      Telegram documents no retry policy for these (https://core.telegram.org/bots/
      api#making-requests). Flood control (429, parameters.retry_after) is left to the
      library, which waits it out in full."""

    def __init__(self, *args: Any, token_trouble: TroubleLog | None = None,
                 backoff: Backoff | None = None, **kwargs: Any) -> None:
        """`token_trouble`: the log of a refused token, shared with alert delivery (one
        CRITICAL line when it begins, slow reminders, one line when it ends). `backoff`: the
        wait before a long poll after failed ones (default 1, 2, 4, 5, 5 ... s)."""
        super().__init__(*args, **kwargs)
        self.token_trouble = token_trouble or TroubleLog(TOKEN_REFUSED)
        self.backoff = backoff or Backoff(initial=1.0, cap=5.0)
        self.failures = 0               # failed polls in a row (outage only)

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        # The cleanup poll on stop (timeout 0) never waits: the stop is bounded.
        long_poll = bool(request_data is not None and request_data.parameters.get("timeout"))
        if self.failures and long_poll:
            await asyncio.sleep(self.backoff.delay(self.failures))
        try:
            code, payload = await super().do_request(url, method, request_data, *args, **kwargs)
        except TimedOut:
            raise                       # polled again at once; a hang paces itself
        except NetworkError as exc:
            raise self._outage(str(exc)) from exc
        if code >= 500:
            raise self._outage(f"HTTP {code}")
        if self.failures and code < 400:
            logger.info("telegram polling works again after {} failed polls", self.failures)
            self.failures = 0
        if code not in (401, 404):
            if code == 200:
                self.token_trouble.recovered("commands reach the agent again")
            return code, payload
        self.token_trouble.fail(f"getUpdates answered {code}: commands cannot reach the agent; "
                                "polling goes on")
        return 502, json.dumps({"ok": False, "error_code": 502, "description":
                                f"getUpdates refused with {code} (token revoked?)"}).encode()

    def _outage(self, error: str) -> TimedOut:
        """One more failed poll: logged, and handed on as TimedOut (polled again at once; the
        wait is this connection's own, before the next long poll)."""
        self.failures += 1
        logger.warning("telegram polling failed error={} failures={} next_poll_in_s={:.1f}",
                       error, self.failures, self.backoff.delay(self.failures))
        return TimedOut(f"getUpdates failed ({error}); polled again after the backoff")

"""The Telegram bot wired into the engine's event loop: polling (or webhook), handlers, alerts.

`TelegramBot` runs a python-telegram-bot `Application` inside the agent's own asyncio loop
(initialize / start / updater.start_polling; never run_polling, which would own the loop);
in webhook mode updates arrive on the agent's HTTP endpoint beside GET /health
(bot/webhook.py). It keeps the operator's sleep/pause pinned (`intent_pin`,
bot/pinned_state.py) and answers /health (bot/health_reply.py).
It is also the engine's `AlertSink`: `wake()` nudges the delivery task. If Telegram is
unreachable at start, the engine is not held up: the bot keeps connecting in the background
while alerts wait in the outbox. A token Telegram rejects at start is a configuration error
(`trader.config.ConfigError`: one line naming TELEGRAM_BOT_TOKEN, exit code 2); any other
refusal at start is retried in the background like an outage. The bot counts as connected
once getMe answers: the update channel (polling, or setWebhook) is opened after that and
apart (bot/update_channel.py), so a refused webhook never holds an alert up. Mid-run, a 409 Conflict on
getUpdates (another poller on the token, or a webhook) is alerted, and an allowed group that
Telegram turned into a supergroup is followed to its new id (alerts, pinned state, gate).

    sink = make_alert_sink(settings, engine, alerter, store, clock)   # bot or headless
    await sink.start()
    ...
    await sink.stop()       # flushes pending alerts (best effort), then stops
"""

import asyncio
import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from loguru import logger
from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, TypeHandler
from tenacity import AsyncRetrying, retry_if_exception, stop_never

from bot.auth import ChatGate
from bot.blocked_chats import BlockedChats
from bot.confirm import ConfirmationBook
from bot.delivery import AlertDelivery
from bot.format import HELP_LINES
from bot.group_migration import GroupMigration
from bot.handlers import CommandHandlers, HandlerTimings
from bot.health_reply import ABOUT as HEALTH_ABOUT
from bot.health_reply import HealthCommand
from bot.pinned_state import PinnedState
from bot.replies import Replies
from bot.sending import (
    TOKEN_REFUSED,
    Backoff,
    FloodGate,
    PollingRequest,
    RetryLog,
    RetryPolicy,
    is_transient,
)
from bot.trouble_log import TroubleLog
from bot.update_channel import UpdateChannel
from bot.webhook import TelegramWebhook
from storage import Store
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName, Severity
from trader.clock import Clock
from trader.commands import EngineControl
from trader.config import ConfigError, Settings
from trader.health import HealthView
from trader.health_server import HttpEndpoint
from trader.log_sink import LogAlertSink

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


@dataclass(frozen=True, slots=True)
class BotTimings:
    """Real-time intervals of the bot's own loops (tests shrink them)."""
    poll_timeout: float = 10.0             # getUpdates long-poll
    # The wait between failed polls in an outage (bot/sending.py PollingRequest): a command
    # sent once Telegram is back waits at most this cap for the next poll.
    poll_backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, cap=5.0))
    delivery_interval: float = 5.0         # alert outbox sweep when nothing wakes it
    delivery_backoff: Backoff = field(default_factory=Backoff)
    blocked_chat_retry: float = 300.0      # a chat that answered 403 is tried again after this
    # getMe while Telegram is unreachable (at start, in the background): capped like the poll
    # backoff, so commands and the pinned state are back within ~5 s of Telegram (README).
    # One getMe every 5 s is no load; a 429 waits its retry_after in full (FloodAwareWait).
    connect_backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, cap=5.0))
    replies: RetryPolicy = field(default_factory=RetryPolicy)   # messages, prompts, photos, edits
    # Telegram stops accepting an answer to a button press after a short while.
    callback_answers: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3,
                                                                              budget=10.0))
    connect_timeout: float = 5.0           # one connection attempt (getMe)
    sweep_interval: float = 1.0            # expiry of confirmation prompts
    flush_timeout: float = 5.0             # alert flush on stop
    stop_timeout: float = 5.0              # each further step of stop()
    confirm_ttl: timedelta = timedelta(seconds=60)
    handlers: HandlerTimings = field(default_factory=HandlerTimings)


def file_url(api_url: str) -> str:
    """Bot API file base for an API base: https://host/bot -> https://host/file/bot."""
    root = api_url.removesuffix("/bot")
    return f"{root}/file/bot" if root != api_url else f"{api_url}/file"


def build_application(token: str, api_url: str | None, *,
                      polling: bool = True, token_trouble: TroubleLog | None = None,
                      poll_backoff: Backoff | None = None) -> Application:
    # Two get_updates connections: the cleanup call on stop must not wait for the long poll.
    builder = (ApplicationBuilder().token(token).concurrent_updates(16).job_queue(None)
               .get_updates_request(PollingRequest(connection_pool_size=2,
                                                   token_trouble=token_trouble,
                                                   backoff=poll_backoff))
               .rate_limiter(FloodGate()))
    if not polling:
        builder = builder.updater(None)     # webhook mode: bot/webhook.py feeds the queue
    if api_url:
        builder = builder.base_url(api_url).base_file_url(file_url(api_url))
    return builder.build()


class TelegramBot:
    """Commands in, alerts out. Start and stop it from the agent's event loop.

    `http`: the agent's endpoint on $PORT (the webhook is served there, beside GET /health);
    without one, webhook mode serves its own. `health`: the /health view. `take_updates=False`
    connects for alerts and the pinned state only (a one-shot `tradebot shutdown`).
    `intent_pin` keeps the operator's intent pinned (bot/pinned_state.py).
    """

    def __init__(self, settings: Settings, engine: EngineControl, alerter: Alerter, store: Store,
                 clock: Clock, timings: BotTimings | None = None, *,
                 http: HttpEndpoint | None = None, health: Callable[[], HealthView] | None = None,
                 take_updates: bool = True) -> None:
        if settings.telegram_bot_token is None:
            raise ValueError("TelegramBot needs TELEGRAM_BOT_TOKEN; use make_alert_sink")
        self.settings = settings
        self.alerter = alerter
        self.clock = clock
        self.timings = timings or BotTimings()
        self.take_updates = take_updates
        self._token = settings.telegram_bot_token.get_secret_value()
        webhook_url = settings.telegram_webhook_url
        # One log for a refused token, whether polling or alert delivery meets it first.
        token_trouble = TroubleLog(TOKEN_REFUSED)
        self.application = build_application(self._token, settings.telegram_api_url,
                                             polling=not webhook_url, token_trouble=token_trouble,
                                             poll_backoff=self.timings.poll_backoff)
        self.webhook = None if not webhook_url else TelegramWebhook(
            self.application, http or HttpEndpoint(settings.port), webhook_url,
            # Telegram sends the secret with every call.
            hashlib.sha256(self._token.encode()).hexdigest()[:32], ALLOWED_UPDATES,
            owns_endpoint=http is None)
        gate = ChatGate(settings.telegram_allowed_chat_ids, settings.telegram_allowed_user_ids,
                        alerter)
        replies = Replies(alerter, clock, self.timings.replies, self.timings.callback_answers)
        self.handlers = CommandHandlers(engine, gate, clock,
                                        ConfirmationBook(ttl=self.timings.confirm_ttl), replies,
                                        self.timings.handlers)
        self.health = health
        served_here = [HealthCommand(health, replies).handler()] if health is not None else []
        self.handlers.register(self.application, extra=served_here,
                               extra_help=[("/health", HEALTH_ABOUT)] if served_here else [])
        self.application.add_handler(TypeHandler(Update, self._chat_wrote), group=-2)
        self.intent_pin = PinnedState(lambda: self.application.bot,
                                      settings.telegram_allowed_chat_ids,
                                      lambda: self.connected, alerter, clock)
        self.migration = GroupMigration(gate, alerter, clock)
        self.intent_pin.on_migrated = self.migration.follow
        self.delivery = AlertDelivery(self._send_alert, settings.telegram_allowed_chat_ids,
                                      alerter, store, clock,
                                      interval=self.timings.delivery_interval,
                                      backoff=self.timings.delivery_backoff,
                                      on_migrated=self.migration.follow,
                                      token_trouble=token_trouble,
                                      blocked=BlockedChats(self.timings.blocked_chat_retry),
                                      on_chat_took=self.intent_pin.chat_answers)
        self.migration.targets = [self.delivery.moved.__setitem__,
                                  self.intent_pin.follow_migration]
        self.updates = UpdateChannel(self._start_updates, alerter, clock,
                                     self.timings.connect_backoff, webhook_url)
        self._gate = gate
        self._token_trouble = token_trouble
        self.connected = False
        # Called (quick, no await) once getMe answers: trader/intent_keeper.py's pin read
        self.on_connected: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # --- AlertSink ----------------------------------------------------------------------
    def wake(self) -> None:
        self.delivery.wake()

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Connect now if Telegram answers; otherwise keep trying in the background.

        Raises `ConfigError` (one line naming TELEGRAM_BOT_TOKEN, never the token) when
        Telegram rejects the token: 401 Unauthorized, or 404 for a malformed one.
        """
        try:
            await self._connect()
        except InvalidToken as exc:
            await self._bounded(self.application.bot.shutdown(), "close connections")
            raise ConfigError([f"TELEGRAM_BOT_TOKEN: rejected by Telegram ({self._reason(exc)}); "
                               "check the token from @BotFather"]) from None
        except (NetworkError, RetryAfter, TimeoutError) as exc:
            logger.warning("telegram unreachable at start error={!r}; retrying in the background",
                           exc)
            self._spawn(self._connect_in_background(), "telegram-connect")
            return
        except TelegramError as exc:   # 400/403/409 ...: Telegram's, but no reason to die
            logger.error("telegram refused the start error={!r}; retrying in the background",
                         exc)
            self._spawn(self._connect_in_background(), "telegram-connect")
            return
        self._after_connect()
        if self.take_updates and not await self.updates.open():
            self._spawn(self.updates.keep_opening(), "telegram-updates")

    async def stop(self) -> None:
        """Flush pending alerts (best effort), then stop polling and the application.

        Every step is bounded: PTB's polling retry sleeps up to 30 s after a refused token or a
        409, and in-flight commands may still wait for the engine; SIGTERM must not wait for
        them.
        """
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.connected:
            await self.delivery.stop(self.timings.flush_timeout)
        application = self.application
        if application.updater is not None and application.updater.running:
            await self._bounded(application.updater.stop(), "stop polling")
        if self.webhook is not None:
            await self._bounded(self.webhook.stop(), "stop the webhook server")
        if application.running:
            await self._bounded(application.stop(), "finish running commands")
        await self._bounded(application.shutdown(), "close connections")
        self.connected = False
        logger.info("telegram bot stopped")

    async def _bounded(self, step: Coroutine[Any, Any, None], what: str) -> None:
        """One best-effort step of stop(): bounded, and a Telegram error (the polling task
        that died of a revoked token re-raises its InvalidToken here) does not skip the rest."""
        try:
            await asyncio.wait_for(step, self.timings.stop_timeout)
        except TimeoutError:
            logger.warning("telegram stop step timed out step={} timeout_s={}", what,
                           self.timings.stop_timeout)
        except TelegramError as exc:
            logger.warning("telegram stop step failed step={} error={!r}", what, exc)

    async def _connect(self) -> None:
        application = self.application
        # getMe checks the token and the connection; bounded so a silent network cannot
        # hold up the agent's start (cancelling it here leaves nothing half-initialised).
        await asyncio.wait_for(application.initialize(), self.timings.connect_timeout)
        if not application.running:
            await application.start()
        # Connected once Telegram answers getMe: sending alerts needs no update channel, so
        # the channel (setWebhook, polling) is opened after this and apart (UpdateChannel).
        self.connected = True
        for callback in self.on_connected:       # the pinned state is read now, not later
            callback()
        me = application.bot.username
        logger.info("telegram bot connected username={} mode={}", me,
                    "webhook" if self.settings.telegram_webhook_url else "polling")

    async def _start_updates(self) -> None:
        if self.webhook is not None:
            await self.webhook.start()
        else:
            updater = self.application.updater
            assert updater is not None
            if not updater.running:
                await updater.start_polling(
                    timeout=timedelta(seconds=self.timings.poll_timeout),
                    allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False,
                    error_callback=self._polling_error)
        await self._register_menu()

    async def _register_menu(self) -> None:
        lines = list(HELP_LINES)
        if self.health is not None and all(name != "health" for name, _ in lines):
            lines.append(("health", HEALTH_ABOUT))
        commands = [BotCommand(name, what) for name, what in lines]
        try:
            await self.application.bot.set_my_commands(commands)
        except TelegramError as exc:
            logger.warning("telegram command menu not registered error={}", exc)

    def _reason(self, rejected: InvalidToken) -> str:
        """Telegram's description ("Unauthorized", "Not Found"); PTB's own message quotes
        the token, so only the description it wraps is used, and masked all the same."""
        cause = rejected.__cause__
        reason = cause.message if isinstance(cause, TelegramError) else "Unauthorized"
        return reason.replace(self._token, "********")

    async def _connect_in_background(self) -> None:
        """Retry the connection with capped backoff until Telegram answers (or refuses the
        token: then the agent runs on, and alerts wait in the outbox). Any other refusal
        (400, 403, 409) is retried the same way: it may pass, and giving up helps nobody."""
        retrying = AsyncRetrying(retry=retry_if_exception(_worth_connecting_again),
                                 wait=self.timings.connect_backoff.wait(), stop=stop_never,
                                 before_sleep=RetryLog("connect"), reraise=True)
        await asyncio.sleep(self.timings.connect_backoff.initial)   # start() has just failed
        try:
            await retrying(self._connect)
        except InvalidToken:
            logger.critical("telegram rejected TELEGRAM_BOT_TOKEN; alerts stay in the outbox")
            return
        self._after_connect()
        if self.take_updates:
            await self.updates.keep_opening()

    def _after_connect(self) -> None:
        self.delivery.start()
        self.delivery.wake()
        self._spawn(self._expire_prompts_forever(), "telegram-prompt-expiry")

    async def _expire_prompts_forever(self) -> None:
        while True:
            await asyncio.sleep(self.timings.sweep_interval)
            try:
                await self.handlers.expire_prompts(self.application.bot)
            except Exception:  # noqa: BLE001 - expiry must keep running; the failure is logged
                logger.exception("confirmation expiry pass failed")

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_if_crashed)

    async def _chat_wrote(self, update: Update, context: object) -> None:
        """Runs before the access gate, for every update: a chat that had blocked the bot
        and writes again has unblocked it, so what it missed goes now, not in 5 minutes, and
        its pinned state is brought up to date now, not at the next change."""
        chat = update.effective_chat
        if chat is not None and chat.id in self.delivery.chat_ids:
            self.delivery.blocked.try_soon(chat.id)
            self.delivery.wake()
            self.intent_pin.chat_answers(chat.id)
        self.migration.announced(update.message)

    def _polling_error(self, exc: TelegramError) -> None:
        """python-telegram-bot's polling retries every error itself (an outage after
        PollingRequest's own backoff, up to 5 s, and logged there); a 409 Conflict means
        commands may not reach this agent, so the operator is told. A refused token is logged
        by its own trouble log (bot/trouble_log.py), not per retry."""
        log = logger.debug if self._token_trouble.failing else logger.warning
        log("telegram polling failed error={}", exc)
        if isinstance(exc, Conflict):
            self.alerter.publish(Alert(AlertName.SECOND_INSTANCE, conflict_text(exc),
                                       severity=Severity.WARN, dedup_key="telegram-conflict"),
                                 self.clock.now())

    async def _send_alert(self, chat_id: int, text: str, html: bool, silent: bool) -> None:
        await self.application.bot.send_message(chat_id, text,
                                                parse_mode=ParseMode.HTML if html else None,
                                                disable_notification=silent)


def conflict_text(exc: Conflict) -> str:
    """What a 409 on getUpdates means: another poller on the token, or a webhook set on it
    (getUpdates "will not work if an outgoing webhook is set up",
    https://core.telegram.org/bots/api#getupdates)."""
    cause = "a webhook is set on this bot token" if "webhook" in exc.message.lower() else \
        "another process polls Telegram with this bot token (a second agent? an overlapping deploy?)"
    return (f"Telegram refuses this agent's getUpdates ({exc.message}): {cause}. Commands may "
            "not reach this agent, or reach the other one; alerts still come from here. "
            "Stop the other process (or delete the webhook); one bot token per agent.")


def _worth_connecting_again(exc: BaseException) -> bool:
    """Everything but a token Telegram rejects (and a bug of ours)."""
    return is_transient(exc) or isinstance(exc, TelegramError) and not isinstance(exc, InvalidToken)


def _log_if_crashed(task: "asyncio.Task[None]") -> None:
    """A background task of the bot that dies of anything must say so, with its traceback."""
    if task.cancelled() or task.exception() is None:
        return
    logger.opt(exception=task.exception()).error("telegram background task {} crashed",
                                                 task.get_name())


def make_alert_sink(settings: Settings, engine: EngineControl, alerter: Alerter, store: Store,
                    clock: Clock, timings: BotTimings | None = None, *,
                    http: HttpEndpoint | None = None, health: Callable[[], HealthView] | None = None,
                    take_updates: bool = True) -> TelegramBot | LogAlertSink:
    """The Telegram bot when a token is configured, else the log-only sink; attached to
    `alerter`. The keywords are TelegramBot's."""
    sink: TelegramBot | LogAlertSink
    if settings.telegram_bot_token is None or not settings.telegram_bot_token.get_secret_value():
        sink = LogAlertSink(alerter, store, clock)
    else:
        sink = TelegramBot(settings, engine, alerter, store, clock, timings, http=http,
                           health=health, take_updates=take_updates)
    alerter.sink = sink
    return sink

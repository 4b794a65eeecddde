"""Telegram commands and confirmation buttons: parse, check, hand a `Command` to the engine, answer.

The bot never touches trading state: every action is a `Command` awaited through
`EngineControl.execute` (the engine is the single writer). A command is refused without
being executed when its arguments are wrong (one-line usage answer, bot/parsing.py) or when
it waited more than 60 s while the agent was down, or when it was forwarded (typed by
someone else or at another time: one-line answer a minute per chat, nothing run). /close,
/shutdown, /long, /short, /unlock and /sl ask for confirmation with inline buttons that expire;
each confirmation can be used once, so a repeated press does nothing. One whose outcome is
already decided (a /long while asleep, an /unlock with nothing locked, a /sl level past the
symbol's price filter or on the wrong side of the mark) is answered at once, without the
question (`EngineControl.already_decided`; /sl: `check_stop`); the engine checks again at
the tap. A /sl is asked with its distance from the mark and, when the trailing stop (or a
move to breakeven still due) moves it back at the next tick, where to. /start answers a
short status and the command list.
Everything said back goes through `Replies` (retried; kept in the alert outbox if Telegram
does not take it in time).
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loguru import logger
from telegram import Bot, Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.alert_audience import as_read_in
from bot.auth import REFUSAL_TEXT, Access, ChatGate, addressed_to_another_bot
from bot.confirm import (
    CHOICES,
    Choice,
    Confirmation,
    ConfirmationBook,
    PromptState,
    confirmation_prompt,
    parse_callback,
)
from bot.format import escape, format_result, help_text, plain_text, start_text
from bot.forwarded_commands import ForwardedCommands
from bot.parsing import USAGE, UsageError, command_name, parse_command
from bot.replies import Replies
from bot.stale_commands import StaleCommands
from trader.clock import Clock
from trader.commands import (
    ALL_SYMBOLS,
    Command,
    CommandKind,
    CommandResult,
    EngineControl,
    StopCheck,
)

CHAT_ACTION_TIMEOUT = 3.0   # seconds; the picture matters, its "sending photo…" hint less


@dataclass(frozen=True, slots=True)
class HandlerTimings:
    stale_after: timedelta = timedelta(seconds=60)   # older commands waited while we were down
    ack_after: float = 0.8                           # "working on it" if the engine is slower
    result_timeout: float = 60.0                     # then "still running, see /status"


Context = ContextTypes.DEFAULT_TYPE


class CommandHandlers:
    """The bot's reactions to updates: the access gate, commands, buttons and prompt expiry."""

    def __init__(self, engine: EngineControl, gate: ChatGate, clock: Clock,
                 book: ConfirmationBook, replies: Replies,
                 timings: HandlerTimings | None = None) -> None:
        self.engine = engine
        self.gate = gate
        self.clock = clock
        self.book = book
        self.replies = replies
        self.timings = timings or HandlerTimings()
        self.stale = StaleCommands(replies)   # one answer per chat for a burst after an outage
        self.forwarded = ForwardedCommands(replies, clock)   # never run; one answer a minute
        self._late: set[asyncio.Future[Any]] = set()   # late results, and their replies
        self.extra_help: list[tuple[str, str]] = []

    def register(self, application: Application,
                 extra: Sequence[BaseHandler] = (),
                 extra_help: Sequence[tuple[str, str]] = ()) -> None:
        """`extra`: handlers answered outside the engine's queue (/health, bot/health_reply.py);
        added before the unknown-command answer, behind the same access gate. `extra_help`:
        their (usage, about) lines for /help and /start."""
        self.extra_help = list(extra_help)
        new_messages = filters.UpdateType.MESSAGE   # an edited "/close" must not act again
        application.add_handler(TypeHandler(Update, self.check_access), group=-1)
        for name in USAGE:
            application.add_handler(CommandHandler(name, self.on_command, filters=new_messages))
        for handler in extra:
            application.add_handler(handler)
        application.add_handler(MessageHandler(filters.COMMAND & new_messages, self.on_unknown))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_error_handler(self.on_error)

    # --- access -------------------------------------------------------------------------
    async def check_access(self, update: Update, context: Context) -> None:
        """Runs before every handler; stops anything not from an allowed chat and user."""
        message, query = update.message, update.callback_query
        is_command = message is not None and (message.text or "").startswith("/")
        if query is None and not is_command:
            raise ApplicationHandlerStop   # chatter, edits, other update kinds: not for us
        if message is not None and is_command \
                and addressed_to_another_bot(message.text or "", context.bot.username):
            raise ApplicationHandlerStop   # "/status@OtherBot" in a group: not for us either
        chat, user = update.effective_chat, update.effective_user
        what = (query.data if query is not None else message.text if message else "") or ""
        access = self.gate.check(chat.id if chat else None, user.id if user else None, what,
                                 self.clock.now())
        if access is Access.ALLOW:
            if message is not None and is_command and message.forward_origin is not None:
                await self.forwarded.refuse(context.bot, message.chat_id, message.text or "")
                raise ApplicationHandlerStop
            return
        if query is not None:
            # Every press is answered, a refused one again too: the toast reaches the presser
            # alone, and without an answer their button spins on (answerCallbackQuery,
            # https://core.telegram.org/bots/api#answercallbackquery).
            await self.replies.answer(query, REFUSAL_TEXT)
        elif access is Access.REFUSE and chat is not None:   # never kept: the outbox is the owner's
            await self.replies.send_html(context.bot, chat.id, escape(REFUSAL_TEXT), keep=False)
        raise ApplicationHandlerStop

    # --- commands -----------------------------------------------------------------------
    async def on_command(self, update: Update, context: Context) -> None:
        """Every command is answered (a reply, a question, or a refusal); its two log lines
        show when it came and how long the answer took."""
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        name = command_name(message.text or "")
        now = self.clock.now()
        logger.info("telegram command received name={} update_id={} chat={}", name,
                    update.update_id, chat.id)
        await self._answer_command(context, message, chat.id, name, now)
        logger.info("telegram command answered name={} update_id={} took_s={:.2f}", name,
                    update.update_id, (self.clock.now() - now).total_seconds())

    async def _answer_command(self, context: Context, message: Message, chat_id: int,
                              name: str, now: datetime) -> None:
        age = now - message.date
        if age > self.timings.stale_after:
            await self.stale.refuse(context.bot, chat_id, name, message.date, age)
            return
        try:
            request = parse_command(name, list(context.args or []), list(self.engine.symbols))
        except UsageError as exc:
            await self.replies.send_html(context.bot, chat_id, exc.text)
            return
        kind = request.kind
        if kind is None:
            await self.replies.send_html(context.bot, chat_id, help_text(list(self.engine.symbols),
                                                                   self.extra_help))
        elif kind in (CommandKind.CLOSE, CommandKind.SL) \
                and not self.engine.closable(request.symbol or ""):
            await self.replies.send_html(context.bot, chat_id, nothing_to_close(request.symbol)
                                         if kind is CommandKind.CLOSE else
                                         f"No open position on {escape(request.symbol or '')}"
                                         "; no stop-loss to move.")
        elif kind is CommandKind.SL:
            await self._prompt_stop(context.bot, chat_id, request.symbol or "", now,
                                    request.price, request.auto)
        elif kind in CHOICES and (decided := self.engine.already_decided(kind, request.symbol)):
            await self.replies.send_html(context.bot, chat_id,
                                         "\n".join(escape(line) for line in decided))
        elif kind in CHOICES:
            await self._prompt(context.bot, chat_id, kind, request.symbol, now, request.price)
        else:
            command = Command(kind, f"tg:{chat_id}:{message.message_id}", message.date,
                              symbol=request.symbol, duration=request.duration,
                              period=request.period, count=request.count)
            if request.name == "start":
                await self._start(context.bot, chat_id, command)
            else:
                await self._run(context.bot, chat_id, command)

    async def _start(self, bot: Bot, chat_id: int, command: Command) -> None:
        """/start: what the agent is doing in three lines, then the commands."""
        result = await self._execute(bot, chat_id, command, None)
        if result is not None:
            await self.replies.send_html(bot, chat_id,
                                         start_text(result, list(self.engine.symbols),
                                                    self.extra_help))

    async def on_unknown(self, update: Update, context: Context) -> None:
        if update.effective_chat is not None:
            await self.replies.send_html(context.bot, update.effective_chat.id,
                                         "Unknown command. /help lists what I understand.")

    async def _prompt_stop(self, bot: Bot, chat_id: int, symbol: str, now: datetime,
                           price: Decimal | None, auto: bool = False) -> None:
        """/sl: one check (`EngineControl.check_stop`) decides. A /sl whose outcome is
        decided (a level Binance would refuse, the stop already there, a position being
        closed) is answered at once, one line, nothing to confirm; any other is asked with
        its distance from the mark and what the agent's own rules then do to it."""
        check = self.engine.check_stop(symbol, None if auto else price) \
            if price is not None or auto else StopCheck()
        if check.answer:
            await self.replies.send_html(bot, chat_id, escape(check.answer))
            return
        await self._prompt(bot, chat_id, CommandKind.SL, symbol, now, price, check, auto)

    async def _prompt(self, bot: Bot, chat_id: int, kind: CommandKind, symbol: str | None,
                      now: datetime, price: Decimal | None = None,
                      check: StopCheck | None = None, auto: bool = False) -> None:
        prompt = self.book.open(kind, chat_id, now, symbol, price, check, auto)
        text, markup = confirmation_prompt(prompt, self.book.ttl)
        sent = await self.replies.send_html(
            bot, chat_id, text, markup,
            kept_text=f"The /{kind.value} confirmation could not be shown; nothing was done. "
                      f"Send /{kind.value} again.")
        if sent is None:
            prompt.state = PromptState.EXPIRED   # its buttons never reached the chat
            return
        prompt.message_id = sent.message_id

    # --- buttons ------------------------------------------------------------------------
    async def on_button(self, update: Update, context: Context) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        nonce, choice = parse_callback(query.data)
        logger.info("telegram button received update_id={} chat={} nonce={} choice={}",
                    update.update_id, chat.id, nonce, choice)
        prompt = self.book.get(nonce)
        now = self.clock.now()
        if prompt is None or prompt.chat_id != chat.id or choice not in CHOICES[prompt.kind]:
            await self.replies.answer(query, "This button is no longer valid; send the command "
                                             "again.")
            return
        if prompt.state is PromptState.USED:
            await self.replies.answer(query, "Already done.")
            return
        if prompt.state is PromptState.EXPIRED:   # the expiry sweep already edited the message
            await self.replies.answer(query, prompt.expired_text)
            return
        if self.book.is_due(prompt, now):
            prompt.state = PromptState.EXPIRED
            await self.replies.answer(query, prompt.expired_text)
            await self._edit(context.bot, prompt, prompt.expired_text)
            return
        prompt.state = PromptState.USED   # before any await: a second press finds it used
        if choice is Choice.CANCEL:
            await self.replies.answer(query, "Cancelled.")
            await self._edit(context.bot, prompt, "Cancelled: nothing was done.")
            return
        command = Command(prompt.kind, f"tg:confirm:{prompt.nonce}", now, symbol=prompt.symbol,
                          flatten=choice is Choice.FLATTEN, price=prompt.price,
                          auto=prompt.auto)
        # The engine acts at once; the toast and the edit may wait out Telegram's flood control.
        running = asyncio.ensure_future(self.engine.execute(command))
        await self.replies.answer(query, "Working on it…")
        await self._edit(context.bot, prompt, confirmed_text(prompt, choice))
        await self._run(context.bot, chat.id, command, running)

    async def expire_prompts(self, bot: Bot) -> int:
        """Turn prompts past their ttl into "expired, send /close again"; returns how many."""
        due = self.book.expire_due(self.clock.now())
        for prompt in due:
            await self._edit(bot, prompt, prompt.expired_text)
        return len(due)

    # --- engine -------------------------------------------------------------------------
    async def _run(self, bot: Bot, chat_id: int, command: Command,
                   running: asyncio.Future[CommandResult] | None = None) -> None:
        if command.kind is CommandKind.CHART and running is None:   # drawing takes a moment
            running = asyncio.ensure_future(self.engine.execute(command))
            await self._show_uploading_photo(bot, chat_id)
        result = await self._execute(bot, chat_id, command, running)
        if result is None:
            return
        if command.kind is CommandKind.CHART and result.ok and result.png:
            caption = escape(" ".join(result.lines))[:900] or "Equity and drawdown"
            await self.replies.send_photo(
                bot, chat_id, result.png, caption,
                kept_text=f"The /chart picture could not be sent ({plain_text(caption)}). "
                          "Send /chart again.")
        else:
            result = as_read_in(chat_id, result)       # a stranger's words stay private
            await self.replies.send_html(bot, chat_id, format_result(command.kind, result))

    async def _execute(self, bot: Bot, chat_id: int, command: Command,
                       running: asyncio.Future[CommandResult] | None) -> CommandResult | None:
        """Await the engine (`running`: already started); say "working on it" if it takes
        long; None if there is no result."""
        logger.info("telegram command kind={} id={} symbol={}", command.kind, command.command_id,
                    command.symbol or "-")
        task = running or asyncio.ensure_future(self.engine.execute(command))
        done, _ = await asyncio.wait({task}, timeout=self.timings.ack_after)
        if not done:
            await self.replies.send_html(bot, chat_id, "⏳ Working on it…", keep=False)
            done, _ = await asyncio.wait({task}, timeout=self.timings.result_timeout)
        if not done:
            self._late.add(task)
            task.add_done_callback(lambda late: self._late_result(late, bot, chat_id, command))
            await self.replies.send_html(bot, chat_id, "⏳ Still running; the answer follows "
                                         "when it is done.", keep=False)
            return None
        try:
            return task.result()
        except Exception as exc:  # noqa: BLE001 - any engine failure becomes the operator's answer
            logger.exception("engine command failed kind={} id={}", command.kind,
                             command.command_id)
            await self.replies.send_html(bot, chat_id,
                                         f"⚠️ <b>{escape(command.kind.value)} failed</b>\n"
                                         f"{escape(type(exc).__name__)}: {escape(exc)}")
            return None

    def _late_result(self, task: asyncio.Future[CommandResult], bot: Bot, chat_id: int,
                     command: Command) -> None:
        """A result that came after "Still running": said in the chat all the same (a
        /close that ran once the exchange answered, a /long refused for waiting too long)."""
        self._late.discard(task)
        if task.cancelled():
            logger.warning("late engine command cancelled")
        elif task.exception() is not None:
            logger.error("late engine command failed error={!r}", task.exception())
        else:
            result = task.result()
            logger.info("late engine command finished ok={}", result.ok)
            text = format_result(command.kind, result) if command.kind is not CommandKind.CHART \
                else "The /chart picture took too long; send /chart again."
            reply = asyncio.ensure_future(self.replies.send_html(bot, chat_id, text))
            self._late.add(reply)           # kept until sent (a task nobody holds may vanish)
            reply.add_done_callback(self._late.discard)

    # --- telegram helpers ---------------------------------------------------------------
    async def _show_uploading_photo(self, bot: Bot, chat_id: int) -> None:
        """"sending photo…" in the chat while the picture is drawn: a hint, so it is neither
        retried nor kept, and it never holds the reply up for long.
        https://core.telegram.org/bots/api#sendchataction"""
        try:
            await asyncio.wait_for(bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO),
                                   CHAT_ACTION_TIMEOUT)
        except (TelegramError, TimeoutError) as exc:
            logger.warning("chat action not shown chat={} error={!r}", chat_id, exc)

    async def _edit(self, bot: Bot, prompt: Confirmation, text: str) -> None:
        if prompt.message_id is not None:
            await self.replies.edit(bot, prompt.chat_id, prompt.message_id, text)

    async def on_error(self, update: object, context: Context) -> None:
        logger.opt(exception=context.error).error("telegram handler failed update={}",
                                                  getattr(update, "update_id", None))


def nothing_to_close(symbol: str | None) -> str:
    """The answer to a /close with nothing to close: at once, no confirmation asked."""
    if symbol in (None, ALL_SYMBOLS):
        return "No open positions; nothing to close."
    return f"No open position on {escape(symbol)}; nothing to close."


def confirmed_text(prompt: Confirmation, choice: Choice) -> str:
    if prompt.kind is CommandKind.CLOSE:
        what = "all positions" if prompt.symbol == ALL_SYMBOLS else escape(prompt.symbol)
        return f"⏳ Closing <b>{what}</b>…"
    if prompt.kind in (CommandKind.LONG, CommandKind.SHORT):
        return f"⏳ Opening a <b>{prompt.kind.value}</b> on <b>{escape(prompt.symbol)}</b>…"
    if prompt.kind is CommandKind.UNLOCK:
        return f"⏳ Unlocking <b>{escape(prompt.symbol)}</b>…"
    if prompt.kind is CommandKind.SL:
        return f"⏳ Moving the <b>{escape(prompt.symbol)}</b> stop-loss…"
    if choice is Choice.FLATTEN:
        return "⏳ Shutdown: flattening everything, then sleeping…"
    return "⏳ Shutdown: keeping positions protected, then sleeping…"

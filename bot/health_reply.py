"""/health in Telegram: trader/health.py's view, answered at once by the bot (it reads the
engine's state; nothing waits on the engine's queue, so a stuck engine still answers).

    command = HealthCommand(monitor.view, replies)
    handlers.register(application, extra=[command.handler()])
"""

from collections.abc import Callable
from datetime import timedelta

from loguru import logger
from telegram import Update
from telegram.ext import CommandHandler, ContextTypes, filters

from bot.parsing import usage_text
from bot.replies import Replies
from bot.telegram_text import escape
from trader.display import duration
from trader.health import HealthView

ABOUT = "ticks, streams, database, exchange, Telegram, invariants"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return "just now" if seconds < 1 else f"{duration(timedelta(seconds=round(seconds)))} ago"


def health_text(view: HealthView) -> str:
    """The view as Telegram HTML; every value escaped."""
    head = ("✅ <b>Healthy</b>" if view.healthy else
            "❌ <b>Unhealthy</b>: " + escape("; ".join(view.problems)))
    streams = " · ".join(f"{escape(name.replace('_', ' '))} {escape(state)}"
                         for name, state in view.streams.items())
    usage = " · ".join(f"{escape(name)} {count}" for name, count in view.rate_limit.items())
    lines = [
        f"{head} · {escape(view.run_state)}",
        f"Last tick: {_ago(view.last_tick_age)} (limit "
        f"{duration(timedelta(seconds=round(view.stale_after)))})",
        f"Streams: {streams}",
        f"Database: {'writable' if view.database_writable else '<b>writes failing</b>'}",
        f"Exchange REST: {escape(view.exchange_rest)}",
        f"Exchange circuit: {escape(view.exchange_circuit or 'closed')}",
        f"Rate limit used: {usage or 'not reported'}",
        f"Telegram: {escape(view.telegram)}; oldest alert waiting: "
        f"{'none' if view.telegram_lag < 1 else _ago(view.telegram_lag).removesuffix(' ago')}",
        f"Version {escape(view.version)} · up "
        f"{duration(timedelta(seconds=round(view.uptime)))}",
    ]
    lines += [f"⚠️ {escape(warning)}" for warning in view.warnings]
    lines += [f"🚨 invariant {escape(line)}" for line in view.invariants]
    return "\n".join(lines)


class HealthCommand:
    """The /health handler (behind the bot's access gate, like every command)."""

    def __init__(self, health: Callable[[], HealthView], replies: Replies) -> None:
        self.health = health
        self.replies = replies

    def handler(self) -> CommandHandler:
        return CommandHandler("health", self.on_command, filters=filters.UpdateType.MESSAGE)

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        if context.args:       # as every command without arguments answers (bot/parsing.py)
            await self.replies.send_html(context.bot, chat.id, usage_text(
                "/health", "/health takes no arguments"))
            return
        try:
            text = health_text(self.health())
        except Exception as exc:  # noqa: BLE001 - the operator gets the failure, not silence
            logger.opt(exception=exc).error("health view failed")
            text = f"❌ <b>Unhealthy</b>: the health check itself failed: {escape(repr(exc))}"
        await self.replies.send_html(context.bot, chat.id, text)

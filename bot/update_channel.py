"""How commands reach the agent (getUpdates polling, or Telegram's webhook), opened apart from
the connection that sends: sendMessage needs neither, so no refusal of the update channel
may hold up an alert.

Telegram refuses setWebhook for good with a 400 such as "bad webhook: An HTTPS URL must be
provided for webhook" or "bad webhook: Failed to resolve host"
(https://core.telegram.org/bots/api#setwebhook; the error envelope:
https://core.telegram.org/bots/api#making-requests). The operator is then told once, in
Telegram's words: a CRITICAL log line naming the setting (bot/trouble_log.py: reminded
slowly, its end logged) and an ERROR alert, since commands cannot reach the agent. It is
tried again with capped backoff (a host that did not resolve may come back); a network
failure is only retried.

    channel = UpdateChannel(open_updates, alerter, clock, Backoff(2, 60), webhook_url)
    if not await channel.open():        # one try, at start
        spawn(channel.keep_opening())   # until Telegram takes it
"""

import asyncio
from collections.abc import Awaitable, Callable

from loguru import logger
from telegram.error import TelegramError

from bot.sending import Backoff, is_transient
from bot.trouble_log import TroubleLog
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.url_mask import masked_url


class UpdateChannel:
    """Opens the update channel with `open_updates`; says once why it cannot, and retries."""

    def __init__(self, open_updates: Callable[[], Awaitable[None]], alerter: Alerter,
                 clock: Clock, backoff: Backoff, webhook_url: str | None) -> None:
        self.open_updates = open_updates
        self.alerter = alerter
        self.clock = clock
        self.backoff = backoff
        self.failures = 0
        self.channel = (f"the webhook TELEGRAM_WEBHOOK_URL={masked_url(webhook_url)}"
                        if webhook_url else "polling (getUpdates)")
        self.hint = ("The webhook must be a public https:// URL on port 443, 80, 88 or 8443 "
                     "(Telegram's setWebhook); fix TELEGRAM_WEBHOOK_URL and restart."
                     if webhook_url else "")
        self.trouble = TroubleLog(f"telegram refuses {self.channel}: commands cannot reach the "
                                  "agent; alerts are still sent")

    async def open(self) -> bool:
        """One try; True once the channel is open."""
        try:
            await self.open_updates()
        except (TelegramError, TimeoutError) as exc:
            self.failures += 1
            if isinstance(exc, TimeoutError) or is_transient(exc):  # a timeout is transient
                logger.warning("telegram update channel not open yet channel={} error={!r}; "
                               "retrying", self.channel, exc)
            else:
                self._refused(exc)
            return False
        self.failures = 0
        self.trouble.recovered("commands reach the agent again")
        return True

    async def keep_opening(self) -> None:
        """Try again with capped backoff until the channel is open."""
        while not await self.open():
            await asyncio.sleep(self.backoff.delay(self.failures))

    def _refused(self, exc: TelegramError) -> None:
        first = not self.trouble.failing
        self.trouble.fail(f"Telegram: {exc.message}")
        if first:
            self.alerter.publish(Alert(
                AlertName.ERROR, f"Commands cannot reach this agent: Telegram refuses "
                f"{self.channel} ({exc.message}). Alerts still arrive; /commands do not. "
                f"{self.hint} Tried again every minute meanwhile.",
                dedup_key="telegram-updates-refused"), self.clock.now())

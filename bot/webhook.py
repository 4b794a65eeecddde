"""Webhook mode (web dynos): Telegram POSTs each update to the agent's HTTP endpoint on $PORT,
beside GET /health (trader/health_server.py).

python-telegram-bot's own webhook server (`Updater.start_webhook`) serves no other route, so
the application runs without an Updater and updates go on its queue, the custom-webhook way
its documentation shows (https://docs.python-telegram-bot.org/en/stable/examples.customwebhookbot.html:
"any other asyncio based web server framework can be used"). Telegram sends the secret given
to setWebhook in the X-Telegram-Bot-Api-Secret-Token header
(https://core.telegram.org/bots/api#setwebhook); a request without it is refused with 403,
as python-telegram-bot's own handler does.
"""

from urllib.parse import urlparse

from aiohttp import web
from loguru import logger
from telegram import Update
from telegram.ext import Application

from trader.health_server import HttpEndpoint

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramWebhook:
    """Receives updates on `url`'s path of `endpoint`; `start()` registers the URL with Telegram."""

    def __init__(self, application: Application, endpoint: HttpEndpoint,
                 url: str, secret: str, allowed_updates: list[str], *, owns_endpoint: bool) -> None:
        self.application = application
        self.endpoint = endpoint
        self.url = url
        self.secret = secret
        self.allowed_updates = allowed_updates
        self.owns_endpoint = owns_endpoint
        endpoint.add_post("/" + urlparse(url).path.strip("/"), self.on_update)

    async def start(self) -> None:
        """Serve (when the endpoint is ours), then tell Telegram where to push updates."""
        if self.owns_endpoint and not self.endpoint.running:
            await self.endpoint.start()
        await self.application.bot.set_webhook(
            url=self.url, secret_token=self.secret, allowed_updates=self.allowed_updates,
            drop_pending_updates=False)

    async def stop(self) -> None:
        if self.owns_endpoint:
            await self.endpoint.stop()

    async def on_update(self, request: web.Request) -> web.Response:
        if request.headers.get(SECRET_HEADER) != self.secret:
            logger.warning("webhook call without our secret refused remote={}", request.remote)
            return web.Response(status=403)
        if not self.application.running:
            return web.Response(status=503)     # Telegram delivers it again later
        try:
            body = await request.json()
            update = Update.de_json(body, self.application.bot)
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("webhook body unreadable error={!r}", exc)
            return web.Response(status=400)
        await self.application.update_queue.put(update)
        return web.Response(status=200)

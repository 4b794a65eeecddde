"""The agent's HTTP port ($PORT, set by web dynos): GET /health for uptime monitors, and the
routes others add before it starts (the Telegram bot's webhook, bot/app.py).

    endpoint = HttpEndpoint(port, health=monitor.view)
    endpoint.add_post("/tg-hook", handler)      # before start(): aiohttp freezes its routes
    await endpoint.start(); ...; await endpoint.stop()

GET /health answers JSON, HTTP 200 when healthy and 503 when not (trader/health.py defines
healthy), so a monitor that only reads status codes works. A health view that fails to build
answers 503 with the error: a monitor must not see "ok" from a broken agent.
"""

from collections.abc import Awaitable, Callable

from aiohttp import web
from loguru import logger

from trader.health import HealthView

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpEndpoint:
    """One aiohttp server on `port` (all interfaces: the platform's router connects to it)."""

    def __init__(self, port: int, *, health: Callable[[], HealthView] | None = None,
                 host: str = "0.0.0.0") -> None:   # all interfaces: the dyno's router connects
        self.port = port
        self.host = host
        self.health = health
        self.app = web.Application()
        if health is not None:
            self.app.router.add_get("/health", self._health)
        self._runner: web.AppRunner | None = None

    def add_post(self, path: str, handler: Handler) -> None:
        self.app.router.add_post(path, handler)

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Listen on the port. OSError when it is taken (the caller decides)."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        logger.info("http endpoint listening port={} routes={}", self.port,
                    sorted({r.resource.canonical for r in self.app.router.routes()
                            if r.resource is not None}))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        assert self.health is not None
        try:
            view = self.health()
        except Exception as exc:  # noqa: BLE001 - the monitor gets a 503 with the reason
            logger.opt(exception=exc).error("health view failed")
            return web.json_response({"status": "unhealthy", "healthy": False,
                                      "problems": [f"health check failed: {exc!r}"]}, status=503)
        return web.json_response(view.as_json(), status=200 if view.healthy else 503)

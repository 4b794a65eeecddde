"""What runs beside the engine in `tradebot run` (and a one-shot `tradebot shutdown|wake`):
the presence heartbeat (trader/presence.py), the health view (trader/health.py), the HTTP
endpoint on $PORT (trader/health_server.py) and the operator-intent keeper
(trader/intent_keeper.py).

    services = AgentServices(settings, engine, replay=False)
    sink = make_sink(settings, engine, controller, **services.sink_options())
    await services.start(sink)           # listening on $PORT, heartbeat, reading the pin
    ... boot ...
    line = await services.recover_intent()   # sleep/pause applied before the first tick
    services.between_ticks()             # in the engine's loop
    await services.flush_pin(seconds)    # before the SHUTDOWN alert, which says if it failed
    await services.stop()

A replay neither reads nor writes the pinned state: it is a throwaway paper session, and the
pin belongs to the agent that trades.
"""

from collections.abc import Callable
from typing import Any

from loguru import logger

from trader.alerts import AlertSink
from trader.clock import SystemClock
from trader.config import ConfigError, Settings
from trader.engine import Engine
from trader.health import HealthMonitor, HealthView
from trader.health_server import HttpEndpoint
from trader.intent_keeper import IntentKeeper, IntentPin
from trader.presence import AgentPresence

INTENT_WAIT_SECONDS = 15.0     # at boot, for Telegram to show the pinned state
# At an exit without a stop signal, for the last change to reach the pin; after SIGTERM the
# pin gets the rest of the exit deadline instead (trader/app.py `_shut_down`).
PIN_FLUSH_SECONDS = 3.0


def pin_of(sink: AlertSink) -> IntentPin | None:
    """The sink's pinned state (the Telegram bot's `intent_pin`); None when headless."""
    pin: IntentPin | None = getattr(sink, "intent_pin", None)
    return pin


class AgentServices:
    """Owns the services; the engine and the sink stay the caller's."""

    def __init__(self, settings: Settings, engine: Engine, *, replay: bool) -> None:
        clock = SystemClock()                # wall-clock time, also in a replay
        self.engine = engine
        self.replay = replay
        self.clock = clock
        self.presence = AgentPresence(engine.store, lambda: engine.ticks, engine.wakeup, clock,
                                      replay=replay)
        self.monitor = HealthMonitor(engine, self.presence, clock)
        self.http = HttpEndpoint(settings.port, health=self.monitor.view) \
            if settings.serves_http else None
        self.keeper: IntentKeeper | None = None

    def sink_options(self) -> dict[str, Any]:
        health: Callable[[], HealthView] = self.monitor.view
        return {"http": self.http, "health": health}

    async def start(self, sink: AlertSink) -> None:
        """Raises ConfigError when $PORT cannot be listened on."""
        engine = self.engine
        self.keeper = IntentKeeper(engine.guards, engine.store, engine.alerter, self.clock,
                                   None if self.replay else pin_of(sink), engine.wakeup.set)
        on_connected = getattr(sink, "on_connected", None)   # the Telegram bot: read the
        if isinstance(on_connected, list) and not self.replay:   # pin once getMe answers
            on_connected.append(self.keeper.telegram_answered)
        self.keeper.start()
        self.presence.start()
        if self.http is not None:
            try:
                await self.http.start()
            except OSError as exc:
                raise ConfigError([f"PORT: cannot listen on port {self.http.port} "
                                   f"({exc.strerror or exc})"]) from None

    async def recover_intent(self, wait: float = INTENT_WAIT_SECONDS) -> str:
        """Apply the operator's intent (after boot, before the first tick); the STARTUP line."""
        assert self.keeper is not None
        return await self.keeper.recover(wait)

    def between_ticks(self) -> None:
        if self.keeper is not None:
            self.keeper.apply_late_pin()

    async def flush_pin(self, seconds: float) -> tuple[str, str] | None:
        """Wait (at most `seconds`) for Telegram to confirm the last sleep/pause change
        pinned. None when it did (or nothing is pinned); else the state that is not pinned
        ("asleep", "paused", "running") and why."""
        keeper = self.keeper
        if keeper is None or await keeper.flush(seconds):
            return None
        why = keeper.unpinned() or f"Telegram did not confirm it within {seconds:.0f} s"
        state = keeper.intent.run_state if keeper.intent is not None else "asleep"
        logger.warning("the last sleep/pause change is not pinned in Telegram state={} why={}",
                       state, why)
        return state, why

    async def stop(self) -> None:
        if self.keeper is not None:
            await self.keeper.stop()
        await self.presence.stop()
        if self.http is not None:
            await self.http.stop()

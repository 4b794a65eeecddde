"""`tradebot run`: wire the exchange, the database, the engine and Telegram in one loop.

The engine and the Telegram bot share one asyncio event loop. SIGTERM/SIGINT stop new
entries, let the current tick finish, flush alerts, say "going down" and exit 0 well within
the 30 s a Heroku-like host allows. Here: the start-up's order, the alert sink, the signals,
the heartbeat and the shutdown; the engine's set-up is trader/engine_setup.py, a replay's
candles trader/replay_input.py, the loops after boot trader/agent_loops.py.
"""

import asyncio
import signal
from collections.abc import Awaitable
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from loguru import logger

from trader.account_positions import unmanaged_text
from trader.agent_loops import live_loop, replay_loop
from trader.agent_services import PIN_FLUSH_SECONDS, AgentServices
from trader.alerts import Alert, AlertName, AlertSink
from trader.clock import Clock, ManualClock, SystemClock
from trader.commands import Command
from trader.config import ConfigError, Settings
from trader.control import Controller
from trader.domain import Candle
from trader.engine import Engine
from trader.engine_setup import Closer, build_engine, start_exchange
from trader.going_down import say_going_down
from trader.instance_lock import agent_lock
from trader.log_sink import LogAlertSink
from trader.presence import replay_db_path
from trader.replay_input import replay_candles
from trader.start_retry import until_done
from trader.startup import boot
from trader.stop_budget import StopSignal, bounded_after_stop

SHUTDOWN_BUDGET_SECONDS = 20.0
# After a stop signal, kept from the pin's wait for the alert flush (the SHUTDOWN message).
ALERT_FLUSH_RESERVE_SECONDS = 5.0
SINK_ENTRY_POINTS = "tradebot.alert_sinks"
HEARTBEAT_SECONDS = 60.0

T = TypeVar("T")


async def run_agent(settings: Settings, *, replay: bool = False, speed: float | None = None,
                    data: list[Path] | None = None, symbol: str | None = None,
                    progress: bool = False) -> int:
    """`tradebot run`: the agent until a signal; 0. One agent per database (the lock:
    trader/instance_lock.py); ConfigError when the configuration is wrong or another agent
    holds the database. `progress`: a replay logs how far it is (trader/replay_progress.py)."""
    if not (replay or settings.effective_feed == "replay"):
        _refuse_replay_options(settings, data=data, speed=speed, symbol=symbol)
        with agent_lock(settings.db_path):
            return await _run_locked(settings, SystemClock(), None)
    candles = replay_candles(settings, data, symbol)
    # A replay is a fresh paper session on a database of its own, so it never mixes with
    # (or rewinds) a continuing paper session in TRADEBOT_DB; the lock comes first, so a
    # second replay never deletes the database of one that is running.
    replay_db = replay_db_path(settings.db_path)
    with agent_lock(replay_db):
        for path in (replay_db, Path(f"{replay_db}-wal"), Path(f"{replay_db}-shm")):
            path.unlink(missing_ok=True)
        settings = settings.model_copy(update={"exchange": "paper", "symbols": sorted(candles),
                                               "db_path": replay_db})
        start = min(c[0].open_time for c in candles.values())
        return await _run_locked(settings, ManualClock(start, speed=speed or settings.replay_speed),
                                 candles, progress=progress)


def _refuse_replay_options(settings: Settings, **given: object) -> None:
    """ConfigError for a replay's option (--data, --speed, --symbol) given to the live agent:
    `--replay` was forgotten, and the agent must not trade the exchange instead."""
    named = next((f"--{name}" for name, value in given.items() if value is not None), None)
    if named:
        raise ConfigError([f"{named} is for a replay: add --replay (without it `tradebot run` "
                           f"is the live agent on {settings.exchange}, which would ignore it)"])


async def _run_locked(settings: Settings, clock: Clock,
                      candles: dict[str, list[Candle]] | None, *, progress: bool = False) -> int:
    replaying = candles is not None
    engine, close = await build_engine(settings, clock, start=False, replay=replaying)
    controller = Controller(engine)
    services = AgentServices(settings, engine, replay=replaying)
    sink = make_sink(settings, engine, controller, **services.sink_options())
    stop = StopSignal()
    _install_signal_handlers(stop)
    try:
        await services.start(sink)   # $PORT, heartbeat, reading the pinned state
        await sink.start()
    except BaseException:
        # e.g. a token Telegram rejects (ConfigError): release port, exchange and db
        await services.stop()
        await close()
        raise
    heartbeat = asyncio.create_task(_heartbeat(settings, engine, stop))
    stage = "exchange start-up"
    refusal: ConfigError | None = None
    try:
        if not await until_done(stage, engine, stop,
                                 lambda: start_exchange(engine.exchange, settings)):
            return 0
        stage = "start-up reconciliation"
        if not await until_done(stage, engine, stop, lambda: _boot(engine)):
            return 0
        stage = ""
        state = await _unless_stopped(services.recover_intent(), stop)   # sleep/pause first
        if state is None:
            return 0
        engine.alerter.publish(Alert(AlertName.STARTUP, f"tradebot started: {settings.mode}, "
                                     f"symbols {', '.join(engine.symbols)}, "
                                     f"feed {'replay' if replaying else settings.effective_feed}"
                                     f"\n{state}{unmanaged_text(engine)}",
                                     dedup_key=f"started:{datetime.now(UTC)}"),
                               clock.now())
        if replaying:
            await replay_loop(engine, controller, candles, clock, stop,  # type: ignore[arg-type]
                              progress=progress)
        else:
            await bounded_after_stop(live_loop(engine, controller, services, stop), stop)
    except ConfigError as exc:      # the exchange's answer at start-up: fix the setting
        refusal = exc
        raise
    finally:
        await _shut_down(engine, sink, heartbeat, close, services, stop, unfinished=stage,
                         refusal=refusal, interrupted=controller.running)
    return 0


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """`work`'s result, or None (work cancelled) when a stop signal comes first."""
    working, stopping = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not working.done():
        working.cancel()
        return None
    return working.result()


async def _boot(engine: Engine) -> None:
    await boot(engine)


def make_sink(settings: Settings, engine: Engine, controller: Controller,
              **options: Any) -> AlertSink:
    """Telegram when a token is configured (the `bot` package, found through the
    `tradebot.alert_sinks` entry point so the core never imports it), else the log.
    `options` go to the Telegram bot (trader/agent_services.py `sink_options`)."""
    # Telegram time (button expiry, stale commands) is wall-clock time, even in a replay.
    clock = SystemClock()
    token = settings.telegram_bot_token
    if token is None or not token.get_secret_value():
        sink: AlertSink = LogAlertSink(engine.alerter, engine.store, clock)
    else:
        found = entry_points(group=SINK_ENTRY_POINTS, name="telegram")
        if not found:
            raise ConfigError(["TELEGRAM_BOT_TOKEN: set, but the Telegram part of tradebot "
                               "is not installed (pip install -e .)"])
        factory = next(iter(found)).load()
        sink = factory(settings, controller, engine.alerter, engine.store, clock, **options)
    engine.alerter.sink = sink
    return sink


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_stop, stop, sig)


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    logger.warning("signal received signal={}: stopping entries, finishing the tick", sig.name)
    stop.set()


async def _heartbeat(settings: Settings, engine: Engine, stop: asyncio.Event) -> None:
    """Dead-man's switch: ping HEARTBEAT_URL while the engine ticks; silence means trouble."""
    if not settings.heartbeat_url:
        return
    last_ticks = -1
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while not stop.is_set():
            if engine.ticks != last_ticks:
                last_ticks = engine.ticks
                try:
                    async with session.get(settings.heartbeat_url) as response:
                        logger.debug("heartbeat status={}", response.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    logger.warning("heartbeat failed error={}", exc)
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_SECONDS)
            except TimeoutError:
                continue


async def _shut_down(engine: Engine, sink: AlertSink, heartbeat: asyncio.Task[None], close: Closer,
                     services: AgentServices, stop: StopSignal, *, unfinished: str = "",
                     refusal: ConfigError | None = None,
                     interrupted: Command | None = None) -> None:
    """`unfinished`: the start-up step that never succeeded ("" once trading began);
    `refusal`: the configuration error that ended it; `interrupted`: the command the stop
    cut short. After a stop signal the pin gets what is left of the exit promise but the
    alert flush's reserve (`stop.rest`), the alert flush the rest (`stop.left`). The pin
    goes first: the SHUTDOWN alert says when the last sleep/pause is not pinned, which a
    restart on a wiped disk would not know."""
    engine.stopping = True
    heartbeat.cancel()
    unpinned = await services.flush_pin(stop.rest(ALERT_FLUSH_RESERVE_SECONDS,
                                                  PIN_FLUSH_SECONDS))
    say_going_down(engine, unfinished, refusal, interrupted=interrupted, unpinned=unpinned)
    await services.stop()       # heartbeat (presence), $PORT: stopped
    try:
        await asyncio.wait_for(sink.stop(), stop.left(SHUTDOWN_BUDGET_SECONDS / 2))
    except TimeoutError:
        logger.error("alert flush timed out at shutdown; undelivered alerts stay in the outbox")
    await close()
    logger.info("stopped cleanly")

"""`tradebot run`: wire the exchange, the database, the engine and Telegram in one loop.

The engine and the Telegram bot share one asyncio event loop. SIGTERM/SIGINT stop new
entries, let the current tick finish, flush alerts, say "going down" and exit 0 well within
the 30 s a Heroku-like host allows.
"""

import asyncio
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from loguru import logger

from storage import Store
from storage.db import AGENT_LOCK_WAIT_SECONDS, SaveStateFailure
from trader.agent_services import PIN_FLUSH_SECONDS, AgentServices
from trader.alert_routing import AlertRouting
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName, AlertSink
from trader.circuit_memory import CircuitMemory
from trader.clock import Clock, ManualClock, SystemClock
from trader.commands import Command
from trader.config import ConfigError, Settings
from trader.config_hosts import rest_root
from trader.control import Controller
from trader.control_sleep import interrupted_flatten
from trader.domain import Candle
from trader.engine import Engine
from trader.exchange.base import Exchange, ExchangeError
from trader.exchange.errors import classify
from trader.going_down import StartRefused, say_going_down
from trader.instance_lock import agent_lock
from trader.log_sink import LogAlertSink
from trader.presence import replay_db_path
from trader.start_retry import until_done
from trader.startup import boot, reconcile
from trader.stop_budget import StopSignal, bounded_after_stop
from trader.trade_store import TradeStore

SHUTDOWN_BUDGET_SECONDS = 20.0
# After a stop signal, kept from the pin's wait for the alert flush (the SHUTDOWN message).
ALERT_FLUSH_RESERVE_SECONDS = 5.0
SINK_ENTRY_POINTS = "tradebot.alert_sinks"
HEARTBEAT_SECONDS = 60.0

Closer = Callable[[], Awaitable[None]]
T = TypeVar("T")


def make_exchange(settings: Settings, store: Store, clock: Clock) -> Exchange:
    if settings.exchange == "binance":
        from trader.exchange.binance import BinanceExchange
        return BinanceExchange(settings, clock)
    from trader.exchange.paper import PaperExchange
    from trader.exchange.sim import SimConfig
    # Orders take 50-500 ms (TRADEBOT_PAPER_LATENCY_MS, seeded by TRADEBOT_SEED) as on a real
    # exchange: in a replay the engine clock moves by it (real time / TRADEBOT_REPLAY_SPEED).
    latency = settings.paper_latency
    return PaperExchange(store, clock, SimConfig(balance=settings.paper_balance, seed=settings.seed,
                                                 default_leverage=settings.leverage,
                                                 latency_ms=latency or (0, 0)),
                         latency=latency is not None)


def rest_endpoint(settings: Settings) -> str:
    """Where the agent's REST requests go, as a Binance IP ban is scoped: the host
    python-binance calls, one spelling for each (trader/config_hosts.py `rest_root`)."""
    if settings.exchange != "binance":
        return settings.exchange
    return rest_root(settings)


async def build_engine(settings: Settings, clock: Clock | None = None, *,
                       start: bool = True, replay: bool = False) -> tuple[Engine, Closer]:
    """The engine on its exchange and database; `start=False` leaves `exchange.start` to the
    caller (the agent retries it until the exchange answers). A live agent's database keeps
    a rollback journal (a disk gone read-only must not kill it: storage/db.py); a replay's
    fresh file keeps WAL."""
    clock = clock or SystemClock()
    store = TradeStore.open(settings.db_path, wal=replay, lock_wait=AGENT_LOCK_WAIT_SECONDS)
    alerter = Alerter(store, clock, AlertRouting.from_settings(settings))
    exchange = make_exchange(settings, store, clock)
    # a Retry-After a previous process was given still holds (trader/circuit_memory.py)
    CircuitMemory(store, clock, rest_endpoint(settings)).attach(exchange)
    if start:
        await start_exchange(exchange, settings)
    from trader.strategy.base import load_strategy
    engine = Engine(settings, exchange, store, clock, alerter, load_strategy(settings.strategy))

    async def close() -> None:
        await exchange.close()
        store.close()
    return engine, close


async def start_exchange(exchange: Exchange, settings: Settings) -> None:
    """`exchange.start`, with the answers that mean "fix the configuration" as ConfigError."""
    from trader.exchange.binance_account import SetupRefused
    try:
        await exchange.start(list(settings.symbols), settings.leverage)
    except SetupRefused as exc:
        raise StartRefused([f"{exc.variable}: {exc}"], exc.held) from None
    except ExchangeError as exc:
        if not classify(exc, sending=False).credentials:
            raise
        raise StartRefused([f"BINANCE_API_KEY / BINANCE_API_SECRET: rejected by Binance "
                           f"(code {exc.code}: {exc.message}); check the key, its IP whitelist "
                           "and its Futures permission"]) from None


def replay_candles(settings: Settings, data: list[Path] | None,
                   symbol: str | None = None) -> dict[str, list[Candle]]:
    """The replay's candles: --data files, else TRADEBOT_REPLAY_FILE, else the bundled data.
    `symbol` (--symbol) names the symbol of files whose names do not say it (one series)."""
    from trader.backtest_input import candle_files
    from trader.market.replay import load_bundled
    paths = data or ([settings.replay_file] if settings.replay_file else [])
    if not paths:
        bundled = load_bundled()
        missing = [s for s in settings.symbols if s not in bundled]
        if missing:
            raise ConfigError([f"TRADEBOT_SYMBOLS: no bundled candles for {', '.join(missing)} "
                               f"(the bundled data has {', '.join(sorted(bundled))}); give "
                               "your own with --data FILE"])
        return _on_one_clock({s: bundled[s] for s in settings.symbols}, "TRADEBOT_SYMBOLS")
    source = "--data" if data else "TRADEBOT_REPLAY_FILE"
    try:
        # checked as `tradebot backtest --data` checks them (a symbol's several files one
        # series), then read into memory: a replay is paced, not long
        loaded = {name: list(rows) for name, rows in candle_files(paths, symbol).items()}
    except (OSError, ValueError) as exc:       # unreadable file, bad row, unknown time unit
        raise ConfigError([f"{source}: {exc}"]) from None
    return _on_one_clock(loaded, source)


def _on_one_clock(candles: dict[str, list[Candle]], source: str) -> dict[str, list[Candle]]:
    """`candles` when every symbol's candles share a moment with every other's; ConfigError
    otherwise (a replay runs one clock: a symbol before its first candle or after its last
    one is stale data, STALE_DATA, for the whole of the other's period)."""
    if len(candles) < 2:
        return candles
    spans = {s: (rows[0].open_time, rows[-1].open_time) for s, rows in candles.items()}
    if max(first for first, _ in spans.values()) <= min(last for _, last in spans.values()):
        return candles
    shown = ", ".join(f"{s} ({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)"
                      for s, (first, last) in spans.items())
    raise ConfigError([f"{source}: a replay runs one clock, and the candles of {shown} do "
                       "not all overlap; replay them one at a time (`tradebot backtest` runs "
                       "periods apart one after the other)"])


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
                                     f"\n{state}", dedup_key=f"started:{datetime.now(UTC)}"),
                               clock.now())
        if replaying:
            await _replay_loop(engine, controller, candles, clock, stop,  # type: ignore[arg-type]
                               progress=progress)
        else:
            await bounded_after_stop(_live_loop(engine, controller, services, stop), stop)
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


async def _replay_loop(engine: Engine, controller: Controller,
                       candles: dict[str, list[Candle]], clock: ManualClock,
                       stop: asyncio.Event, *, progress: bool = False) -> None:
    from trader.market.replay import ReplayFeed
    from trader.replay_progress import ReplayProgress
    status = ReplayProgress(candles, clock.speed, enabled=progress)
    paper = engine.exchange
    batches = ReplayFeed(candles, clock).__aiter__()
    while True:
        batch = await _next_or_stop(batches, stop, engine, controller)
        if batch is None:
            break
        for candle in batch:
            _feed_paper(paper, candle)
            engine.on_candle(candle)
        await controller.process()
        await engine.tick()
        engine.record_equity()
        status.advance(batch)
    logger.info("replay {} ticks={}", "stopped" if stop.is_set() else "finished", engine.ticks)


def _feed_paper(paper: Any, candle: Candle) -> None:
    """Move the simulated market. Its state save failing (counted by the write health:
    SAVE_STATE_FAILURE) must not end the replay: the market moved in memory, and the save
    is tried again with the next candle."""
    try:
        paper.feed_candle(candle)
    except SaveStateFailure as exc:
        logger.error("paper exchange state not saved symbol={} candle={} error={}",
                     candle.symbol, candle.open_time.isoformat(), exc.cause)


async def _next_or_stop(batches, stop: asyncio.Event, engine: Engine,  # type: ignore[no-untyped-def]
                        controller: Controller) -> list[Candle] | None:
    """The next replay batch, or None when the replay ends or a stop is requested (a paced
    replay may be waiting many seconds for its next candle: SIGTERM must not wait for it,
    and commands, from Telegram or `tradebot shutdown|wake`, are run while it waits)."""
    if stop.is_set():
        return None
    following = asyncio.ensure_future(anext(batches))
    while not following.done():
        stopping = asyncio.ensure_future(stop.wait())
        commands = asyncio.ensure_future(engine.wakeup.wait())
        await asyncio.wait({following, stopping, commands}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        commands.cancel()
        if stop.is_set() and not following.done():
            following.cancel()
            return None
        if not following.done():
            engine.wakeup.clear()
            await controller.process()
    try:
        return following.result()
    except StopAsyncIteration:
        return None


async def _live_loop(engine: Engine, controller: Controller, services: AgentServices,
                     stop: asyncio.Event) -> None:
    from trader.market.live import ExchangeFeed
    feed = ExchangeFeed(engine.exchange, engine.symbols, engine.settings.interval)
    last_reconcile = [engine.clock.now()]
    while not stop.is_set():
        services.between_ticks()    # a pinned state Telegram showed only after boot
        if (flatten := interrupted_flatten(engine)) is not None:
            await controller.run(flatten)    # a /shutdown's flatten a stop cut short: finished
        # Every part is contained on its own; this outer boundary is the last resort.
        await engine.contained("live loop", _live_iteration(engine, controller, feed,
                                                            last_reconcile))
        await engine.wait_next(stop, engine.settings.tick_seconds)


async def _live_iteration(engine: Engine, controller: Controller, feed,  # type: ignore[no-untyped-def]
                          last_reconcile: list[datetime]) -> None:
    candles = await engine.contained("candle feed", feed.poll(engine.clock.now())) or []
    for candle in candles:
        engine.on_candle(candle)
    await controller.process()
    await engine.tick()
    engine.record_equity()
    now = engine.clock.now()
    # Inside a Retry-After the reconciliation is refused unsent; the one a stream reconnect
    # asked for (what the gap hid: fills, funding, intents) waits for the window's end
    # instead of being spent on the refusal.
    closed = not engine.executor.circuit_open()
    if (engine.resync_due and closed) or \
            (now - last_reconcile[0]).total_seconds() >= engine.settings.reconcile_seconds:
        last_reconcile[0] = now
        engine.resync_due = engine.resync_due and not closed
        await engine.contained("periodic reconciliation", reconcile(engine))


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


async def _shut_down(engine: Engine, sink, heartbeat: asyncio.Task[None], close: Closer,  # type: ignore[no-untyped-def]
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

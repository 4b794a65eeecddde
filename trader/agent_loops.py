"""The agent's loops after boot: live (`live_loop`: the candle feed polled, the commands run,
the tick, the periodic reconciliation; then a wait for the next tick, an exchange event or a
command) and replay (`replay_loop`: the paper exchange fed batch by batch on the replay's
clock, the commands run while it waits). Both stop at the stop signal."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loguru import logger

from storage.db import SaveStateFailure
from trader.agent_services import AgentServices
from trader.clock import ManualClock
from trader.control import Controller
from trader.control_sleep import interrupted_flatten
from trader.domain import Candle
from trader.engine import Engine
from trader.startup import reconcile

if TYPE_CHECKING:   # imported where the live loop starts
    from trader.market.live import ExchangeFeed


async def replay_loop(engine: Engine, controller: Controller,
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


async def _next_or_stop(batches: AsyncIterator[list[Candle]], stop: asyncio.Event,
                        engine: Engine, controller: Controller) -> list[Candle] | None:
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


async def live_loop(engine: Engine, controller: Controller, services: AgentServices,
                    stop: asyncio.Event) -> None:
    from trader.market.live import ExchangeFeed
    feed = ExchangeFeed(engine.exchange, engine.symbols, engine.settings.interval)
    last_reconcile = [engine.clock.now()]
    while not stop.is_set():
        services.between_ticks()    # a pinned state Telegram showed only after boot
        if (flatten := interrupted_flatten(engine)) is not None:
            await controller.run(flatten)    # a /shutdown's flatten a stop cut short: finished
        # Every part is contained on its own; this outer boundary is the last resort.
        await engine.contained("live loop", live_iteration(engine, controller, feed,
                                                           last_reconcile))
        await engine.wait_next(stop, engine.settings.tick_seconds)


async def live_iteration(engine: Engine, controller: Controller, feed: "ExchangeFeed",
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

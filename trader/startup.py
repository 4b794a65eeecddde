"""Boot and periodic reconciliation: the exchange is the source of truth.

`boot(engine)` rebuilds the engine's view from the exchange and the database before any
trading (it works on an empty database, e.g. a wiped disk; see trader/reconcile.py for
the steps), and protects every open position first. `reconcile(engine)` re-reads every
symbol over REST into the order tracker, journals fills and probes unresolved intents; the
next tick's observation acts on what it found (adopt, finalize, repair).
"""

from dataclasses import dataclass

from loguru import logger

from storage import SaveStateFailure
from trader import display
from trader.alerts import Alert, AlertName
from trader.domain import IntentStatus
from trader.engine import Engine
from trader.reconcile import FILL_LOOKBACK


async def boot(engine: Engine) -> list[str]:
    """Rebuild from the exchange and the database; protect before trading. Returns every
    difference found (the CLI prints them); the STARTUP alert "boot reconciliation" names
    those no other alert told: a position adopted has its own alert (trader/adoption.py
    `adoption_alert`: "picked up its own LONG 0.5 again", or RECONCILE_MISMATCH), said once."""
    engine.load_state()
    engine.booted = False
    await _take_in_loaded(engine)
    lines = await reconcile(engine, report_untracked=False)   # _settle says what it adopted
    engine.known_orders = {o.client_id for s in _watched(engine)
                           for o in engine.tracker.ours_live(s)}
    told: list[str] = []
    for symbol in _watched(engine):
        settled = await _settle(engine, symbol)
        lines += settled.lines
        told += settled.told
    engine.booted = True
    await _read_back(engine)        # protected first; then what was missed
    await engine.contained("balance read at boot", read_balance(engine))
    if lines:
        now = engine.clock.now()
        engine.alerter.publish(Alert(AlertName.STARTUP, "boot reconciliation:\n" +
                                     "\n".join(lines), dedup_key=f"boot:{now.isoformat()}"), now)
    logger.info("boot reconciliation done differences={}", len(lines) + len(told))
    return told + lines


def _watched(engine: Engine) -> list[str]:
    """The traded symbols and those not traded whose position a /close took over."""
    return [*engine.symbols, *engine.taken_over]


async def _take_in_loaded(engine: Engine) -> None:
    """The open records of symbols not traded (a close a /close took over, left under way):
    their rules read, to be ticked until closed (trader/engine_parts.py `take_in`). One the
    exchange no longer lists is left to the operator: not ticked."""
    for symbol in list(engine.taken_over):
        if not await engine.take_in(symbol):
            engine.taken_over.remove(symbol)
            engine.positions.pop(symbol, None)
            logger.error("record of a symbol not traded not carried on: the exchange does "
                         "not list it symbol={}", symbol)


@dataclass(frozen=True, slots=True)
class Settled:
    """What boot found on one symbol: `told`, the adoption its own alert already said;
    `lines`, the rest (finalized, orphans swept)."""
    told: list[str]
    lines: list[str]


async def _settle(engine: Engine, symbol: str) -> Settled:
    """One symbol at boot: finalize, adopt or protect, then cancel our orphans."""
    view = await engine.view.view(symbol)
    record = engine.positions.get(symbol)
    told: list[str] = []
    lines: list[str] = []
    if record is None and view.position.side is not None:
        position = await engine.adopt(symbol, view)
        if position is not None and position.adopted:
            told.append(f"{symbol}: untracked {view.position.side.label} "
                        f"{display.number(view.position.size)} on the exchange: adopted and "
                        "protected")
        elif position is not None:
            told.append(f"{symbol}: its own {view.position.side.label} "
                        f"{display.number(view.position.size)} picked up again from the "
                        f"exchange ({position.key})")
    elif record is not None:
        if record.state.open and view.position.side is None:
            lines.append(f"{symbol}: the position is gone on the exchange: finalized "
                         f"({record.key})")
        elif record.state.open:
            record = await engine.keeper.adoption.past_ids_sent(record)
        position = await engine.protect(record, view)
    else:
        position = None
    lines += await engine.sweep_orphans(symbol, position)
    return Settled(told, lines)


async def reconcile(engine: Engine, *, report_untracked: bool = True) -> list[str]:
    """Every symbol over REST into the tracker, fills journaled, unknown intents probed.
    Returns what differs from the agent's records (also logged); `report_untracked=False`
    leaves out exchange positions without a record (boot settles and names them itself:
    adopted, or its own picked up again)."""
    for symbol in _watched(engine):
        await engine.view.snapshot(symbol)
    await sync_fills(engine)
    lines = await resolve_intents(engine)
    for symbol in engine.symbols:
        held = engine.tracker.position(symbol)
        record = engine.positions.get(symbol)
        if report_untracked and record is None and held is not None and held.side is not None:
            lines.append(f"{symbol}: untracked {held.side.label} {display.number(held.size)} "
                         "on the exchange")
    for line in lines:
        logger.warning("reconcile difference {}", line)
    if engine.booted:     # boot reads these last, once every position is protected
        await _read_back(engine)
    return lines


async def read_balance(engine: Engine, *, settled: bool = True) -> None:
    """Read the balance now, as a tick does when it is due (trader/balance_keeper.py).
    At boot: `tradebot run` runs the commands queued while it booted before its first
    tick, and answers /balance and /status at once, so a /long or /balance sent as soon as
    it started would find none. Before a manual entry (trader/control_entries.py), with
    `settled` False: the stream's events are not taken yet (a deposit heard and waiting is
    in the balance already: it does not raise the risk rule's peak). Raises what the read
    raises (ExchangeError, UnknownOutcome)."""
    balance = await engine.balance_keeper.refresh()
    engine.risk.update_fraction(balance, engine.symbols, settled=settled)


async def _read_back(engine: Engine) -> None:
    """What was missed: the account's asset mode (trader/margin_watch.py), money moved in or
    out (trader/transfer_backfill.py: at boot before the balance is read), funding paid while
    the stream was down or the agent away (trader/funding_backfill.py), and closes recorded
    while their fills could not be read (trader/close_readback.py)."""
    await engine.margin.read_mode()
    await engine.transfer_backfill.sync()
    await engine.funding_backfill.sync(engine.positions.values())
    await engine.close_readback.sync()


async def sync_fills(engine: Engine) -> int:
    """Journal every fill of the last two days (idempotent); returns how many were new."""
    since = engine.clock.now() - FILL_LOOKBACK
    added = 0
    for symbol in _watched(engine):
        for fill in await engine.executor.read(engine.exchange.fills, symbol, since):
            try:
                added += engine.store.record_fill(fill)
            except SaveStateFailure as exc:     # counted by the store's write health
                logger.error("fill not saved trade_id={} error={}", fill.trade_id, exc)
    if added:
        logger.info("fills journaled count={}", added)
    return added


async def resolve_intents(engine: Engine) -> list[str]:
    lines = []
    for intent in engine.store.unresolved_intents():
        if intent.symbol not in engine.symbols and intent.symbol not in engine.taken_over:
            continue
        resolved = await engine.executor.probe(intent)
        if resolved.status is not intent.status:
            # SENT: its answer was lost; ACKED: acknowledged, and ended since (by hand?).
            what = "an order whose answer was lost is" if intent.status is IntentStatus.SENT \
                else "an order acknowledged earlier has ended since: its intent is"
            lines.append(f"{intent.symbol}: {what} {resolved.status} (was {intent.status}) "
                         f"({intent.client_id})")
    return lines

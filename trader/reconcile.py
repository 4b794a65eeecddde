"""Exchange-truth reconciliation: at boot, and periodically as read-only observations.

Boot (works with an empty database, e.g. a fresh disk on a Heroku-like host):
  1. record every recent fill on the managed symbols (idempotent)
  2. resolve PENDING/SENT intents by client id
  3. positions on the exchange without a record are adopted (their key recovered from our
     orders or fills, so ids stay deterministic) and protected before any entry
  4. records whose position is gone are finalized with the reason their orders tell
  5. our orphan orders (no position behind them) are cancelled
  6. every difference is logged and reported in one RECONCILE_MISMATCH alert

The periodic pass only reads and compares; what it finds reaches the tick as observations
(the tick itself already starts from an exchange snapshot), and fills are journaled.
"""

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from trader.alerts import Alert, AlertName
from trader.domain import (
    ClientId,
    IntentStatus,
    OrderRole,
    Position,
    PositionState,
    position_key,
)

if TYPE_CHECKING:
    from trader.engine import Engine

FILL_LOOKBACK = timedelta(days=2)
ADOPT_SL_PCT = Decimal("0.01")
ADOPT_TP_PCT = Decimal("0.015")


async def boot(engine: "Engine") -> list[str]:
    """Rebuild the view from the exchange and the database; protect before trading."""
    engine.load_state()
    engine.booted = False
    lines = await reconcile_now(engine)
    engine.booted = True
    for symbol in engine.symbols:
        if symbol in engine.positions:
            await engine.protect_only(symbol)
    if lines:
        engine.alerter.publish(Alert(AlertName.RECONCILE_MISMATCH, "boot reconciliation:\n" +
                                     "\n".join(lines)), engine.clock.now())
    logger.info("boot reconciliation done differences={}", len(lines))
    return lines


async def reconcile_now(engine: "Engine") -> list[str]:
    lines: list[str] = []
    await sync_fills(engine)
    lines += await resolve_intents(engine)
    for symbol in engine.symbols:
        lines += await reconcile_symbol(engine, symbol)
    for line in lines:
        logger.warning("reconcile difference {}", line)
    return lines


async def sync_fills(engine: "Engine") -> int:
    since = engine.clock.now() - FILL_LOOKBACK
    added = 0
    for symbol in engine.symbols:
        fills = await engine.executor.read(engine.exchange.fills, symbol, since)
        for fill in fills:
            recorded = [False]

            def write(fill=fill, recorded=recorded) -> None:  # type: ignore[no-untyped-def]
                recorded[0] = engine.store.record_fill(fill)
            engine.persist(write, "fill")
            added += recorded[0]
    if added:
        logger.info("fills journaled count={}", added)
    return added


async def resolve_intents(engine: "Engine") -> list[str]:
    lines = []
    for intent in engine.store.unresolved_intents():
        if intent.symbol not in engine.symbols:
            continue
        resolved = await engine.executor.probe(intent)
        if resolved.status is not intent.status:
            lines.append(f"{intent.symbol}: intent {intent.client_id} {intent.status} -> "
                         f"{resolved.status}")
    return lines


async def reconcile_symbol(engine: "Engine", symbol: str) -> list[str]:
    lines: list[str] = []
    snap = await engine.observe(symbol)
    record = engine.positions.get(symbol)
    exchange_side = snap.position.side
    if record is not None and record.state is not PositionState.ENTERING and exchange_side is None:
        lines.append(f"{symbol}: position record {record.key} but none on the exchange: finalized")
        await engine.trading.finalize(record, snap)
        record = None
    if record is None and exchange_side is not None:
        if engine.settings.adopt_positions:
            adopted = await adopt(engine, symbol, snap)
            lines.append(f"{symbol}: untracked {exchange_side.label} {snap.position.size} on the "
                         f"exchange: adopted as {adopted.key}, protecting it")
            record = adopted
        else:
            lines.append(f"{symbol}: untracked {exchange_side.label} {snap.position.size} on the "
                         "exchange, NOT adopted (TRADEBOT_ADOPT_POSITIONS=false)")
    lines += await cancel_orphans(engine, symbol, record)
    return lines


def _recover_key(engine: "Engine", symbol: str, snap) -> tuple[str | None, dict[str, int]]:  # type: ignore[no-untyped-def]
    """Our own orders (or the latest entry fill) tell which position key the exchange holds."""
    seq: dict[str, int] = {}
    key = None
    for order in engine.our_orders(snap):
        parsed = ClientId.parse(order.client_id)
        if parsed and parsed.symbol == symbol:
            key = key or parsed.position_key
            if parsed.position_key == key:
                seq[parsed.role.value] = max(seq.get(parsed.role.value, 0), parsed.seq)
    if key is None:
        for fill in reversed(engine.store.fills(symbol)):
            parsed = ClientId.parse(fill.client_id)
            if parsed and parsed.role is OrderRole.ENTRY:
                key = parsed.position_key
                seq[OrderRole.ENTRY.value] = parsed.seq
                break
    return key, seq


async def adopt(engine: "Engine", symbol: str, snap) -> Position:  # type: ignore[no-untyped-def]
    """Take over a position the database does not know, with stops relative to the mark."""
    key, seq = _recover_key(engine, symbol, snap)
    known = engine.store.position(symbol, key) if key else None
    side = snap.position.side
    mark = snap.mark or snap.position.entry_price
    rules = engine.exchange.rules(symbol)
    if known is not None:
        position = known
    else:
        sl = mark * (1 - ADOPT_SL_PCT * side.sign)
        tp = mark * (1 + ADOPT_TP_PCT * side.sign)
        position = Position(
            symbol=symbol, key=key or "a" + position_key(engine.clock.now()), side=side,
            state=PositionState.ATTACHING, quantity=snap.position.size,
            entry_price=snap.position.entry_price, leverage=snap.position.leverage or engine.settings.leverage,
            opened_at=engine.clock.now(), sl_price=rules.round_price(sl, up=side.sign < 0),
            tp_price=rules.round_price(tp, up=side.sign > 0), initial_quantity=snap.position.size,
            adopted=key is None, time_limit=timedelta(minutes=engine.settings.time_in_trade_minutes))
    from dataclasses import replace
    merged_seq = {r: max(position.seq.get(r, 0), n) for r, n in {**position.seq, **seq}.items()}
    position = replace(position, state=PositionState.ATTACHING, quantity=snap.position.size,
                       seq=merged_seq)
    engine.save_position(position)
    return position


async def cancel_orphans(engine: "Engine", symbol: str, record: Position | None) -> list[str]:
    lines = []
    snap = engine.snapshots[symbol]
    for order in engine.our_orders(snap):
        parsed = ClientId.parse(order.client_id)
        if parsed is None:
            continue
        ours = record is not None and parsed.position_key == record.key
        if ours and not (order.role is OrderRole.ENTRY and record.state.open):
            continue
        final = await engine.executor.cancel_and_verify(symbol, order.client_id)
        status = final.status.value if final else "gone"
        lines.append(f"{symbol}: orphan order {order.client_id} cancelled -> {status}")
    return lines


async def periodic(engine: "Engine") -> list[str]:
    """The periodic pass: journal fills, probe unresolved intents, report what differs.

    It writes no position state: an untracked or vanished position is left to the next
    tick, which starts from the exchange's snapshot and adopts or finalizes there.
    """
    await sync_fills(engine)
    lines = await resolve_intents(engine)
    for symbol in engine.symbols:
        snap = await engine.observe(symbol)
        record = engine.positions.get(symbol)
        if record is None and snap.position.side is not None:
            lines.append(f"{symbol}: untracked {snap.position.side.label} {snap.position.size} "
                         "on the exchange")
        if record is not None and record.state.open and snap.position.side is None:
            lines.append(f"{symbol}: position {record.key} gone on the exchange")
    for line in lines:
        logger.warning("periodic reconcile difference {}", line)
    return lines


def unresolved_count(engine: "Engine") -> int:
    return sum(1 for i in engine.store.unresolved_intents() if i.status is IntentStatus.SENT)

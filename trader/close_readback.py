"""Closes whose result is unknown, read again until it is known.

A close is recorded even when its fills cannot be read at that moment (trader/closing.py:
the read failed and the stream had journaled no closing fill): the record then has no exit
price and no PnL, /trades shows "PnL unknown" and /pnl leaves it out (so is a close recorded
inside a Retry-After before the stream told its closing fill). Every POLL_EVERY, and at the
first round after each close (`mark_due`), `CloseReadback.sync` reads the account's trades
of each such close again (GET /fapi/v1/userTrades, through the executor's read policy), keeps
the position's own (trader/position_fills.py), and, once a closing fill is among them,
completes the record in one transaction (the record and its fills) and says so (CLOSE
alert). Its reason, decided with no closing fill known, is decided again from the fills: a
liquidation first recorded MANUAL is then said as one (EXCHANGE_CLOSE). Closes older than
LOOKBACK are left as they are: Binance serves a trade history of 7 days per request window
(https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Account-Trade-List).
The result, unknown at the close (which left the symbol's loss streak as it was), is counted
into the guards in the same transaction (trader/cooldowns.py `count_read_back`): a loss lengthens
the streak, and the cooldown once the streak reaches its length, as if known at the close.

So is a close whose fee charged in BNB was left unvalued (its price not read at the close:
inside a ban, a failed or slow read: trader/fee_prices.py): each round reads the price of
each such asset once, values those fees at it (the price then, said so), saves the record
and counts a result it made known, the same way. Within LOOKBACK too.

    readback = CloseReadback(exchange, executor, store, alerter, clock, guard_book)
    completed = await readback.sync()      # [] unless due and something was found
"""

from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from loguru import logger

from storage import SaveStateFailure
from trader import cooldowns
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.close_record import (
    AFTER_EXCHANGE_CLOSE,
    close_reason,
    closed,
    lost,
    over_closed,
    result_unknown,
)
from trader.display import duration, money, number
from trader.domain import CloseReason, Fill
from trader.evolve import evolve
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome, clock_offset
from trader.executor import Executor
from trader.fee_prices import fee_prices
from trader.fee_value import assets_to_value, fees_text, unvalued, valued_later
from trader.guard_book import STATE_KEY, GuardBook, dump_state
from trader.guard_state import GuardState
from trader.position import Position
from trader.position_fills import fills_of, read_from
from trader.trade_store import TradeStore

POLL_EVERY = timedelta(minutes=5)
LOOKBACK = timedelta(days=7)


class CloseReadback:
    def __init__(self, exchange: Exchange, executor: Executor, store: TradeStore,
                 alerter: Alerter, clock: Clock, guard_book: GuardBook) -> None:
        self.exchange = exchange
        self.executor = executor
        self.store = store
        self.alerter = alerter
        self.clock = clock
        self.guards = guard_book
        self.counted_keys: set[str] = set()       # closes whose result the guards counted
        self.next_at: datetime | None = None      # None: due at once

    def mark_due(self) -> None:
        """Due at the next round (after each close, trader/engine.py): one recorded with an
        unknown result (its fills unreadable, or recorded inside a Retry-After from the
        stream alone: trader/closing.py) is completed once the fills can be read, not
        up to POLL_EVERY after the last round."""
        self.next_at = None

    async def sync(self) -> list[Position]:
        """Read the unknown closes again when due; the records completed. An exchange error
        leaves the rest for the next round (logged); a failed write alerts through the
        store's write health and is tried again then."""
        now = self.clock.now()
        if self.next_at is not None and now < self.next_at:
            return []
        self.next_at = now + POLL_EVERY
        completed: list[Position] = []
        unread: set[str] = set()              # assets whose price this round could not read
        offset = clock_offset(self.exchange)
        for position in self._unknown(now):
            try:
                trades = await self.executor.read(self.exchange.fills, position.symbol,
                                                  read_from(position, offset))
            except (ExchangeError, UnknownOutcome) as exc:
                logger.warning("close read-back deferred symbol={} key={} error={}",
                               position.symbol, position.key, exc)
                return completed              # the fee prices too: the next round
            fills = fills_of(position, trades, position.closed_at, offset)
            # priced now: the close's own moment is past (a fee in BNB not priced: unvalued,
            # valued by a later round)
            assets = assets_to_value(fills)
            prices = await fee_prices(self.exchange, self.executor, assets, [])
            unread.update(set(assets) - prices.keys())
            final = self._complete(position, fills, prices)
            if final is not None:
                completed.append(final)
        return completed + await self._value_fees(now, unread)

    def _unknown(self, now: datetime) -> list[Position]:
        return [p for p in self.store.closed_positions(now - LOOKBACK) if result_unknown(p)]

    async def _value_fees(self, now: datetime, unread: set[str]) -> list[Position]:
        """The closes whose result is known but a fee in another asset (BNB) unvalued,
        valued at its price read now (one read per asset a round, none for those `unread`
        already; not read: the next round)."""
        closes = [p for p in self.store.closed_positions(now - LOOKBACK)
                  if not result_unknown(p) and unvalued(p.fees_in_kind)]
        assets = sorted({fee.asset for p in closes for fee in unvalued(p.fees_in_kind)}
                        - unread)
        if not assets:
            return []
        prices = await fee_prices(self.exchange, self.executor, assets, [])
        valued = []
        for position in closes:
            fees, in_kind = valued_later(position.fees, position.fees_in_kind, prices)
            if in_kind == position.fees_in_kind:
                continue                      # its asset's price not read
            final = evolve(position, fees=fees, fees_in_kind=in_kind)
            if self._save(position, final, []):
                self._announce_fees(final, prices)
                valued.append(final)
        return valued

    def _complete(self, position: Position, fills: list[Fill],
                  prices: dict[str, Decimal]) -> Position | None:
        assert position.closed_at is not None and position.close_reason is not None
        # Its reason was decided with no closing fill known (why its result is unknown): a
        # liquidation recorded inside a ban before its "autoclose-" fill was heard reads
        # MANUAL. Decided again from the fills, by the finalizer's rules (the fills' client
        # ids name the order that closed it; the legs' orders as read then are not kept).
        why = close_reason(position, None, None, position.close_reason, fills)
        # What the exchange held after the close is not kept with it: a reversal by hand is
        # read from the fills (their closing part beyond what its opening part opened).
        final = closed(position, position.closed_at, why, fills, over_closed(position, fills),
                       prices)
        if final.exit_price is None:
            return None                       # still no closing fill: next round
        if not self._save(position, final, fills):
            return None
        self._announce(final, position.close_reason)
        return final

    def _save(self, was: Position, final: Position, fills: list[Fill]) -> bool:
        """`final` (and `fills`) in one transaction with the guards, its result counted in
        them if it became known (`_counted`); False when the write failed (the write
        health alerts; the next round tries again)."""
        now = self.clock.now()
        counted = self._counted(was, final, now)
        try:
            with self.store.transaction(f"close read back {final.symbol} {final.key}"):
                self.store.save_position(final)
                for fill in fills:
                    self.store.record_fill(fill)
                # with the record: once it is known, it is never counted again
                if counted is not None:
                    self.store.put_later(STATE_KEY, partial(dump_state, counted), now)
        except SaveStateFailure as exc:
            logger.error("close read back but not saved symbol={} key={} error={}",
                         final.symbol, final.key, exc)
            return False
        if counted is not None:
            self.guards.state = counted
            self.counted_keys.add(final.key)
        return True

    def _counted(self, was: Position, final: Position, now: datetime) -> GuardState | None:
        """The guards with `final`'s result counted into its symbol's loss streak, after the
        symbol's closes recorded since (counted at their own close, or at their own read-back
        when it came first: an unknown one is left out until then). None when there is
        nothing to count: `was` (the record as it stood) counted already at its close, or
        `final`'s result not known either (a fee in BNB still unvalued)."""
        final_closed_at = final.closed_at
        assert final_closed_at is not None
        # Counted once: a read-back rolled back with a command's unit of work (storage/
        # unit_of_work.py) is read again from the database, with the guards in memory
        # already counting it (a restart forgets both, and counts it from the disk again).
        if final.key in self.counted_keys:
            return self.guards.state
        loss = lost(final)
        if lost(was) is not None or loss is None:
            return None
        later = sorted((p for p in self.store.closed_positions(final_closed_at)
                        if p.symbol == final.symbol and p.key != final.key),
                       key=lambda p: p.closed_at or final_closed_at)
        last = later[-1] if later else final
        assert last.closed_at is not None
        known = [result for result in map(lost, later) if result is not None]
        return cooldowns.count_read_back(self.guards.state, final.symbol, loss, known,
                                      last.closed_at, now, self.guards.config,
                                      base=last.cooldown)

    def _announce(self, final: Position, told: CloseReason) -> None:
        """"... is now read: exit, PnL"; a close the fills show the exchange made (told
        otherwise at the close) is said as one: EXCHANGE_CLOSE with its advice."""
        assert final.exit_price is not None and final.closed_at is not None
        why = final.close_reason or told
        net = final.realized_pnl - final.fees
        result = (f"exit {number(final.exit_price)}, PnL {money(net, signed=True)} USDT net of "
                  f"fees{_in_kind(final)}, held {duration(final.closed_at - final.opened_at)} "
                  f"({final.key})")
        when = f"{final.closed_at:%m-%d %H:%M} UTC"
        name = AlertName.CLOSE
        if why.exchange_initiated and why is not told:
            name = AlertName.EXCHANGE_CLOSE
            text = (f"{final.symbol}: the {final.side.label} {number(final.traded_quantity)} "
                    f"recorded {when} as closed ({told.value}) before its fills could be "
                    f"read was closed BY THE EXCHANGE ({why.value}); now read: {result}. "
                    f"{AFTER_EXCHANGE_CLOSE[why]}")
        else:
            text = f"{final.symbol}: the {final.side.label} closed {when} ({why.value}) is " \
                   f"now read: {result}"
        logger.info("close read back symbol={} key={} reason={} told={} exit={} net={}",
                    final.symbol, final.key, why, told, final.exit_price, net)
        self.alerter.publish(Alert(name, text, final.symbol,
                                   dedup_key=f"close-read:{final.key}"), self.clock.now())

    def _announce_fees(self, final: Position, prices: dict[str, Decimal]) -> None:
        """"the fees of the LONG closed 12-02 07:00 UTC (STOP_LOSS) are now valued at the
        price of 12-02 07:05 UTC (BNB 600 USDT; not read at the close): PnL ...": the price
        is later than the close's, said so."""
        assert final.closed_at is not None
        now = self.clock.now()
        net = final.realized_pnl - final.fees
        at = ", ".join(f"{asset} {number(prices[asset])} USDT" for asset in sorted(prices))
        why = final.close_reason.value if final.close_reason else "?"
        text = (f"{final.symbol}: the fees of the {final.side.label} closed "
                f"{final.closed_at:%m-%d %H:%M} UTC ({why}) are now valued at the price of "
                f"{now:%m-%d %H:%M} UTC ({at}; not read at the close): PnL "
                f"{money(net, signed=True)} USDT net of fees{_in_kind(final)} ({final.key})")
        logger.info("close fees valued later symbol={} key={} fees={} prices={}",
                    final.symbol, final.key, final.fees, prices)
        self.alerter.publish(Alert(AlertName.CLOSE, text, final.symbol,
                                   dedup_key=f"close-fees:{final.key}"), now)


def _in_kind(final: Position) -> str:
    """"" when every fee was in USDT; else how the fees charged in BNB were counted."""
    if not final.fees_in_kind:
        return ""
    return f" ({fees_text(final.fees, final.fees_in_kind)})"

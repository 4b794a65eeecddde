"""The account's margin settings as entries need them, watched while the agent runs: the
asset mode (Binance's Multi-Assets mode allows cross margin only) and ISOLATED margin on
each traded symbol: the agent risks each position on its own isolated margin.

- Multi-Assets mode on (told by the user-data stream, ACCOUNT_CONFIG_UPDATE "ai"; or read
  with GET /fapi/v1/multiAssetsMargin at boot, after a stream outage, and every
  reconciliation while polling): no new entry, one ACCOUNT_MODE alert (CRITICAL) saying how
  to switch it off; protection and exits go on. Off again: ACCOUNT_MODE_RESTORED, entries
  allowed again, each symbol set to ISOLATED before its next entry.
- A symbol switched to cross margin (ACCOUNT_UPDATE "mt"): flat, ISOLATED is set again before
  its next entry (`before_entry`; a refusal blocks that symbol's entries for
  REFUSAL_PAUSE, said once as MARGIN_TYPE); with a position open, said once and left as it
  is (Binance refuses a margin type change while a position is open, -4048).

    watch = MarginWatch(exchange, alerter, clock, ["BTCUSDT"])
    watch.on_events(exchange.drain_events(), held=lambda symbol: symbol in positions)
    refusal = watch.entry_refusal("BTCUSDT") or await watch.before_entry("BTCUSDT")
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from loguru import logger

from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.exchange.base import (
    AssetModeChanged,
    Exchange,
    ExchangeError,
    ExchangeEvent,
    MarginTypeChanged,
    MultiAssetsMode,
    UnknownOutcome,
)

MULTI_ASSETS_BLOCK = ("the Binance account is in Multi-Assets mode (cross margin only; the "
                      "agent risks each position on its own isolated margin): switch it off in "
                      "the Binance app (Futures > Preferences > Asset Mode: Single-Asset Mode); "
                      "entries resume by themselves")
REFUSAL_PAUSE = timedelta(minutes=1)   # a symbol ISOLATED was refused for: asked again after


class MarginWatch:
    """What the account's margin settings allow; see the module docstring."""

    def __init__(self, exchange: Exchange, alerter: Alerter, clock: Clock,
                 symbols: Sequence[str]) -> None:
        self.exchange, self.alerter, self.clock = exchange, alerter, clock
        self.symbols = frozenset(symbols)
        self.multi_assets = False
        self.mode_unread = True       # read the mode at the next chance (boot, a reconnect)
        # Symbols set ISOLATED (or told so) since the stream was last trusted: no request
        # before their next entry while the stream would tell a change.
        self._isolated: set[str] = set()
        self._refused: dict[str, tuple[str, datetime]] = {}   # symbol -> (why, when)
        self._cross_said: set[str] = set()     # held on cross: said once
        exchange.on_stream_reconnect(self.stream_reconnected)

    def stream_reconnected(self) -> None:
        """What the gap hid is not known: the mode is read again, ISOLATED set again."""
        self.mode_unread = True
        self._isolated.clear()

    # --- what the exchange told ---------------------------------------------------------
    def on_events(self, events: Iterable[ExchangeEvent], held: Callable[[str], bool]) -> None:
        """The asset mode and margin types among `events`; `held`: whether the agent keeps
        a position on a symbol."""
        for event in events:
            if isinstance(event, AssetModeChanged):
                self._asset_mode(event.multi_assets, "told by Binance's user-data stream")
            elif isinstance(event, MarginTypeChanged) and event.symbol in self.symbols:
                self._margin_type(event, event.held or held(event.symbol))

    async def read_mode(self) -> None:
        """GET the asset mode when the stream may have missed a change (`mode_unread`, or
        polling: every call); a failed read is logged and tried at the next call."""
        if not self.mode_unread and self.exchange.streaming:
            return
        try:
            multi_assets = await self.exchange.multi_assets_mode()
        except (ExchangeError, UnknownOutcome) as exc:
            logger.warning("multi-assets mode not read error={}", exc)
            return
        self.mode_unread = False
        self._asset_mode(multi_assets, "read from Binance")

    def _asset_mode(self, multi_assets: bool, how: str) -> None:
        if multi_assets == self.multi_assets:
            return
        self.multi_assets = multi_assets
        self._isolated.clear()      # every symbol is on cross under it: set again before entry
        now = self.clock.now()
        if multi_assets:
            logger.error("account in Multi-Assets mode: entries blocked how={}", how)
            self.alerter.publish(Alert(
                AlertName.ACCOUNT_MODE,
                f"Binance account in Multi-Assets mode ({how}): it allows cross margin only. "
                "No new entries; open positions stay protected and managed as usual. Switch "
                "it off in the Binance app (Futures > Preferences > Asset Mode: Single-Asset "
                "Mode) and entries resume by themselves.",
                dedup_key=f"multi-assets:{now.isoformat()}"), now)     # said per change
        else:
            logger.info("account in Single-Asset mode again: entries allowed how={}", how)
            self.alerter.publish(Alert(
                AlertName.ACCOUNT_MODE_RESTORED,
                f"Binance account in Single-Asset mode again ({how}): entries allowed again, "
                "each symbol set to ISOLATED margin before its next entry.",
                dedup_key=f"single-asset:{now.isoformat()}"), now)

    def _margin_type(self, event: MarginTypeChanged, held: bool) -> None:
        symbol = event.symbol
        if event.isolated:
            self._isolated.add(symbol)
            self._cross_said.discard(symbol)
            return
        self._isolated.discard(symbol)
        if not held:
            logger.warning("margin type changed to cross on the exchange symbol={}; ISOLATED "
                           "is set again before its next entry", symbol)
            return
        if symbol in self._cross_said:
            return
        self._cross_said.add(symbol)
        logger.warning("open position on cross margin symbol={}: left as it is", symbol)
        self.alerter.publish(Alert(
            AlertName.MARGIN_TYPE,
            f"{symbol}: the open position is on cross margin (changed on the exchange). The "
            "agent leaves it so (Binance refuses a change while a position is open) and keeps "
            "protecting it; its next entry is set to ISOLATED first.", symbol,
            dedup_key=f"cross:{symbol}"), self.clock.now())

    # --- entries ---------------------------------------------------------------------
    def entry_refusal(self, symbol: str) -> str:
        """Why the margin settings allow no entry on `symbol` now; "" when they do."""
        if self.multi_assets:
            return MULTI_ASSETS_BLOCK
        refused = self._refused.get(symbol)
        if refused is not None and self.clock.now() - refused[1] < REFUSAL_PAUSE:
            return (f"{symbol}: Binance refused ISOLATED margin ({refused[0]}); asked again "
                    "before the next entry")
        return ""

    def blocks(self) -> list[str]:
        """Every refusal in force, once (/status)."""
        lines = [self.entry_refusal(symbol) for symbol in sorted(self.symbols)]
        return list(dict.fromkeys(line for line in lines if line))

    async def before_entry(self, symbol: str) -> str:
        """ISOLATED on `symbol` before an entry is sent: asked unless it was set (or told
        so) while the stream has been live since. "" when it is; else why no entry."""
        if symbol in self._isolated and self.exchange.streaming:
            return ""
        try:
            await self.exchange.set_isolated_margin(symbol)
        except MultiAssetsMode:
            self._asset_mode(True, "Binance refused ISOLATED margin, -4168")
            return MULTI_ASSETS_BLOCK
        except ExchangeError as exc:
            return self._refusal(symbol, f"code {exc.code}: {exc.message}")
        except UnknownOutcome as exc:       # not known set: no entry on cross, asked again
            logger.warning("margin type not confirmed symbol={} error={}", symbol, exc)
            return f"{symbol}: ISOLATED margin not confirmed by Binance ({exc}); try again"
        self._isolated.add(symbol)
        self._cross_said.discard(symbol)
        if self._refused.pop(symbol, None) is not None:
            logger.info("margin type ISOLATED set after a refusal symbol={}", symbol)
        return ""

    def _refusal(self, symbol: str, why: str) -> str:
        said = symbol in self._refused
        self._refused[symbol] = (why, self.clock.now())
        logger.warning("margin type ISOLATED refused symbol={} error={}", symbol, why)
        if not said:
            self.alerter.publish(Alert(
                AlertName.MARGIN_TYPE,
                f"{symbol}: Binance refused ISOLATED margin ({why}). No entries on {symbol} "
                "while it is refused (asked again before each entry, once a minute at most); "
                "open positions stay protected.", symbol, dedup_key=f"isolated:{symbol}"),
                self.clock.now())
        return self.entry_refusal(symbol)

"""The Binance USD-M account's settings as the agent needs them: symbol rules, one-way
position mode, the asset mode (Multi-Assets or not), ISOLATED margin, leverage, and the
listenKey of the user-data stream.

Symbol rules (tick size, step size, minimum notional, trading status) are loaded at start
and re-read by `refresh_rules()` (the engine calls it hourly, after a stream reconnect and
after a filter rejection). Requests go through `BinanceRest` (binance_rest.py).
"""

from dataclasses import replace

from loguru import logger

from trader.exchange import binance_codec as codec
from trader.exchange.base import ExchangeError, MultiAssetsMode
from trader.exchange.binance_fields import Fields, flag, malformed
from trader.exchange.binance_rest import BinanceRest
from trader.exchange.errors import Outcome, classify
from trader.exchange.ratelimit import RateLimits
from trader.symbol_rules import SymbolRules, describe_rules_change

NOT_LISTED = "NOT_LISTED"   # our status for a symbol exchangeInfo no longer lists
HEDGE_MODE_MESSAGE = ("account is in hedge mode; switch to one-way mode in Binance "
                      "(Preferences > Position Mode) - refusing to trade")
# -4168 to POST /fapi/v1/marginType ISOLATED: Multi-Assets mode allows cross margin only
# (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/
# Change-Multi-Assets-Mode); the agent risks each position on its own isolated margin.
MULTI_ASSETS_CODE = -4168
# GET /fapi/v1/multiAssetsMargin: "Request Weight 30" (https://developers.binance.com/docs/
# derivatives/usds-margined-futures/account/rest-api/Get-Current-Multi-Assets-Mode)
MULTI_ASSETS_READ_WEIGHT = 30


class SetupRefused(Exception):
    """start() refuses to trade: hedge mode, or a symbol Binance doesn't list (Multi-Assets
    mode is no refusal: the engine starts with entries blocked, trader/margin_watch.py).
    `variable` names the configuration the operator has to change."""

    def __init__(self, message: str, variable: str) -> None:
        super().__init__(message)
        self.variable = variable


PING_TIMEOUT = 5.0     # seconds: the gate's retries of one read span about this


class BinanceAccount:
    """Symbol rules, position mode, margin type, leverage and listen keys;
    `BinanceExchange` delegates to it.

        account = BinanceAccount(rest)
        await account.load_rules(["BTCUSDT"])
        await account.refuse_hedge_mode()
    """

    def __init__(self, rest: BinanceRest) -> None:
        self._rest = rest
        self.rules: dict[str, SymbolRules] = {}
        self.leverage: dict[str, int] = {}   # symbol -> the leverage Binance answered

    async def ping(self) -> None:
        """GET /fapi/v1/ping, weight 1 ("Test Connectivity", https://developers.binance.com/
        docs/derivatives/usds-margined-futures/market-data/rest-api/Test-Connectivity): sent
        once, not retried, bounded (PING_TIMEOUT): its answer, or none, is what it is for."""
        await self._rest.call("ping", self._rest.client.futures_ping, once=True,
                              timeout=PING_TIMEOUT)

    async def load_rules(self, symbols: list[str]) -> None:
        """Read exchangeInfo: the symbols' rules and the account's rate limits.
        SetupRefused if Binance doesn't list one of `symbols`."""
        info = await self._rest.call("exchange info", self._rest.client.futures_exchange_info)
        try:
            self.rules = codec.rules_from_exchange_info(info, symbols)
        except KeyError as exc:
            raise SetupRefused(exc.args[0], "TRADEBOT_SYMBOLS") from exc
        self._rest.limiter.set_limits(RateLimits.from_exchange_info(info.get("rateLimits", [])))

    async def refresh_rules(self) -> list[str]:
        """Re-read exchangeInfo; returns one line per symbol whose rules changed. A symbol
        Binance no longer lists (delisted) keeps its last rules with the status NOT_LISTED:
        not TRADING, so no entry, while its open position keeps its protection (a stop
        replaced after a filter rejection still finds its rules)."""
        info = await self._rest.call("exchange info", self._rest.client.futures_exchange_info)
        fresh = codec.rules_from_exchange_info(info, list(self.rules), missing_ok=True)
        for symbol, known in self.rules.items():
            if symbol not in fresh:
                fresh[symbol] = replace(known, status=NOT_LISTED)
        changes = [f"{symbol}: {describe_rules_change(self.rules[symbol], rules)}"
                   for symbol, rules in fresh.items() if rules != self.rules[symbol]]
        self.rules = fresh
        for line in changes:
            logger.warning("binance symbol rules changed {}", line)
        return changes

    async def learn_rules(self, symbol: str) -> bool:
        """The rules of `symbol` too, read from exchangeInfo (weight 1) unless known: a
        symbol not traded whose position a /close closes. False when Binance USD-M does not
        list it."""
        if symbol in self.rules:
            return True
        info = await self._rest.call("exchange info", self._rest.client.futures_exchange_info)
        found = codec.rules_from_exchange_info(info, [symbol], missing_ok=True)
        self.rules.update(found)
        return symbol in found

    async def refuse_hedge_mode(self) -> None:
        """SetupRefused when the account is in hedge mode (dualSidePosition): the agent
        trades one-way positions only."""
        mode = await self._rest.call("position mode",
                                     self._rest.client.futures_get_position_mode)
        if flag(mode.get("dualSidePosition")):
            logger.error("refusing to trade: {}", HEDGE_MODE_MESSAGE)
            raise SetupRefused(HEDGE_MODE_MESSAGE, "BINANCE_API_KEY (the account's position mode)")

    async def multi_assets_mode(self) -> bool:
        """GET /fapi/v1/multiAssetsMargin: {"multiAssetsMargin": true} is Multi-Assets mode,
        false Single-Asset mode (the page above)."""
        answer = await self._rest.call("multi-assets mode",
                                       self._rest.client.futures_get_multi_assets_mode,
                                       weight=MULTI_ASSETS_READ_WEIGHT)
        fields = Fields(answer, "GET /fapi/v1/multiAssetsMargin")
        if not fields.present("multiAssetsMargin"):
            raise malformed(fields.where, "multiAssetsMargin", answer)
        return fields.flag("multiAssetsMargin")

    async def set_isolated(self, symbol: str) -> None:
        """POST /fapi/v1/marginType ISOLATED. Already ISOLATED (-4046) is success; a position
        open (-4048) leaves it as it is (said); MultiAssetsMode for -4168; any other refusal
        raises."""
        try:
            await self._rest.call("margin type", self._rest.client.futures_change_margin_type,
                                  symbol=symbol, marginType="ISOLATED")
        except ExchangeError as exc:
            if exc.code == MULTI_ASSETS_CODE:
                raise MultiAssetsMode(exc.code, exc.message, exc.http_status) from exc
            outcome = classify(exc, sending=False).outcome
            if outcome is Outcome.NOOP:          # already ISOLATED
                return
            if outcome is not Outcome.SKIPPED:   # anything but "a position is open"
                raise
            logger.warning("margin type stays as is: a position is open symbol={} error={}",
                           symbol, exc)
        else:
            logger.info("margin type set symbol={} margin=ISOLATED", symbol)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """POST /fapi/v1/leverage; the leverage Binance answers is the one remembered (it may
        cap what was asked for a large notional)."""
        raw = await self._rest.call("leverage", self._rest.client.futures_change_leverage,
                                    symbol=symbol, leverage=leverage)
        fields = Fields(raw, "POST /fapi/v1/leverage")
        answered = fields.leverage("leverage") if fields.present("leverage") else leverage
        if answered != leverage:
            logger.warning("binance leverage differs from the request symbol={} asked={} set={}",
                           symbol, leverage, answered)
        self.leverage[symbol] = answered

    async def read_leverage(self, symbol: str) -> int | None:
        """GET /fapi/v1/symbolConfig (weight 5): the leverage the symbol has on the account,
        remembered as `set_leverage` remembers its answer, and returned. For a symbol whose
        leverage start() leaves as it is (an open position): positionRisk v3 has no
        leverage field. A refusal or an unreadable answer is logged and leaves it as it
        was (None; the start goes on)."""
        try:
            rows = await self._rest.call("symbol config", self._rest.client.futures_symbol_config,
                                         weight=5, symbol=symbol)
            leverage = codec.leverage_from_symbol_config(rows, symbol)
        except ExchangeError as exc:
            logger.warning("leverage not read symbol={} error={}", symbol, exc)
            return None
        if leverage is not None:
            self.leverage[symbol] = leverage
        return leverage

    async def create_listen_key(self) -> str:
        return str(await self._rest.call("create listen key",
                                         self._rest.client.futures_stream_get_listen_key))

    async def keep_alive_listen_key(self, listen_key: str) -> str | None:
        """PUT listenKey; the key Binance says it extended (None if the answer names none).
        A key other than ours means ours expired and the stream must reconnect."""
        answer = await self._rest.call("keep alive listen key",
                                       self._rest.client.futures_stream_keepalive,
                                       listenKey=listen_key)
        key = answer.get("listenKey") if isinstance(answer, dict) else None
        return str(key) if key else None

"""The agent's configuration: one `Settings` read from the environment and `.env`.

Every variable is documented in `.env.example`. Names listed in ARCHITECTURE.md are a
public contract (operators and outside tests rely on them); the rest use the
`TRADEBOT_` prefix. `load_settings` turns validation errors into one readable line per
variable so the CLI can stop with exit code 2 and no traceback.
"""

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trader.alerts import AlertName
from trader.config_problems import problem_line
from trader.config_values import alert_name, parse_latency_ms
from trader.config_webhook import webhook_url_problem
from trader.management import DEFAULT_TRAILING_DISTANCE, TrailingDistance
from trader.url_mask import SECRET_PATH_URLS, masked_url

SYMBOL_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# While its streams are down the agent polls: each tick reads every symbol over REST, ~11
# weight a symbol (README, Performance: 330 per symbol-minute at the 2 s tick). The gate's
# pacing on Binance's usage headers (trader/exchange/ratelimit.py) keeps any tick under the
# limit, but a tick shorter than this spends the whole budget on one symbol's reads, and the
# pacing then slows every request, orders included (rv15: 0.01 s, 2,156 of 2,400 a minute,
# the last tick 22 s old). The floor does not grow with the symbols: the pacing holds them
# (50 symbols at the 2 s default use 34 % with healthy streams: benchmarks/rest_budget.py).
BINANCE_TICK_FLOOR = 0.2


class ConfigError(Exception):
    """Bad configuration: `problems` holds one human-readable line per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _env(name: str, default: Any, description: str, **kwargs: Any) -> Any:
    return Field(default, validation_alias=AliasChoices(name), description=description, **kwargs)


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
        allow_inf_nan=False,        # "inf" is no period, no balance, no fraction
    )

    # --- exchange -----------------------------------------------------------------
    exchange: Literal["paper", "binance"] = _env(
        "TRADEBOT_EXCHANGE", "paper", "paper (simulated, offline) or binance")
    binance_api_key: SecretStr | None = _env("BINANCE_API_KEY", None, "Binance API key")
    binance_api_secret: SecretStr | None = _env("BINANCE_API_SECRET", None, "Binance API secret")
    binance_testnet: bool = _env("BINANCE_TESTNET", True, "use the Binance futures testnet")
    binance_futures_url: str | None = _env(
        "BINANCE_FUTURES_URL", None, "REST host root, e.g. https://fapi.binance.com; set it "
        "with BINANCE_FUTURES_WS_URL (unset: Binance's, BINANCE_TESTNET chooses)")
    binance_futures_ws_url: str | None = _env(
        "BINANCE_FUTURES_WS_URL", None, "stream host root with trailing slash, e.g. "
        "wss://fstream.binance.com/; set it with BINANCE_FUTURES_URL (one alone: a warning)")
    recv_window_ms: int = _env("TRADEBOT_RECV_WINDOW_MS", 5000, "recvWindow sent with signed requests", ge=1000, le=60000)

    # --- telegram -----------------------------------------------------------------
    telegram_bot_token: SecretStr | None = _env("TELEGRAM_BOT_TOKEN", None, "bot token; unset = headless")
    telegram_allowed_chat_ids: Annotated[list[int], NoDecode] = _env(
        "TELEGRAM_ALLOWED_CHAT_IDS", [], "comma-separated chat ids that may command the bot")
    telegram_allowed_user_ids: Annotated[list[int], NoDecode] = _env(
        "TELEGRAM_ALLOWED_USER_IDS", [], "comma-separated user ids; when set, only these users are obeyed")
    telegram_api_url: str | None = _env(
        "TELEGRAM_API_URL", None, "Bot API base, e.g. https://api.telegram.org/bot (token appended)")
    telegram_webhook_url: str | None = _env(
        "TELEGRAM_WEBHOOK_URL", None, "public HTTPS URL (port 443, 80, 88 or 8443); set = "
        "webhook mode on $PORT instead of polling")
    port: int = _env("PORT", 8080, "set: the agent serves GET /health on it, and Telegram's "
                     "updates in webhook mode (web dynos set it)", ge=1, le=65535)
    alerts_silent: Annotated[list[AlertName], NoDecode] = _env(
        "TRADEBOT_ALERTS_SILENT", [], "comma-separated alert names sent without sound "
        "(INFO ones always are; CRITICAL ones never), e.g. FILL,CLOSE")
    alerts_off: Annotated[list[AlertName], NoDecode] = _env(
        "TRADEBOT_ALERTS_OFF", [], "comma-separated alert names not sent at all (still in "
        "/alerts; never a CRITICAL one), e.g. DAILY_SUMMARY")

    # --- agent --------------------------------------------------------------------
    symbols: Annotated[list[str], NoDecode] = _env(
        "TRADEBOT_SYMBOLS", ["BTCUSDT"], "comma-separated USD-M symbols to trade")
    db_path: Path = _env("TRADEBOT_DB", Path("data/tradebot.db"), "SQLite database file")
    feed: Literal["exchange", "replay"] | None = _env(
        "TRADEBOT_FEED", None, "exchange or replay; default: replay for paper, exchange for binance")
    replay_file: Path | None = _env(
        "TRADEBOT_REPLAY_FILE", None, "candle CSV for the replay feed; default: the bundled data")
    replay_speed: float = _env("TRADEBOT_REPLAY_SPEED", 60.0, "replay speed (feed seconds per wall second)", gt=0,
                               le=1_000_000)
    interval: str = _env("TRADEBOT_INTERVAL", "1m", "candle interval for the live feed")
    strategy: str = _env("TRADEBOT_STRATEGY", "default",
                         "default, or your own strategy class as module:Class (see README)")
    tick_seconds: float = _env("TRADEBOT_TICK_SECONDS", 2.0, "engine tick period in live mode; on "
                         "Binance at least 0.2 s",
                         gt=0, le=60)
    reconcile_seconds: float = _env("TRADEBOT_RECONCILE_SECONDS", 60.0, "periodic reconciliation period", ge=3,
                             le=3600)
    stream_verify_seconds: float = _env(
        "TRADEBOT_STREAM_VERIFY_SECONDS", 5.0,
        "open orders of a symbol holding a position read over REST at least this often, "
        "even with a healthy stream (a silent stream is caught within it)", ge=1, le=60)
    adopt_positions: bool = _env("TRADEBOT_ADOPT_POSITIONS", True, "adopt and protect unknown positions at boot")
    heartbeat_url: str | None = _env("HEARTBEAT_URL", None, "healthchecks-style URL pinged every minute")
    log_json: bool = _env("LOG_JSON", False, "1 = JSON log lines")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _env("LOG_LEVEL", "INFO", "log level")
    seed: int = _env("TRADEBOT_SEED", 7, "seed for the paper exchange's latency and slippage")
    paper_balance: Decimal = _env("TRADEBOT_PAPER_BALANCE", Decimal("10000"), "paper wallet in USDT", gt=0,
                                   le=Decimal("1e12"))
    paper_latency_ms: str = _env(
        "TRADEBOT_PAPER_LATENCY_MS", "50-500", "paper order latency in ms, drawn per order in "
        "low-high (seeded by TRADEBOT_SEED); 0 = off. `tradebot backtest` never simulates it")
    invariant_check_ticks: int = _env(
        "TRADEBOT_INVARIANT_CHECK_TICKS", 30, "ticks between two checks of the live invariant "
        "monitor (30 x 2 s = 1 min; a violation is alerted when two checks in a row see it); "
        "0 = off", ge=0, le=3600)

    # --- risk ---------------------------------------------------------------------
    leverage: int = _env("TRADEBOT_LEVERAGE", 5, "leverage set at entry and kept for the position", ge=1, le=125)
    risk_base: Decimal = _env("TRADEBOT_RISK_BASE", Decimal("0.025"), "base risk fraction per trade", gt=0, le=Decimal("0.03"))
    max_heat: Decimal = _env("TRADEBOT_MAX_HEAT", Decimal("0.06"), "max total open risk / equity", gt=0, le=1)
    max_position_pct: Decimal = _env(
        "TRADEBOT_MAX_POSITION_PCT", Decimal("0.5"), "max notional per symbol / (equity x leverage)", gt=0, le=1)
    time_in_trade_minutes: int = _env(
        "TRADEBOT_TIME_IN_TRADE_MINUTES", 40, "time-in-trade exit: minutes a position may stay "
        "open (a strategy may only ask for less)", ge=20, le=60)
    cooldown_minutes: int = _env("TRADEBOT_COOLDOWN_MINUTES", 5, "cooldown after a close", ge=0, le=1440)
    breaker_minutes: int = _env("TRADEBOT_BREAKER_MINUTES", 10, "entry pause when a breaker trips", ge=5, le=10)
    emergency_cooldown_minutes: int = _env(
        "TRADEBOT_EMERGENCY_COOLDOWN_MINUTES", 30, "no entries this long after /wake from an emergency",
        ge=0, le=1440)
    sentinel_debounce_seconds: float = _env(
        "TRADEBOT_SENTINEL_DEBOUNCE_SECONDS", 60.0, "a leg must be missing this long before repair", ge=0,
        le=300)
    sentinel_debounce_cycles: int = _env(
        "TRADEBOT_SENTINEL_DEBOUNCE_CYCLES", 3, "and for this many ticks", ge=1, le=100)
    # Binance answers a placement in tens of ms, a few hundred when busy; the HTTP client
    # gives up after 10 s. Past this bound the position's only stop is treated as lost for
    # the backup rule (trader/stop_backup.py): the gap is this long, not the timeout.
    stop_backup_after_seconds: float = _env(
        "TRADEBOT_STOP_BACKUP_AFTER_SECONDS", 1.5, "a stop placement for an unprotected "
        "position still unanswered this long gets a backup stop", ge=0.5, le=9)
    # A triggered stop's MARKET order fills within a second or two and the stream says so at
    # once; with the stream silently dead the fill shows within TRADEBOT_STREAM_VERIFY_SECONDS
    # (5 s) + a tick. Past this bound the trigger is taken as stuck (trader/stuck_trigger.py).
    trigger_grace_seconds: float = _env(
        "TRADEBOT_TRIGGER_GRACE_SECONDS", 10.0, "a stop-loss the mark has passed this long, "
        "its position still open, triggered without executing: closed at market", ge=1, le=60)
    breakeven_attempts: int = _env("TRADEBOT_BREAKEVEN_ATTEMPTS", 5, "bounded attempts to move the stop", ge=1, le=20)

    # --- exits (trader/management.py) -------------------------------------------------
    exit_plan: Literal["one", "two"] = _env(
        "TRADEBOT_EXIT_PLAN", "one", "one: one take-profit + a market partial close; two: TP1 "
        "and TP2 on the exchange, the stop to breakeven once TP1 fills, then the trail")
    tp1_fraction: Decimal = _env(
        "TRADEBOT_TP1_FRACTION", Decimal("0.5"), "exit plan two: the part of the position TP1 "
        "closes", gt=0, lt=1)
    tp1_r: Decimal = _env(
        "TRADEBOT_TP1_R", Decimal("1.0"), "exit plan two: TP1's distance from the entry in "
        "stop distances (1.0 = as far as the stop)", gt=0, le=10)
    trailing_distance: str = _env(
        "TRADEBOT_TRAILING_DISTANCE", str(DEFAULT_TRAILING_DISTANCE), "how far the trailing stop stays behind the best "
        "price: a percentage (0.3%) or an ATR(14) multiple (1.5atr)")

    # --- entries (trader/maker_entry.py) ------------------------------------------------
    entry_mode: Literal["market", "maker"] = _env(
        "TRADEBOT_ENTRY_MODE", "market", "market: a MARKET entry (taker fee); maker: a "
        "post-only limit at the touch (maker fee), re-quoted, then the fallback")
    maker_requotes: int = _env(
        "TRADEBOT_MAKER_REQUOTES", 3, "maker entries: re-quotes at a new touch after the first", ge=0, le=20)
    maker_timeout_seconds: float = _env(
        "TRADEBOT_MAKER_TIMEOUT_SECONDS", 30.0, "maker entries: time for all quotes, then the fallback", gt=0, le=600)
    maker_fallback: Literal["market", "cancel"] = _env(
        "TRADEBOT_MAKER_FALLBACK", "market", "maker entries at the timeout: market (the rest at "
        "market) or cancel (keep what filled)")
    spread_min_ticks: int = _env(
        "TRADEBOT_SPREAD_MIN_TICKS", 2, "the spread breaker trips only on a spread wider than "
        "this many ticks (and above 1.2 x its rolling median)", ge=0, le=1000)
    correlation_threshold: Decimal = _env(
        "TRADEBOT_CORRELATION_THRESHOLD", Decimal("0.7"), "open positions whose recent returns "
        "(in their direction) correlate above this are one cluster: together they may risk one "
        "position's budget; 1 = off", ge=0, le=1)
    correlation_window: int = _env(
        "TRADEBOT_CORRELATION_WINDOW", 100, "closed candles the correlation is measured over",
        ge=10, le=500)
    confidence_sizing: bool = _env(
        "TRADEBOT_CONFIDENCE_SIZING", False, "scale each entry's risk by its signal's confidence")
    confidence_min_scale: Decimal = _env(
        "TRADEBOT_CONFIDENCE_MIN_SCALE", Decimal("0.5"), "with confidence sizing: the risk scale "
        "at confidence 0 (1.0 at confidence 1, linear between)", ge=Decimal("0.1"), le=1)

    @field_validator("telegram_allowed_chat_ids", "telegram_allowed_user_ids", mode="before")
    @classmethod
    def _csv_ints(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("symbols", mode="before")
    @classmethod
    def _csv_symbols(cls, value: Any) -> Any:
        symbols = [s.upper() for s in _split_csv(value)]
        if not symbols:
            raise ValueError("at least one symbol is required, e.g. BTCUSDT")
        for symbol in symbols:
            if not set(symbol) <= SYMBOL_CHARS or not symbol.endswith("USDT") or len(symbol) > 16:
                raise ValueError(f"{symbol!r} is not a USD-M symbol like BTCUSDT")
        twice = sorted({symbol for symbol in symbols if symbols.count(symbol) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed twice")
        return symbols

    @field_validator("alerts_silent", "alerts_off", mode="before")
    @classmethod
    def _alert_names(cls, value: Any) -> Any:
        return [alert_name(name) for name in _split_csv(value)]

    @field_validator("trailing_distance")
    @classmethod
    def _trailing_distance(cls, value: str) -> str:
        return str(TrailingDistance.parse(value))

    @field_validator("strategy")
    @classmethod
    def _strategy_ref(cls, value: str) -> str:
        if value != "default" and (value.count(":") != 1 or not all(value.split(":"))):
            raise ValueError("must be 'default' or module:Class, e.g. mystrategies.breakout:Breakout")
        return value

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        if value not in INTERVAL_SECONDS:
            raise ValueError(f"must be one of {', '.join(INTERVAL_SECONDS)}")
        return value

    @field_validator("paper_latency_ms")
    @classmethod
    def _latency_range(cls, value: str) -> str:
        parse_latency_ms(value)
        return value

    @field_validator("invariant_check_ticks")
    @classmethod
    def _check_spacing(cls, value: int) -> int:
        if 0 < value < 3:
            raise ValueError("must be 0 (off) or at least 3: two checks in a row must be "
                             "further apart than a stop replaced new-first (two ticks)")
        return value

    @field_validator("binance_futures_url", "telegram_api_url", "telegram_webhook_url", "heartbeat_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("binance_futures_ws_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value if value is None or value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        problems = []
        if self.exchange == "binance":
            missing = [name for name, value in (("BINANCE_API_KEY", self.binance_api_key),
                                                ("BINANCE_API_SECRET", self.binance_api_secret))
                       if value is None or not value.get_secret_value()]
            if missing:
                problems.append(f"{' and '.join(missing)} required when TRADEBOT_EXCHANGE=binance")
        if self.exchange == "paper" and self.feed == "exchange":
            problems.append("TRADEBOT_FEED=exchange needs TRADEBOT_EXCHANGE=binance: the paper "
                            "exchange has no live market data (use TRADEBOT_FEED=replay)")
        wanted = [name for name, value in (
            ("TELEGRAM_ALLOWED_CHAT_IDS", self.telegram_allowed_chat_ids),
            ("TELEGRAM_ALLOWED_USER_IDS", self.telegram_allowed_user_ids),
            ("TELEGRAM_WEBHOOK_URL", self.telegram_webhook_url)) if value]
        if wanted and (self.telegram_bot_token is None
                       or not self.telegram_bot_token.get_secret_value()):
            problems.append(f"TELEGRAM_BOT_TOKEN required when {' and '.join(wanted)} is set "
                            "(without it no alert reaches Telegram and no command is read)")
        webhook = webhook_url_problem(self.telegram_webhook_url, self.telegram_api_url)
        if webhook:
            problems.append(webhook)
        if self.telegram_bot_token is not None and not self.telegram_allowed_chat_ids:
            problems.append("TELEGRAM_ALLOWED_CHAT_IDS required when TELEGRAM_BOT_TOKEN is set "
                            "(otherwise nobody may command the bot)")
        problems += self._tick_floor()
        if problems:
            raise ConfigError(problems)
        return self

    def _tick_floor(self) -> list[str]:
        """On Binance, TRADEBOT_TICK_SECONDS at least BINANCE_TICK_FLOOR. The paper exchange
        sends no request: any tick."""
        if self.exchange != "binance" or self.tick_seconds >= BINANCE_TICK_FLOOR:
            return []
        return [f"TRADEBOT_TICK_SECONDS: must be at least {BINANCE_TICK_FLOOR:g} s on Binance "
                f"(got '{self.tick_seconds:g}'): while its streams are down the agent reads "
                "every symbol each tick (~11 weight), and a shorter tick spends Binance's 2,400 "
                "weight a minute on one symbol's reads, which then slow every request, orders "
                "included; allowed: "
                f"{BINANCE_TICK_FLOOR:g} to 60"]

    @property
    def paper_by_default(self) -> str | None:
        """A warning when Binance keys are set but TRADEBOT_EXCHANGE is not: the paper
        exchange runs (the offline default), which the operator may not expect."""
        keys = any(key is not None and key.get_secret_value()
                   for key in (self.binance_api_key, self.binance_api_secret))
        if not keys or "exchange" in self.model_fields_set:
            return None
        return ("paper exchange: TRADEBOT_EXCHANGE is not set; set TRADEBOT_EXCHANGE=binance "
                "to trade")

    @property
    def paper_latency(self) -> tuple[int, int] | None:
        """TRADEBOT_PAPER_LATENCY_MS as (low, high) milliseconds; None when off."""
        return parse_latency_ms(self.paper_latency_ms)

    @property
    def effective_feed(self) -> str:
        return self.feed or ("replay" if self.exchange == "paper" else "exchange")

    @property
    def mode(self) -> str:
        if self.exchange == "paper":
            return f"paper ({self.paper_by_default})" if self.paper_by_default else "paper"
        return "live (testnet)" if self.binance_testnet else "live (MAINNET)"

    def masked(self) -> dict[str, str]:
        """The effective configuration by env name, secrets masked, for `tradebot config`."""
        shown: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = "********" if value.get_secret_value() else "(empty)"
            elif isinstance(value, list):
                text = ",".join(str(v) for v in value)
            elif name in SECRET_PATH_URLS and value:
                text = masked_url(value, hide_path=True)
            elif name.endswith("_url") and value:
                text = masked_url(value)
            elif name == "port" and not self.serves_http:
                text = f"{value} (unset: nothing listens; a web dyno sets it)"
            else:
                text = self._unset(name) if value is None else str(value)
            shown[env_name(name, field)] = text
        return shown

    @property
    def serves_http(self) -> bool:
        """Whether the agent listens on `port` (GET /health, the webhook): where the platform
        asks for a port (web dynos set $PORT), or for the webhook, which needs one anyway."""
        return "port" in self.model_fields_set or bool(self.telegram_webhook_url)

    def _unset(self, name: str) -> str:
        """What an unset variable means when it has an effective value, else ""."""
        if name == "feed":
            return f"{self.effective_feed} (default for {self.exchange})"
        if name == "replay_file":
            return "(the bundled data)" if self.effective_feed == "replay" else ""
        return ""


INTERVAL_SECONDS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600}
def env_name(field_name: str, field: Any = None) -> str:
    field = field or Settings.model_fields[field_name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field_name.upper()


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raise ConfigError with one line per bad variable.

    Overrides may use field names (`symbols=`) or env names (`TRADEBOT_SYMBOLS=`); only the
    env names are read from the environment and `.env`.
    """
    by_env_name = {(env_name(k) if k in Settings.model_fields else k): v
                   for k, v in overrides.items()}
    try:
        return Settings(**by_env_name)
    except ConfigError:
        raise
    except ValidationError as exc:
        names = {name: env_name(name, field) for name, field in Settings.model_fields.items()}
        fields = {key: field for name, field in Settings.model_fields.items()
                  for key in (name, names[name])}
        raise ConfigError([problem_line(err, names, fields) for err in exc.errors()]) from None

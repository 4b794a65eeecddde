"""The engine set up on its exchange and database (`build_engine`: `tradebot run`, the CLI
relay's own engine), the exchange chosen by the settings (Binance, or the paper exchange),
and its start with the answers that mean "fix the configuration" (`start_exchange`)."""

from collections.abc import Awaitable, Callable

from storage import Store
from storage.db import AGENT_LOCK_WAIT_SECONDS
from trader.alert_routing import AlertRouting
from trader.alerter import Alerter
from trader.circuit_memory import CircuitMemory
from trader.clock import Clock, SystemClock
from trader.config import Settings
from trader.config_hosts import rest_root
from trader.engine import Engine
from trader.exchange.base import Exchange, ExchangeError
from trader.exchange.errors import classify
from trader.going_down import StartRefused
from trader.trade_store import TradeStore

Closer = Callable[[], Awaitable[None]]


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
        raise StartRefused([f"{exc.variable}: {exc}"]) from None
    except ExchangeError as exc:
        if not classify(exc, sending=False).credentials:
            raise
        raise StartRefused([f"BINANCE_API_KEY / BINANCE_API_SECRET: rejected by Binance "
                           f"(code {exc.code}: {exc.message}); check the key, its IP whitelist "
                           "and its Futures permission"]) from None

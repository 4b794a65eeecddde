"""What decided a backtest's result, written into its report so two run folders can be told
apart later: the strategy (its name, TRADEBOT_STRATEGY and every parameter) and every
setting that changes a backtest, by its variable name (README, Configuration).

    run_settings(settings, strategy)
    # {"TRADEBOT_STRATEGY": "default", "strategy.name": "donchian-ema-breakout",
    #  "strategy.channel": "30", ..., "TRADEBOT_RISK_BASE": "0.025", "TRADEBOT_LEVERAGE": "5", ...}

Left out: what no backtest uses (where the agent runs, how it logs and talks, secrets) and
what the report states anyway (symbols). Values are text as `tradebot config` prints them.
"""

from dataclasses import fields, is_dataclass

from trader.config import Settings, env_name
from trader.strategy.base import Strategy

# Set by the backtest itself (symbols, database, paper exchange) or no part of a backtest.
NOT_IN_A_BACKTEST = {"exchange", "symbols", "db_path", "feed", "replay_file", "replay_speed",
                     "port", "log_json", "log_level", "heartbeat_url", "interval",
                     "tick_seconds", "paper_latency_ms",
                     # the simulator fills a triggered stop at once (trader/exchange/sim.py):
                     # none is ever stuck, so the grace of one changes no backtest
                     "trigger_grace_seconds"}
# Credentials and where the live agent connects: never part of a backtest (nor of a report).
CONNECTION = {"binance_api_key", "binance_api_secret", "binance_testnet", "binance_futures_url",
              "binance_futures_ws_url", "recv_window_ms", "telegram_bot_token",
              "telegram_allowed_chat_ids", "telegram_allowed_user_ids", "telegram_api_url",
              "telegram_webhook_url", "alerts_silent", "alerts_off", "heartbeat_url",
              "exchange", "feed"}


def run_settings(settings: Settings, strategy: Strategy) -> dict[str, str]:
    """The strategy's parameters (`strategy.FIELD`, as `tradebot sweep` names them) and the
    settings that change a backtest, by variable name, as text."""
    shown = settings.masked()
    chosen = {"TRADEBOT_STRATEGY": settings.strategy, "strategy.name": str(strategy.name)}
    if is_dataclass(strategy):
        chosen |= {f"strategy.{item.name}": str(getattr(strategy, item.name))
                   for item in fields(strategy) if item.name != "name"}
    for name, info in Settings.model_fields.items():
        if name not in NOT_IN_A_BACKTEST and name not in CONNECTION:
            variable = env_name(name, info)
            chosen.setdefault(variable, shown[variable])
    return chosen


def changed_settings(settings: Settings, strategy: Strategy) -> dict[str, str]:
    """`run_settings` where it differs from the defaults (the report's text shows these)."""
    defaults = Settings.model_construct()           # the defaults, none of the environment
    default = run_settings(defaults, type(strategy)()) if _builds_without_arguments(strategy) \
        else run_settings(defaults, strategy)
    return {name: value for name, value in run_settings(settings, strategy).items()
            if default.get(name) != value or name == "strategy.name"}


def _builds_without_arguments(strategy: Strategy) -> bool:
    try:
        type(strategy)()
    except TypeError:
        return False
    return True

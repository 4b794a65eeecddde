"""Every numeric setting is finite and bounded, the tick keeps the REST budget, a name close
to a setting's is warned, and keys without TRADEBOT_EXCHANGE are said (review rv15, F1-F4)."""

from decimal import Decimal
from pathlib import Path

import annotated_types
import pytest

from trader.config import ConfigError, Settings, env_name, load_settings
from trader.config_names import unknown_variable_warnings

NUMERIC = [name for name, field in Settings.model_fields.items()
           if field.annotation in (int, float, Decimal)]
UNBOUNDED_ON_PURPOSE = {"seed"}     # any integer seeds the paper exchange's randomness


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, field in Settings.model_fields.items():
        monkeypatch.delenv(env_name(name, field), raising=False)
    monkeypatch.chdir(tmp_path)


def problems_for(**env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **env)
    return caught.value.problems


def _finite_fields() -> list[str]:
    return [name for name in NUMERIC if Settings.model_fields[name].annotation is not int]


@pytest.mark.parametrize("field", _finite_fields())
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
def test_no_setting_takes_infinity_or_nan(field: str, value: str) -> None:
    variable = env_name(field)
    [line] = problems_for(**{variable: value})
    assert line.startswith(f"{variable}: ") and f"(got '{value}')" in line
    assert "allowed:" in line and "\n" not in line


@pytest.mark.parametrize("field", [name for name in NUMERIC if name not in UNBOUNDED_ON_PURPOSE])
def test_every_numeric_setting_has_an_upper_bound(field: str) -> None:
    metadata = Settings.model_fields[field].metadata
    assert any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in metadata), field


@pytest.mark.parametrize(("variable", "value", "allowed"), [
    ("TRADEBOT_EMERGENCY_COOLDOWN_MINUTES", "1000000000", "allowed: 0 to 1440"),
    ("TRADEBOT_SENTINEL_DEBOUNCE_SECONDS", "1000000000", "allowed: 0 to 300"),
    ("TRADEBOT_SENTINEL_DEBOUNCE_CYCLES", "1000000000", "allowed: 1 to 100"),
    ("TRADEBOT_RECONCILE_SECONDS", "1000000", "allowed: 3 to 3600"),
    ("TRADEBOT_RECONCILE_SECONDS", "0.01", "allowed: 3 to 3600"),
    ("TRADEBOT_LEVERAGE", "0", "allowed: 1 to 125"),
    ("TRADEBOT_TP1_FRACTION", "1", "allowed: more than 0, less than 1"),
])
def test_an_absurd_value_is_named_with_the_allowed_range(variable: str, value: str,
                                                         allowed: str) -> None:
    [line] = problems_for(**{variable: value})
    assert line.startswith(f"{variable}: ") and f"(got '{value}')" in line
    assert line.endswith(allowed)


# --- the tick and the REST budget -----------------------------------------------------------

BINANCE = {"TRADEBOT_EXCHANGE": "binance", "BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}


def test_a_tick_too_short_for_the_rest_budget_is_refused() -> None:
    [line] = problems_for(TRADEBOT_TICK_SECONDS="0.01", **BINANCE)
    assert line.startswith("TRADEBOT_TICK_SECONDS: ")
    assert "(got '0.01')" in line and "at least 0.2 s on Binance" in line and "2,400" in line
    assert line.endswith("allowed: 0.2 to 60")


def test_the_tick_floor_does_not_grow_with_the_symbols() -> None:
    """The gate's pacing on Binance's usage headers holds many symbols' reads under the
    limit: an operator's 2 s tick with many symbols stays a valid configuration."""
    many = ",".join(f"{base}USDT" for base in ("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE"))
    assert load_settings(_env_file=None, TRADEBOT_TICK_SECONDS="0.2", **BINANCE
                         ).tick_seconds == 0.2
    assert load_settings(_env_file=None, TRADEBOT_TICK_SECONDS="2", TRADEBOT_SYMBOLS=many,
                         **BINANCE).tick_seconds == 2.0
    assert load_settings(_env_file=None, TRADEBOT_SYMBOLS=many, **BINANCE).tick_seconds == 2.0


def test_the_paper_exchange_sends_no_request_and_takes_any_tick() -> None:
    assert load_settings(_env_file=None, TRADEBOT_TICK_SECONDS="0.01").tick_seconds == 0.01


# --- close misspellings of every name the agent reads ---------------------------------------

@pytest.mark.parametrize(("typo", "meant"), [
    ("HEARTBEAT_URI", "HEARTBEAT_URL"), ("HEARTBEATURL", "HEARTBEAT_URL"),
    ("LOG_JSN", "LOG_JSON"), ("LOGLEVEL", "LOG_LEVEL"), ("TRADBOT_SYMBOLS", "TRADEBOT_SYMBOLS"),
    ("BINANC_API_KEY", "BINANCE_API_KEY"),
])
def test_a_close_misspelling_of_any_setting_is_warned(typo: str, meant: str) -> None:
    assert unknown_variable_warnings({typo: "1"}, None) == [
        f"{typo} is not a setting and is ignored; did you mean {meant}?"]


def test_a_close_misspelling_in_the_dotenv_file_is_warned(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("HEARTBEAT_URI=https://hc-ping.com/x\n", encoding="utf-8")
    assert unknown_variable_warnings({}, dotenv) == [
        "HEARTBEAT_URI (in .env) is not a setting and is ignored; did you mean HEARTBEAT_URL?"]


def test_unrelated_environment_variables_pass_quietly() -> None:
    environ = {name: "1" for name in (
        "PATH", "HOME", "DYNO", "PORT", "PORT0", "HOSTNAME", "LANG", "PWD", "SHELL", "USER", "TERM",
        "TZ", "LC_ALL", "OLDPWD", "SHLVL", "PYTHONPATH", "VIRTUAL_ENV", "WEB_CONCURRENCY",
        "DATABASE_URL", "REDIS_URL", "HEROKU_APP_NAME", "HEROKU_SLUG_COMMIT", "SOURCE_VERSION",
        "LOGNAME", "LOG_FORMAT", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE",
        "SENTRY_DSN", "API_KEY", "BOT_TOKEN", "HEALTHCHECK_URL", "PYTHONUNBUFFERED")}
    assert unknown_variable_warnings(environ, None) == []


# --- Binance keys without TRADEBOT_EXCHANGE -------------------------------------------------

PAPER_WARNING = ("paper exchange: TRADEBOT_EXCHANGE is not set; set TRADEBOT_EXCHANGE=binance "
                 "to trade")


def test_keys_without_an_exchange_say_the_paper_exchange_runs() -> None:
    settings = load_settings(_env_file=None, BINANCE_API_KEY="k", BINANCE_API_SECRET="s")
    assert settings.exchange == "paper"
    assert settings.paper_by_default == PAPER_WARNING
    assert PAPER_WARNING in settings.mode      # STARTUP, /status, /health say it too


@pytest.mark.parametrize("env", [{}, {"TRADEBOT_EXCHANGE": "paper", "BINANCE_API_KEY": "k"}])
def test_paper_chosen_or_without_keys_is_said_plainly(env: dict[str, str]) -> None:
    settings = load_settings(_env_file=None, **env)
    assert settings.paper_by_default is None
    assert settings.mode == "paper"

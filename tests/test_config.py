"""Settings: environment and `.env` parsing, one readable line per bad variable, secrets masked,
and `.env.example` documenting every field with its default."""

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from trader.config import (
    ConfigError,
    Settings,
    env_name,
    load_settings,
)
from trader.config_names import unknown_variable_warnings

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_NAMES = [env_name(name) for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting comes from the developer's shell or a stray .env in the repository."""
    for name, field in Settings.model_fields.items():
        monkeypatch.delenv(env_name(name, field), raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def problems_for(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    return caught.value.problems


def parse_env_example() -> dict[str, tuple[str, str]]:
    """NAME -> (value, the comment block just above it)."""
    entries: dict[str, tuple[str, str]] = {}
    comment: list[str] = []
    for line in (REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("# ").strip())
        elif "=" in line:
            name, value = line.split("=", 1)
            entries[name.strip()] = (value.strip(), " ".join(comment))
            comment = []
        else:
            comment = []
    return entries


# --- each bad value names its variable in one line ---------------------------------------

@pytest.mark.parametrize(("variable", "value", "expected_words"), [
    ("TRADEBOT_EXCHANGE", "kraken", "'paper' or 'binance'"),
    ("TRADEBOT_SYMBOLS", "BTC-USD", "not a USD-M symbol"),
    ("TRADEBOT_SYMBOLS", "BTCEUR", "not a USD-M symbol"),
    ("TRADEBOT_SYMBOLS", " , ", "at least one symbol"),
    ("TELEGRAM_ALLOWED_CHAT_IDS", "12,abc", "valid integer"),
    ("TELEGRAM_ALLOWED_USER_IDS", "1.5", "valid integer"),
    ("BINANCE_FUTURES_URL", "fapi.binance.com", "http:// or https://"),
    ("BINANCE_FUTURES_WS_URL", "https://fstream.binance.com/", "ws:// or wss://"),
    ("TELEGRAM_API_URL", "api.telegram.org/bot", "http:// or https://"),
    ("TRADEBOT_LEVERAGE", "0", "greater than or equal to 1"),
    ("TRADEBOT_LEVERAGE", "126", "less than or equal to 125"),
    ("TRADEBOT_LEVERAGE", "five", "valid integer"),
    ("TRADEBOT_INTERVAL", "2m", "one of 1m, 3m, 5m, 15m, 30m, 1h"),
    ("BINANCE_TESTNET", "maybe", "valid boolean"),
    ("TRADEBOT_RISK_BASE", "0.05", "less than or equal to 0.03"),
    ("PORT", "70000", "less than or equal to 65535"),
])
def test_bad_value_gives_one_line_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected_words: str) -> None:
    problems = problems_for(monkeypatch, **{variable: value})
    assert len(problems) == 1
    line = problems[0]
    assert line.startswith(f"{variable}: ")
    assert expected_words in line
    assert "\n" not in line


def test_several_bad_values_give_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = problems_for(monkeypatch, TRADEBOT_EXCHANGE="kraken", TRADEBOT_LEVERAGE="0",
                            TRADEBOT_INTERVAL="7m")
    assert sorted(line.split(":")[0] for line in problems) == [
        "TRADEBOT_EXCHANGE", "TRADEBOT_INTERVAL", "TRADEBOT_LEVERAGE"]


def test_binance_without_keys_names_both_missing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = problems_for(monkeypatch, TRADEBOT_EXCHANGE="binance")
    assert problems == ["BINANCE_API_KEY and BINANCE_API_SECRET required when "
                        "TRADEBOT_EXCHANGE=binance"]


def test_binance_with_an_empty_secret_names_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = problems_for(monkeypatch, TRADEBOT_EXCHANGE="binance",
                            BINANCE_API_KEY="supersecretkey123", BINANCE_API_SECRET="")
    assert problems == ["BINANCE_API_SECRET required when TRADEBOT_EXCHANGE=binance"]
    assert "supersecretkey123" not in problems[0]


def test_bot_token_without_chat_ids_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = problems_for(monkeypatch, TELEGRAM_BOT_TOKEN="123456:telegram-token-value")
    assert len(problems) == 1
    assert problems[0].startswith("TELEGRAM_ALLOWED_CHAT_IDS required when TELEGRAM_BOT_TOKEN")
    assert "telegram-token-value" not in problems[0]


def test_problem_lines_never_echo_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = problems_for(monkeypatch, BINANCE_API_SECRET="supersecretvalue987",
                            TELEGRAM_BOT_TOKEN="123456:telegram-token-value",
                            TRADEBOT_LEVERAGE="0")
    text = "\n".join(problems)
    assert "supersecretvalue987" not in text
    assert "telegram-token-value" not in text


def test_a_malformed_url_is_named_without_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # the heartbeat URL's path is a credential, a user:password@ one in any URL
    problems = problems_for(monkeypatch, HEARTBEAT_URL="htp//user:pingpw@hc/ping-uuid-5678",
                            TELEGRAM_API_URL="ftp://bot:apipw@proxy/bot",
                            BINANCE_FUTURES_URL="fapi.binance.com")
    text = "\n".join(problems)
    for secret in ("pingpw", "ping-uuid-5678", "apipw"):
        assert secret not in text
    assert any(line.startswith("HEARTBEAT_URL: must start with http") for line in problems)
    assert "TELEGRAM_API_URL: must start with http:// or https:// (got 'ftp://bot:********@proxy/bot')" \
        in problems
    # a URL with nothing secret in it is still shown, so the mistake can be seen
    assert "BINANCE_FUTURES_URL: must start with http:// or https:// (got 'fapi.binance.com')" \
        in problems


# --- good values ---------------------------------------------------------------------------

def test_defaults_are_a_safe_offline_paper_setup() -> None:
    settings = load_settings(_env_file=None)
    assert settings.exchange == "paper"
    assert settings.binance_testnet is True
    assert settings.telegram_bot_token is None
    assert settings.symbols == ["BTCUSDT"]
    assert settings.db_path == Path("data/tradebot.db")
    assert settings.effective_feed == "replay"
    assert settings.mode == "paper"


def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRADEBOT_EXCHANGE", "TRADEBOT_SYMBOLS", "TELEGRAM_BOT_TOKEN",
                 "TELEGRAM_ALLOWED_CHAT_IDS", "BINANCE_FUTURES_URL", "TRADEBOT_LEVERAGE",
                 "TRADEBOT_INTERVAL", "BINANCE_API_KEY"):
        monkeypatch.setenv(name, "")
    settings = load_settings(_env_file=None)
    assert (settings.exchange, settings.symbols, settings.leverage, settings.interval) == (
        "paper", ["BTCUSDT"], 5, "1m")
    assert settings.telegram_bot_token is None and settings.binance_api_key is None


def test_comma_lists_are_trimmed_upper_cased_and_skip_blanks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEBOT_SYMBOLS", " btcusdt, ETHUSDT,,1000SHIBUSDT ,")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:telegram-token-value")
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "12, -1001234567890")
    monkeypatch.setenv("TELEGRAM_ALLOWED_USER_IDS", "7")
    settings = load_settings(_env_file=None)
    assert settings.symbols == ["BTCUSDT", "ETHUSDT", "1000SHIBUSDT"]
    assert settings.telegram_allowed_chat_ids == [12, -1001234567890]
    assert settings.telegram_allowed_user_ids == [7]


def test_url_roots_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """REST root without trailing slash (the client appends /fapi/v1), stream root with one."""
    monkeypatch.setenv("BINANCE_FUTURES_URL", "http://127.0.0.1:8765/")
    monkeypatch.setenv("BINANCE_FUTURES_WS_URL", "ws://127.0.0.1:8766")
    settings = load_settings(_env_file=None)
    assert settings.binance_futures_url == "http://127.0.0.1:8765"
    assert settings.binance_futures_ws_url == "ws://127.0.0.1:8766/"


def test_live_mode_names_mainnet_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEBOT_EXCHANGE", "binance")
    monkeypatch.setenv("BINANCE_API_KEY", "supersecretkey123")
    monkeypatch.setenv("BINANCE_API_SECRET", "supersecretvalue987")
    assert load_settings(_env_file=None).mode == "live (testnet)"
    monkeypatch.setenv("BINANCE_TESTNET", "false")
    settings = load_settings(_env_file=None)
    assert settings.mode == "live (MAINNET)"
    assert settings.effective_feed == "exchange"


def test_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "TRADEBOT_SYMBOLS=ETHUSDT,SOLUSDT\nTRADEBOT_LEVERAGE=3\nTRADEBOT_INTERVAL=\n",
        encoding="utf-8")
    settings = load_settings()
    assert settings.symbols == ["ETHUSDT", "SOLUSDT"]
    assert settings.leverage == 3
    assert settings.interval == "1m"


def test_environment_overrides_the_dotenv_file(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRADEBOT_LEVERAGE=3\n", encoding="utf-8")
    monkeypatch.setenv("TRADEBOT_LEVERAGE", "9")
    assert load_settings().leverage == 9


def test_bad_value_in_dotenv_file_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRADEBOT_INTERVAL=2m\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert [line.split(":")[0] for line in caught.value.problems] == ["TRADEBOT_INTERVAL"]


def test_only_the_documented_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVERAGE", "50")
    monkeypatch.setenv("SYMBOLS", "DOGEUSDT")
    settings = load_settings(_env_file=None)
    assert (settings.leverage, settings.symbols) == (5, ["BTCUSDT"])


# --- secrets -------------------------------------------------------------------------------

def test_secrets_are_secret_strings_and_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEBOT_EXCHANGE", "binance")
    monkeypatch.setenv("BINANCE_API_KEY", "supersecretkey123")
    monkeypatch.setenv("BINANCE_API_SECRET", "supersecretvalue987")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:telegram-token-value")
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "42")
    settings = load_settings(_env_file=None)
    for secret in (settings.binance_api_key, settings.binance_api_secret,
                   settings.telegram_bot_token):
        assert isinstance(secret, SecretStr)
    assert settings.binance_api_key.get_secret_value() == "supersecretkey123"  # type: ignore[union-attr]
    shown = settings.masked()
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "TELEGRAM_BOT_TOKEN"):
        assert shown[name] == "********"
    everything = " ".join([*shown.values(), repr(settings), str(settings)])
    for raw in ("supersecretkey123", "supersecretvalue987", "telegram-token-value"):
        assert raw not in everything


def test_masked_lists_every_setting_by_its_variable_name() -> None:
    shown = load_settings(_env_file=None).masked()
    assert list(shown) == ENV_NAMES
    assert shown["TRADEBOT_SYMBOLS"] == "BTCUSDT"
    assert shown["TELEGRAM_BOT_TOKEN"] == ""


def test_architecture_names_are_the_variable_names() -> None:
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_TESTNET", "BINANCE_FUTURES_URL",
                 "BINANCE_FUTURES_WS_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_ALLOWED_CHAT_IDS",
                 "TELEGRAM_ALLOWED_USER_IDS", "TELEGRAM_API_URL", "TRADEBOT_EXCHANGE",
                 "TRADEBOT_SYMBOLS", "TRADEBOT_DB", "TRADEBOT_FEED", "LOG_JSON"):
        assert name in ENV_NAMES


# --- .env.example ------------------------------------------------------------------------

def test_env_example_documents_every_setting_and_nothing_else() -> None:
    documented = parse_env_example()
    assert sorted(documented) == sorted(ENV_NAMES)
    for name, (_value, comment) in documented.items():
        assert comment, f"{name} has no comment in .env.example"


def test_env_example_shows_each_default() -> None:
    settings = load_settings(_env_file=None)
    defaults = settings.masked()
    # unset by default (None): documented empty; `tradebot config` says what it means
    unset = {env_name(name, field) for name, field in Settings.model_fields.items()
             if getattr(settings, name) is None}
    defaults["PORT"] = str(settings.port)     # masked() adds that nothing listens on it
    documented = parse_env_example()
    wrong = {name: (value, defaults[name]) for name, (value, _comment) in documented.items()
             if value != ("" if name in unset else defaults[name])}
    assert wrong == {}


def test_env_example_copied_to_dotenv_gives_the_defaults(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((REPO_ROOT / ".env.example").read_text(encoding="utf-8"),
                                   encoding="utf-8")
    assert load_settings() == load_settings(_env_file=None)


def test_env_example_has_no_real_secrets() -> None:
    documented = parse_env_example()
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "TELEGRAM_BOT_TOKEN"):
        assert documented[name][0] == ""
    assert not re.search(r"\d{6,}:[\w-]{20,}", (REPO_ROOT / ".env.example").read_text())


# --- names that look like ours but are not settings ------------------------------------------

def test_a_misspelt_name_is_warned_with_the_closest_setting(tmp_path: Path) -> None:
    warnings = unknown_variable_warnings({"TRADEBOT_LEVERAG": "3", "telegram_bot_tokn": "x"},
                                         None)
    assert warnings == [
        "TELEGRAM_BOT_TOKN is not a setting and is ignored; did you mean TELEGRAM_BOT_TOKEN?",
        "TRADEBOT_LEVERAG is not a setting and is ignored; did you mean TRADEBOT_LEVERAGE?"]


def test_every_setting_and_names_outside_our_prefixes_pass_quietly() -> None:
    environ = {name: "1" for name in ENV_NAMES}
    environ |= {"tradebot_leverage": "3",          # case does not matter, as for the settings
                "PATH": "/bin", "BINANCE": "1", "TRADEBOT_CHAOS_KILLS": "30", "MY_TRADEBOT_X": "1"}
    assert unknown_variable_warnings(environ, None) == []


def test_keys_of_the_dotenv_file_are_checked_too(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TRADEBOT_SYMBOLS=BTCUSDT\nBINANCE_TESTNETT=false\nTRADEBOT_ZZZ=1\n")
    assert unknown_variable_warnings({}, dotenv) == [
        "BINANCE_TESTNETT (in .env) is not a setting and is ignored; did you mean "
        "BINANCE_TESTNET?",
        "TRADEBOT_ZZZ (in .env) is not a setting and is ignored; see .env.example for the names"]
    assert unknown_variable_warnings({}, tmp_path / "missing.env") == []


# --- Telegram asked for without its token (fresh-user finding) ------------------------------

@pytest.mark.parametrize("variable", ["TELEGRAM_ALLOWED_CHAT_IDS", "TELEGRAM_ALLOWED_USER_IDS",
                                      "TELEGRAM_WEBHOOK_URL"])
def test_telegram_settings_without_the_token_are_a_config_error(
        monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """A misspelt TELEGRAM_BOT_TOKEN must not start an agent whose alerts go nowhere."""
    value = "https://bot.example/hook" if variable.endswith("URL") else "42"
    monkeypatch.setenv("TELEGRAM_TOKEN", "123456:misspelt-variable")
    problems = problems_for(monkeypatch, **{variable: value})
    assert len(problems) == 1
    assert "TELEGRAM_BOT_TOKEN" in problems[0] and variable in problems[0]
    assert "misspelt-variable" not in problems[0]


# --- URLs that carry credentials are masked ------------------------------------------------

def test_masked_hides_url_credentials_and_the_heartbeat_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTBEAT_URL", "https://hc-ping.com/6f1c0b2e-secret-uuid")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:telegram-token-value")
    monkeypatch.setenv("TELEGRAM_ALLOWED_CHAT_IDS", "42")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://user:hunter22@bot.example.com/hook")
    shown = load_settings(_env_file=None).masked()
    assert shown["HEARTBEAT_URL"] == "https://hc-ping.com/********"
    assert shown["TELEGRAM_WEBHOOK_URL"] == "https://user:********@bot.example.com/hook"
    assert "secret-uuid" not in " ".join(shown.values())
    assert "hunter22" not in " ".join(shown.values())


def test_url_secrets_name_the_password_and_the_path() -> None:
    from trader.url_mask import url_secrets
    assert url_secrets("https://hc-ping.com/6f1c0b2e-secret-uuid") == ["6f1c0b2e-secret-uuid"]
    assert url_secrets("https://user:hunter22@bot.example.com/hook") == ["hunter22", "hook"]
    assert url_secrets(None) == [] and url_secrets("https://hc-ping.com") == []


# --- TELEGRAM_WEBHOOK_URL that Telegram's own server would refuse (review8) -------------------

@pytest.mark.parametrize(("url", "problem"), [
    ("http://bot.example.com/hook", "must be an https:// URL"),
    ("https://bot.example.com:34567/hook", "port 34567"),
])
def test_a_webhook_url_telegram_would_refuse_is_a_config_error(url: str, problem: str) -> None:
    """Telegram's setWebhook takes an HTTPS URL on port 443, 80, 88 or 8443 only
    (https://core.telegram.org/bots/api#setwebhook): refused at every start otherwise."""
    with pytest.raises(ConfigError) as refused:
        Settings(_env_file=None, telegram_bot_token="123:abc", telegram_allowed_chat_ids="42",
                 telegram_webhook_url=url)
    lines = [line for line in refused.value.problems if "TELEGRAM_WEBHOOK_URL" in line]
    assert len(lines) == 1 and problem in lines[0]


@pytest.mark.parametrize(("url", "api_url"), [
    ("https://bot.example.com/hook", None),
    ("https://bot.example.com:8443/hook", "https://api.telegram.org/bot"),
    # A local Bot API server may "use an HTTP URL for the webhook ... any port"
    # (https://core.telegram.org/bots/api#using-a-local-bot-api-server): its call.
    ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8081/bot"),
])
def test_a_webhook_url_its_bot_api_server_takes_is_accepted(url: str, api_url: str | None) -> None:
    settings = Settings(_env_file=None, telegram_bot_token="123:abc",
                        telegram_allowed_chat_ids="42", telegram_webhook_url=url,
                        telegram_api_url=api_url)
    assert settings.telegram_webhook_url == url

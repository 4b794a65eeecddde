"""The IP-ban window kept across restarts is matched on the host python-binance calls,
however BINANCE_FUTURES_URL spells it.

Binance bans an IP on the host that banned it (trader/circuit_memory.py). Noted by review9:
the window was keyed on the setting as written (the URL, else "mainnet" / "testnet"), so a
restart with https://fapi.binance.com given explicitly did not wait the ban the default
mainnet had been given (nor https://testnet.binancefuture.com the testnet's), and
"https://FAPI.binance.com:443" did not match either: the restart sent its requests inside
the ban. Now the key is the REST root python-binance is given (its FUTURES_URL /
FUTURES_TESTNET_URL, or BINANCE_FUTURES_URL: trader/exchange/binance.py), lower-case, no
default port, no trailing "/".
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from binance import AsyncClient

from trader.circuit_memory import CircuitMemory
from trader.config import Settings, load_settings
from trader.config_hosts import MAINNET_REST, TESTNET_REST
from trader.engine_setup import rest_endpoint
from trader.exchange.base import CircuitState
from trader.trade_store import TradeStore

NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return NOW


def _settings(**values: Any) -> Settings:
    """MAINNET unless `binance_testnet` says otherwise (the setting's default is the testnet)."""
    values.setdefault("binance_testnet", False)
    return load_settings(_env_file=None, exchange="binance", binance_api_key="key",
                         binance_api_secret="secret", symbols="BTCUSDT",
                         telegram_bot_token=None, **values)


def _ban_kept(tmp_path: Path, banned: Settings, restarted: Settings) -> bool:
    """Whether a process on `restarted` waits the ban a process on `banned` saved."""
    store = TradeStore.open(tmp_path / f"{id(banned)}-{id(restarted)}.db")
    try:
        CircuitMemory(store, _Clock(), rest_endpoint(banned)).remember(
            CircuitState(NOW + timedelta(seconds=120), "IP banned", opened_at=NOW,
                         http_status=418))
        return CircuitMemory(store, _Clock(), rest_endpoint(restarted)).recall() is not None
    finally:
        store.close()


def test_the_default_hosts_are_python_binances():
    """The key of a default host is where python-binance sends (tld "com", as we make it)."""
    assert AsyncClient.FUTURES_URL.format("com") == f"{MAINNET_REST}/fapi"
    assert AsyncClient.FUTURES_TESTNET_URL == f"{TESTNET_REST}/fapi"
    assert rest_endpoint(_settings()) == "https://fapi.binance.com"
    assert rest_endpoint(_settings(binance_testnet=True)) == "https://testnet.binancefuture.com"


@pytest.mark.parametrize(("banned", "restarted"), [
    ({}, {"binance_futures_url": "https://fapi.binance.com"}),
    ({"binance_futures_url": "https://fapi.binance.com"}, {}),
    ({}, {"binance_futures_url": "https://FAPI.Binance.com:443/"}),
    ({"binance_testnet": True}, {"binance_futures_url": "https://testnet.binancefuture.com/"}),
    ({"binance_futures_url": "http://127.0.0.1:8080/"},
     {"binance_futures_url": "http://127.0.0.1:8080"}),
    ({"binance_futures_url": "http://[::1]:8080"}, {"binance_futures_url": "http://[::1]:8080/"}),
])
def test_a_ban_on_the_same_host_spelled_otherwise_is_waited(tmp_path, banned, restarted):
    assert _ban_kept(tmp_path, _settings(**banned), _settings(**restarted))


@pytest.mark.parametrize(("banned", "restarted"), [
    ({}, {"binance_testnet": True}),
    ({}, {"binance_futures_url": "https://testnet.binancefuture.com"}),
    ({"binance_futures_url": "http://127.0.0.1:8080"},
     {"binance_futures_url": "http://127.0.0.1:8081"}),
    ({"binance_futures_url": "http://proxy.example/a"},
     {"binance_futures_url": "http://proxy.example/b"}),
])
def test_negative_a_ban_on_another_host_is_not_waited(tmp_path, banned, restarted):
    assert not _ban_kept(tmp_path, _settings(**banned), _settings(**restarted))


def test_no_credentials_of_a_proxy_url_are_kept():
    key = rest_endpoint(_settings(binance_futures_url="https://user:pw@proxy.example:8443/x/"))
    assert key == "https://proxy.example:8443/x"

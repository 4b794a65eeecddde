"""Where the Binance settings send the REST calls and whence the streams come, and a warning
when the two may be different places: orders sent to one host while their updates are read
from another (or from none) look like a silent stream. A private fake or a proxy on both is
legitimate, so these are warnings (`tradebot config`, and every command's start), never
errors.

Binance's own hosts (python-binance's defaults for REST, trader/exchange/binance.py's for
the streams): https://fapi.binance.com and wss://fstream.binance.com/ for MAINNET;
https://testnet.binancefuture.com and wss://fstream.binancefuture.com/ for the testnet
(its "demo-" hosts under binance.com are the testnet too).
"""

from urllib.parse import urlsplit

from trader.config import Settings

TESTNET_REST, MAINNET_REST = "https://testnet.binancefuture.com", "https://fapi.binance.com"
DEFAULT_PORTS = {"https": 443, "http": 80}
TESTNET_STREAMS, MAINNET_STREAMS = "wss://fstream.binancefuture.com/", "wss://fstream.binance.com/"


def host_warnings(settings: Settings) -> list[str]:
    """One line per way the REST and stream hosts may differ, naming the variables."""
    rest, streams = settings.binance_futures_url, settings.binance_futures_ws_url
    testnet = settings.binance_testnet
    default = f"the BINANCE_TESTNET={'true' if testnet else 'false'} default"
    lines = []
    if rest and not streams:
        lines.append(f"BINANCE_FUTURES_URL is set (REST to {_host(rest)}) but "
                     "BINANCE_FUTURES_WS_URL is not: the streams go to "
                     f"{_host(TESTNET_STREAMS if testnet else MAINNET_STREAMS)} ({default}); "
                     "set both to the same place, or neither")
    if streams and not rest:
        lines.append(f"BINANCE_FUTURES_WS_URL is set (streams from {_host(streams)}) but "
                     "BINANCE_FUTURES_URL is not: the REST calls go to "
                     f"{_host(TESTNET_REST if testnet else MAINNET_REST)} ({default}); set both "
                     "to the same place, or neither")
    for name, url in (("BINANCE_FUTURES_URL", rest), ("BINANCE_FUTURES_WS_URL", streams)):
        network = _network(url)
        if network == "testnet" and not testnet:
            lines.append(f"BINANCE_TESTNET=false (MAINNET) but {name} is a testnet host "
                         f"({_host(url)})")
        elif network == "mainnet" and testnet:
            lines.append(f"BINANCE_TESTNET=true (testnet) but {name} is a MAINNET host "
                         f"({_host(url)}): it trades real money while it says testnet")
    return lines


def rest_root(settings: Settings) -> str:
    """The REST root the Binance adapter calls (BINANCE_FUTURES_URL, else python-binance's
    FUTURES_URL / FUTURES_TESTNET_URL without their "/fapi": trader/exchange/binance.py),
    spelled one way: an IP ban is per host, and the saved window is matched on this
    (trader/circuit_memory.py): BINANCE_FUTURES_URL=https://FAPI.binance.com:443/ reads
    "https://fapi.binance.com", as the default mainnet does."""
    url = settings.binance_futures_url or (TESTNET_REST if settings.binance_testnet
                                           else MAINNET_REST)
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    host = f"[{host}]" if ":" in host else host                       # an IPv6 address
    port = "" if parts.port in (None, DEFAULT_PORTS.get(scheme)) else f":{parts.port}"
    # no credentials a proxy URL may carry: this is saved in the database
    return f"{scheme}://{host}{port}{parts.path.rstrip('/')}"


def _host(url: str | None) -> str:
    """host[:port] of `url`, without the credentials a URL may carry."""
    parts = urlsplit(url or "")
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def _network(url: str | None) -> str | None:
    """"testnet" or "mainnet" for Binance's own hosts; None for any other (a fake, a proxy)."""
    host = urlsplit(url or "").hostname or ""
    if host == "binancefuture.com" or host.endswith(".binancefuture.com") \
            or (host.startswith("demo-") and host.endswith(".binance.com")):
        return "testnet"
    if host.endswith(".binance.com"):
        return "mainnet"
    return None

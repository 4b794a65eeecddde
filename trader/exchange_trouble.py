"""What an exchange error means to the person who asked, in words: what happened
(`problem`) and what to do (`advice`). Used by the operator's commands from Telegram
(trader/control.py) and from a shell (trader/control_cli.py), so a rate limit reads the
same everywhere ("the request was not sent (API circuit open for 18.2s more ...)" /
"Binance limits this IP: wait 18 s (its Retry-After)") instead of an exception's name."""

from trader.exchange.base import CircuitOpen, ExchangeError, UnknownOutcome


def problem(error: ExchangeError | UnknownOutcome) -> str:
    """What the exchange did: refused, did not answer, or was not asked (the circuit)."""
    from trader.start_retry import plain_error
    if isinstance(error, CircuitOpen):
        return f"the request was not sent ({error.message.removeprefix('not sent: ')})"
    if isinstance(error, UnknownOutcome) and error.http_status:    # e.g. a 5xx to an order
        return f"the exchange answered HTTP {error.http_status} (code {error.code}: {error})"
    if isinstance(error, UnknownOutcome):       # "server time: ClientConnectorError(...)"
        action, _, _ = str(error).partition(": ")
        return f"the exchange did not answer ({action}: {plain_error(error.__cause__ or error)})"
    code = f", code {error.code}" if error.code else ""
    return f"the exchange answered with an error (HTTP {error.http_status}{code}: {error.message})"


def advice(error: ExchangeError | UnknownOutcome) -> str:
    """What to do before trying again (Binance's Retry-After, the clock, the network)."""
    if isinstance(error, ExchangeError) and error.http_status in (418, 429):
        wait = f"{error.retry_after:.0f} s" if error.retry_after else "a few minutes"
        return f"Binance limits this IP: wait {wait} (its Retry-After)"
    if isinstance(error, ExchangeError) and error.code == -1021:
        return "This machine's clock is off (-1021, timestamp outside recvWindow): sync it (NTP)"
    return "Check the network and the exchange's status (BINANCE_FUTURES_URL when set)"

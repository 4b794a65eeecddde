"""Settings given as text with a shape of their own: an alert name (TRADEBOT_ALERTS_SILENT,
TRADEBOT_ALERTS_OFF) and a latency range (TRADEBOT_PAPER_LATENCY_MS). Each raises
ValueError with what the operator should write instead."""

import difflib

from trader.alerts import DEFAULT_SEVERITY, AlertName, Severity


def alert_name(text: str) -> AlertName:
    """An alert name an operator may silence or turn off (README, "Alerts")."""
    name = text.strip().upper()
    if name not in AlertName.__members__:
        close = difflib.get_close_matches(name, list(AlertName.__members__), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}?" if close else "see README, Alerts, for the names"
        raise ValueError(f"unknown alert name {text!r}; {hint}")
    if DEFAULT_SEVERITY[AlertName(name)] is Severity.CRITICAL:
        raise ValueError(f"{name} is CRITICAL (the operator must act): it is always sent, "
                         "with sound")
    return AlertName(name)


def parse_latency_ms(text: str) -> tuple[int, int] | None:
    """"50-500" -> (50, 500); "200" -> (200, 200); "0" -> None (off). ValueError otherwise."""
    low, _, high = text.strip().partition("-")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        raise ValueError("must be milliseconds as low-high, e.g. 50-500, or 0 (off)") from None
    if not 0 <= bounds[0] <= bounds[1] <= 10_000:
        raise ValueError("must be 0 <= low <= high <= 10000 ms, e.g. 50-500")
    return None if bounds == (0, 0) else bounds

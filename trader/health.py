"""Is the agent healthy? One view for /health in Telegram and GET /health on $PORT.

Healthy means the agent is doing its job, all three of:
- the engine ticked less than `stale_after` ago: 3 tick periods (TRADEBOT_TICK_SECONDS), and
  never less than 30 s, so one slow exchange call does not flap an uptime monitor; booting
  (no tick yet) is not healthy;
- database writes work (the last write succeeded: trader/engine.py's write health);
- it is not stopping (SIGTERM received);
- the exchange's REST API answers: its requests have not gone unanswered over a stretch of
  max(12 tick periods, 2 min) (first to last unanswered request: trader/exchange/
  rest_answers.py; trader/exchange_health.py `rest_bounds` says why), else no stop can have
  been checked or moved. Over max(3 tick periods, 30 s) it is a warning already.
Everything else is reported as a warning, not a failure: a user-data or market stream down
(the agent polls over REST meanwhile), the exchange's rate-limit circuit open (nothing is
sent until it closes; positions keep their exchange-side orders), Telegram unreachable or
alerts waiting. Asleep and paused are the operator's choice: healthy. The live invariant
monitor's current violations are listed (`invariants`) without changing the verdict: each
one is also an INVARIANT_ alert.

    monitor = HealthMonitor(engine, presence, SystemClock())
    view = monitor.view()          # HealthView; view.as_json() for GET /health
"""

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from loguru import logger

from trader.clock import Clock
from trader.engine import Engine
from trader.exchange.base import stream_states
from trader.exchange.rest_answers import last_outage
from trader.exchange_health import rest_bounds
from trader.presence import AgentPresence
from trader.views import run_state

MIN_STALE_SECONDS = 30.0
TICK_PERIODS = 3


def tradebot_version() -> str:
    try:
        return version("tradebot")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class HealthView:
    """What /health shows; times in seconds, wall clock."""
    healthy: bool
    problems: list[str]               # why not healthy (empty when healthy)
    warnings: list[str]               # degraded but working
    run_state: str                    # running / paused / asleep / stopping
    last_tick_age: float | None       # None before the first tick
    stale_after: float
    streams: dict[str, str]           # stream name -> "up" / "down" / "polling"
    database_writable: bool
    exchange_circuit: str | None      # "open until 12:03:04 UTC (...)" or None when closed
    rate_limit: dict[str, int]        # Binance usage counters seen last (empty on paper)
    telegram: str                     # "connected" / "unreachable" / "off"
    telegram_lag: float               # age of the oldest alert not delivered yet (0: none)
    version: str
    uptime: float
    details: dict[str, Any] = field(default_factory=dict)
    invariants: list[str] = field(default_factory=list)   # the invariant monitor's confirmed
    #                                   violations, one line each (trader/invariant_monitor.py)
    # "answering", "not answering since 12:08:46 UTC (HTTP 503 x 30)", or "not used" (paper)
    exchange_rest: str = "not used"

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["status"] = "ok" if self.healthy else "unhealthy"
        return body


class HealthMonitor:
    """Builds the view from the engine, the presence heartbeat and the alert outbox."""

    def __init__(self, engine: Engine, presence: AgentPresence, clock: Clock) -> None:
        self.engine = engine
        self.presence = presence
        self.clock = clock                    # wall-clock time

    def view(self) -> HealthView:
        engine, now = self.engine, self.clock.now()
        stale_after = max(TICK_PERIODS * engine.settings.tick_seconds, MIN_STALE_SECONDS)
        ticked = self.presence.last_tick_at
        age = (now - ticked).total_seconds() if ticked is not None else None
        writable = not engine.store.health.failing
        problems = _problems(age, stale_after, writable, engine.stopping, engine.store.health)
        streams = stream_states(engine.exchange)
        circuit = _circuit(engine, engine.clock.now())
        telegram, lag = _telegram(engine)
        warnings = [f"{name} stream {state}" for name, state in streams.items() if state == "down"]
        warnings += [f"exchange circuit {circuit}"] if circuit else []
        warnings += [f"telegram {telegram}"] if telegram == "unreachable" else []
        warnings += [f"alerts waiting {lag:.0f} s"] if lag > stale_after else []
        rest = _rest(engine, problems, warnings)
        return HealthView(
            healthy=not problems, problems=problems, warnings=warnings,
            run_state=run_state(engine), last_tick_age=age, stale_after=stale_after,
            streams=streams, database_writable=writable, exchange_circuit=circuit,
            rate_limit=_rate_usage(engine), telegram=telegram, telegram_lag=lag,
            version=tradebot_version(),
            uptime=(now - self.presence.started_at).total_seconds(),
            details={"mode": engine.settings.mode, "symbols": list(engine.symbols),
                     "ticks": engine.ticks, "replay": self.presence.replay},
            invariants=[v.line for v in engine.housekeeping.invariants.violations],
            exchange_rest=rest)


def _problems(age: float | None, stale_after: float, writable: bool, stopping: bool,
              write_health: Any) -> list[str]:
    problems = []
    if age is None:
        problems.append("not ticking yet (booting)")
    elif age > stale_after:
        problems.append(f"last tick {age:.0f} s ago (more than {stale_after:.0f} s)")
    if not writable:
        problems.append(f"database writes failing ({write_health.in_a_row} in a row)")
    if stopping:
        problems.append("stopping")
    return problems


def _rest(engine: Engine, problems: list[str], warnings: list[str]) -> str:
    """The REST API's answering, as /health shows it; an outage past the warning bound goes
    to `warnings`, past the unhealthy one to `problems`."""
    if getattr(engine.exchange, "rest_answers", None) is None:
        return "not used"
    outage = last_outage(engine.exchange)
    if outage is None or outage.ended_at is not None:
        return "answering"
    warn_after, unhealthy_after = rest_bounds(engine.settings.tick_seconds)
    lasted = outage.span()      # first to last unanswered request: the evidence
    if lasted >= unhealthy_after:
        problems.append(f"{outage.describe()}: {lasted:.0f} s (more than "
                        f"{unhealthy_after:.0f} s), protection cannot be verified")
    elif lasted >= warn_after:
        warnings.append(outage.describe())
    return outage.describe().removeprefix("Binance REST ")


def _circuit(engine: Engine, now: datetime) -> str | None:
    circuit = engine.exchange.circuit()
    if not circuit.is_open(now) or circuit.open_until is None:
        return None
    return f"open until {circuit.open_until:%H:%M:%S} UTC ({circuit.reason})"


def _rate_usage(engine: Engine) -> dict[str, int]:
    usage = getattr(engine.exchange, "rate_usage", None)   # Binance only: its usage headers
    return dict(usage()) if callable(usage) else {}


def _telegram(engine: Engine) -> tuple[str, float]:
    sink = engine.alerter.sink
    connected = getattr(sink, "connected", None)          # the Telegram bot; None: headless
    state = "off" if connected is None else ("connected" if connected else "unreachable")
    try:
        # Due ones only: a breaker's trip held back for its clear (README: one message when
        # it clears within 45 minutes) is not waiting for Telegram.
        oldest = engine.alerter.pending(1)
    except sqlite3.Error as exc:          # the database problem is reported on its own
        logger.warning("alert outbox unreadable for /health error={!r}", exc)
        return state, 0.0
    # Alerts are stamped with the engine's clock (replay time in a replay).
    age = (engine.clock.now() - oldest[0].created_at).total_seconds() if oldest else 0.0
    return state, max(0.0, age)

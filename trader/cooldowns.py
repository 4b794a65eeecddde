"""The cooldown after each close, and the loss streak that lengthens it: pure rules on the
guards' state (trader/guard_state.py). A symbol cooling down takes no entry; one whose
result is known only later (trader/close_readback.py) is counted then, and the cooldown it
lengthens holds an entry that began on the symbol meanwhile (trader/guards.py
`entries_held`).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from trader.evolve import evolve
from trader.guard_state import DEFAULT_CONFIG, GuardConfig, GuardState


def start_cooldown(state: GuardState, symbol: str, now: datetime, loss: bool | None,
                   cfg: GuardConfig = DEFAULT_CONFIG, base: timedelta | None = None) -> GuardState:
    """Start the cooldown after a close: `base` (default cooldown_minutes), times
    loss_streak_mult once loss_streak_len losses in a row are reached on the symbol.
    `loss` None: the close's result is not known yet (its closing fills unread: inside an
    IP ban, or a failed read); it is neither a loss nor a win, so the streak stays as it is
    until the close read-back counts it (`count_read_back`)."""
    streak = state.loss_streak.get(symbol, 0)
    if loss is not None:
        streak = streak + 1 if loss else 0
    duration = base if base is not None else timedelta(minutes=cfg.cooldown_minutes)
    if streak >= cfg.loss_streak_len:
        duration *= cfg.loss_streak_mult
    until = max(state.cooldowns.get(symbol, now), now + duration)
    logger.info("cooldown symbol={} until={} loss_streak={}", symbol, until.isoformat(), streak)
    return evolve(state, cooldowns={**state.cooldowns, symbol: until},
                   loss_streak={**state.loss_streak, symbol: streak})


def count_read_back(state: GuardState, symbol: str, loss: bool, later: Sequence[bool],
                    last_close: datetime, now: datetime, cfg: GuardConfig = DEFAULT_CONFIG,
                    base: timedelta | None = None) -> GuardState:
    """Count a close whose result became known after it (trader/close_readback.py) into the
    symbol's loss streak, as `start_cooldown` would have counted it at the close (which
    left the streak as it was). `later`: the known results (loss or not) of the symbol's
    closes after it, each counted at its own close. A win among them reset the streak since:
    nothing changes. Else a loss adds one, and a win resets the streak to the losses after
    it. A streak that reaches loss_streak_len lengthens the cooldown of the symbol's last
    close (`last_close`, its `base`) to what it would have been, if that is not over yet;
    a cooldown already running is never shortened."""
    if not all(later):
        return state
    streak = state.loss_streak.get(symbol, 0) + 1 if loss else len(later)
    changes: dict[str, Any] = {"loss_streak": {**state.loss_streak, symbol: streak}}
    duration = base if base is not None else timedelta(minutes=cfg.cooldown_minutes)
    until = last_close + duration * cfg.loss_streak_mult
    if loss and streak >= cfg.loss_streak_len and until > max(state.cooldowns.get(symbol, now), now):
        changes["cooldowns"] = {**state.cooldowns, symbol: until}
    logger.info("close read back counted symbol={} loss={} loss_streak={} cooldown_until={}",
                symbol, loss, streak, changes.get("cooldowns", state.cooldowns).get(symbol))
    return evolve(state, **changes)


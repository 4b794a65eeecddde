"""The names of the settings: environment variables that look like settings but are none
(a typo is otherwise silently ignored), with the closest valid name."""

import difflib
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from trader.config import Settings, env_name

WATCHED_PREFIXES = ("TRADEBOT_", "BINANCE_", "TELEGRAM_")
NOT_SETTINGS = ("TRADEBOT_CHAOS_",)   # knobs of the chaos test (tests/chaos), read by the test
# Any other name is warned only when this close to a setting's whole name (difflib ratio):
# HEARTBEAT_URI 0.92, LOG_JSN 0.93, TRADBOT_SYMBOLS 0.97; the platform's and the shell's
# own stay quiet (REDIS_URL 0.55, LOGNAME 0.53, PATH 0.5).
CLOSE_ELSEWHERE = 0.8
# Set by the platform, not typed by the operator: PORT0 or PORTS is someone else's.
PLATFORM_SET = ("PORT",)


def unknown_variable_warnings(environ: Mapping[str, str], env_file: Path | None) -> list[str]:
    """One line per name, in the environment or the .env file, that is no setting but looks
    like one (a typo is otherwise silently ignored), with the closest valid name (difflib):
    "TRADEBOT_LEVERAG is not a setting and is ignored; did you mean TRADEBOT_LEVERAGE?".
    A TRADEBOT_* / BINANCE_* / TELEGRAM_* name always; any other (HEARTBEAT_URI, LOG_JSN)
    when close to a setting's name (CLOSE_ELSEWHERE): a typo in HEARTBEAT_URL would
    otherwise turn the dead-man's switch off without a word."""
    known = {env_name(name, field) for name, field in Settings.model_fields.items()}
    found = {name.upper(): "" for name in environ}
    if env_file is not None and env_file.is_file():
        found |= {name.upper(): f" (in {env_file.name})"
                  for name in dotenv_values(env_file) if name.upper() not in found}
    warnings = []
    for name, where in sorted(found.items()):
        if name in known or name.startswith(NOT_SETTINGS):
            continue
        if name.startswith(WATCHED_PREFIXES):
            close = closest_setting(name, known)
        else:
            typed = [setting for setting in known if setting not in PLATFORM_SET]
            close = next(iter(difflib.get_close_matches(name, typed, n=1,
                                                        cutoff=CLOSE_ELSEWHERE)), None)
            if close is None:
                continue
        hint = f"did you mean {close}?" if close else "see .env.example for the names"
        warnings.append(f"{name}{where} is not a setting and is ignored; {hint}")
    return warnings


def closest_setting(name: str, known: set[str]) -> str | None:
    """The setting `name` was probably meant to be. Compared without the prefix (every
    TRADEBOT_ name looks alike with it), preferring the same prefix:
    TRADEBOT_LEVERAG -> TRADEBOT_LEVERAGE, TELEGRAM_CHATID -> TELEGRAM_ALLOWED_CHAT_IDS."""
    prefix = next((p for p in WATCHED_PREFIXES if name.startswith(p)), "")
    by_rest: dict[str, list[str]] = {}
    for setting in sorted(known):
        rest = next((setting.removeprefix(p) for p in WATCHED_PREFIXES
                     if setting.startswith(p)), setting)
        by_rest.setdefault(rest, []).append(setting)
    matches = difflib.get_close_matches(name.removeprefix(prefix), list(by_rest), n=1,
                                        cutoff=0.5)
    if not matches:
        return None
    candidates = by_rest[matches[0]]
    return next((c for c in candidates if c.startswith(prefix)), candidates[0])

"""The names of the settings: environment variables that look like settings but are none
(a typo is otherwise silently ignored), with the closest valid name."""

import difflib
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from trader.config import Settings, env_name

WATCHED_PREFIXES = ("TRADEBOT_", "BINANCE_", "TELEGRAM_")
NOT_SETTINGS = ("TRADEBOT_CHAOS_",)   # knobs of the chaos test (tests/chaos), read by the test


def unknown_variable_warnings(environ: Mapping[str, str], env_file: Path | None) -> list[str]:
    """One line per TRADEBOT_* / BINANCE_* / TELEGRAM_* name, in the environment or the .env
    file, that is no setting (a typo is otherwise silently ignored), with the closest valid
    name (difflib):
    "TRADEBOT_LEVERAG is not a setting and is ignored; did you mean TRADEBOT_LEVERAGE?"."""
    known = {env_name(name, field) for name, field in Settings.model_fields.items()}
    found = {name.upper(): "" for name in environ}
    if env_file is not None and env_file.is_file():
        found |= {name.upper(): f" (in {env_file.name})"
                  for name in dotenv_values(env_file) if name.upper() not in found}
    warnings = []
    for name, where in sorted(found.items()):
        if not name.startswith(WATCHED_PREFIXES) or name.startswith(NOT_SETTINGS) \
                or name in known:
            continue
        close = closest_setting(name, known)
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

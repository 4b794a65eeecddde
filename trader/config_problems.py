"""One readable line per bad variable: its name, what is wrong, the value given (never a
credential) and, for a number, the range it may take:
"TRADEBOT_RECONCILE_SECONDS: Input should be a finite number (got 'inf'); allowed: 3 to 3600"."""

import re
from typing import Any

import annotated_types
from pydantic.fields import FieldInfo

from trader.url_mask import SECRET_PATH_URLS

# user:password@ (the part between the last colon and the @ before the host)
_PASSWORD_IN_URL = re.compile(r":[^:@/]*@")


def problem_line(error: Any, names: dict[str, str], fields: dict[str, FieldInfo]) -> str:
    """The line for one pydantic error; `names` maps field names to variable names, `fields`
    field and variable names to the fields (an error's location is either)."""
    loc = [str(part) for part in error.get("loc", ())]
    message = error.get("msg", "invalid").removeprefix("Value error, ")
    if not loc:
        return message
    field = loc[0]
    name = names.get(field, field.upper())
    allowed = allowed_range(fields[field]) if field in fields else ""
    return (f"{name}: {message}{shown_input(field.lower(), error.get('input'))}"
            f"{f'; allowed: {allowed}' if allowed else ''}")


def allowed_range(field: FieldInfo) -> str:
    """"1 to 125", "more than 0, less than 1", "at least 0"; "" for a field without bounds."""
    low = high = ""
    inclusive = True
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = f"at least {bound.ge:g}"
        elif isinstance(bound, annotated_types.Gt):
            low, inclusive = f"more than {bound.gt:g}", False
        elif isinstance(bound, annotated_types.Le):
            high = f"at most {bound.le:g}"
        elif isinstance(bound, annotated_types.Lt):
            high, inclusive = f"less than {bound.lt:g}", False
    if low and high and inclusive:
        return f"{low.removeprefix('at least ')} to {high.removeprefix('at most ')}"
    return ", ".join(part for part in (low, high) if part)


def shown_input(field: str, raw: Any) -> str:
    """` (got 'VALUE')` for a problem line, or nothing where the value holds a credential:
    a key, a token, the heartbeat URL (its path is one, and a malformed URL has no path to
    mask reliably), a user:password@ in any other URL (masked even without a scheme)."""
    if raw is None or isinstance(raw, dict) or "secret" in field or "token" in field \
            or field in SECRET_PATH_URLS:
        return ""
    if field.endswith("_url"):
        raw = _PASSWORD_IN_URL.sub(":********@", str(raw))
    return f" (got {raw!r})"

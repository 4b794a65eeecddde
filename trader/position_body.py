"""A saved position's body read back: the record as written, or one written before the legs
existed (flat `sl_price`, `sl_client_id`, ...) read as the same position with its legs, and
a leg's `superseded` as the tuple it is now (a client id or null when a stop could have one
lost placement backed up only)."""

import json
from typing import Any

from storage.codec import load
from trader.position import Position

_LEG_NAMES = ("stop", "take_profit", "take_profit_1")
_LEGACY_LEG_FIELDS = (("stop", "sl", "sl_price", "sl_client_id"),
                      ("take_profit", "tp", "tp_price", "tp_client_id"))


def position_from_body(body: str) -> Position:
    """A position record; one written before the legs existed (flat `sl_price`,
    `sl_client_id`, ...) is read as the same position with its legs."""
    raw = json.loads(body)
    if "stop" not in raw:
        raw = _legs_from_legacy(raw)
    for name in _LEG_NAMES:
        leg = raw.get(name)
        if isinstance(leg, dict) and "superseded" in leg:
            leg["superseded"] = _superseded(leg["superseded"])
    return load(Position, raw)


def _superseded(stored: Any) -> tuple[str, ...]:
    """A leg's lost placements as stored: a JSON list (tuples are written so), or from a
    record of the time there was one at most, its client id or null."""
    if stored is None:
        return ()
    if isinstance(stored, str):
        return (stored,)
    return tuple(stored)


def _legs_from_legacy(raw: dict[str, Any]) -> dict[str, Any]:
    upgraded = {k: v for k, v in raw.items()
                if k not in ("sl_price", "tp_price", "sl_client_id", "tp_client_id",
                             "breakeven_attempts", "initial_sl_price")}
    upgraded["initial_stop_price"] = raw.get("initial_sl_price")
    for name, role, price_key, id_key in _LEGACY_LEG_FIELDS:
        price = raw.get(price_key) or raw.get("entry_price")
        client_id = raw.get(id_key)
        order = None
        if client_id:
            order = {"client_id": client_id, "trigger_price": price,
                     "quantity": raw.get("quantity"), "status": "LIVE"}
        upgraded[name] = {"role": role, "trigger_price": price, "order": order}
    return upgraded

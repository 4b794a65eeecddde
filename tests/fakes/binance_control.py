"""The fake Binance server's control API over HTTP, for a server in another process.

POST /_control/<name> with a JSON object of arguments calls the FakeBinance method of
that name (prices and quantities as strings, candles as objects, sides as "BUY"/"SELL");
GET /_control/request_log and GET /_control/state read. Answers are JSON.

    POST /_control/move_price     {"symbol": "BTCUSDT", "price": "49000"}
    POST /_control/push_candle    {"symbol": "BTCUSDT", "open_time": 1700000000000,
                                   "interval": "1m", "open": "1", "high": "2", "low": "1",
                                   "close": "2", "volume": "5"}
    POST /_control/inject_fault   {"path_or_endpoint": "POST /fapi/v1/order", "code": -2019}
    POST /_control/reject_trigger {"symbol": "BTCUSDT", "client_id": "tb-...-sl1",
                                   "reason": "Reduce Only reject"}
    POST /_control/stick_trigger  {"symbol": "BTCUSDT", "client_id": "tb-...-sl1"}
    POST /_control/hold_order_updates {}     (then /_control/release_order_updates {})
"""

from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from trader.domain import Candle, Side, utc
from trader.exchange.base import ExchangeError

if TYPE_CHECKING:
    from tests.fakes.binance_server import FakeBinance

Json = dict[str, Any]
INTERVALS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600}
ASYNC_CONTROLS = ("move_price", "push_candle", "open_position_by_hand",
                  "close_position_by_hand", "cancel_order_by_hand", "reject_trigger",
                  "stick_trigger", "release_order_updates", "change_margin_type_by_hand",
                  "switch_asset_mode_by_hand", "move_money_by_hand",
                  "drop_streams", "expire_listen_key")
SYNC_CONTROLS = ("inject_fault", "clear_faults", "freeze_streams", "hold_order_updates",
                 "set_hedge_mode",
                 "set_multi_assets_mode",
                 "set_clock_skew", "add_used_weight", "clear_request_log")
DECIMAL_ARGS = ("price", "qty", "amount")


def candle_from_json(raw: Json) -> Candle:
    return Candle(symbol=raw["symbol"], open_time=utc(int(raw["open_time"])),
                  interval=timedelta(seconds=INTERVALS[raw.get("interval", "1m")]),
                  open=Decimal(raw["open"]), high=Decimal(raw["high"]),
                  low=Decimal(raw["low"]), close=Decimal(raw["close"]),
                  volume=Decimal(raw.get("volume", "0")))


def _arguments(raw: Json) -> Json:
    args = dict(raw)
    for name in DECIMAL_ARGS:
        if args.get(name) is not None:
            args[name] = Decimal(str(args[name]))
    if "side" in args:
        args["side"] = Side(args["side"])
    if "candle" in args:
        args["candle"] = candle_from_json(args["candle"])
    return args


def state(fake: "FakeBinance") -> Json:
    balance = fake.sim.balance()
    return {
        "balance": {"wallet": str(balance.wallet), "available": str(balance.available),
                    "unrealized_pnl": str(balance.unrealized_pnl)},
        "positions": [{"symbol": p.symbol, "quantity": str(p.quantity),
                       "entry_price": str(p.entry_price)} for p in fake.sim.positions()
                      if p.quantity],
        "open_orders": [{"symbol": o.symbol, "client_id": o.client_id, "type": o.type.value,
                         "side": o.side.value, "quantity": str(o.quantity),
                         "trigger_price": str(o.trigger_price) if o.trigger_price else None}
                        for o in fake.sim.open_orders()],
        "listen_key": fake.endpoints.listen_key,
        "user_sockets": len(fake.hub.user),
        "market_sockets": len(fake.hub.market),
    }


async def handle(fake: "FakeBinance", request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if request.method == "GET" and name == "request_log":
        return web.json_response([asdict(entry) for entry in fake.request_log])
    if request.method == "GET" and name == "state":
        return web.json_response(state(fake))
    if request.method != "POST" or name not in (*ASYNC_CONTROLS, *SYNC_CONTROLS):
        return web.json_response({"ok": False, "error": f"unknown control {name}"}, status=404)
    raw = await request.json() if request.can_read_body else {}
    if name == "push_candle" and "candle" not in raw:
        raw = {"candle": raw}
    try:
        args = _arguments(raw)
        method = getattr(fake, name)
        if name in ASYNC_CONTROLS:
            await method(**args)
        else:
            method(**args)
    except (TypeError, ValueError, KeyError) as exc:
        return web.json_response({"ok": False, "error": repr(exc)}, status=400)
    except ExchangeError as exc:       # the simulated exchange refused it (no price yet, ...)
        return web.json_response({"ok": False, "error": str(exc)}, status=400)
    return web.json_response({"ok": True})

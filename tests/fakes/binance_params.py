"""Request parameters of the fake Binance server, read as Binance reads them: mandatory ones
(-1102 when absent), decimals in Binance's documented pattern (-1100), booleans (-1130).

Error codes and messages as on Binance's Error Codes page
(https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code).
"""

import re
from decimal import Decimal

from trader.exchange.base import ExchangeError

Params = dict[str, str]
DECIMAL_TEXT = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")


def missing(name: str) -> ExchangeError:
    return ExchangeError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                f"or malformed.")


def decimal_param(params: Params, name: str, required: bool = True) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        if required:
            raise missing(name)
        return None
    if not DECIMAL_TEXT.fullmatch(text):
        raise ExchangeError(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                   f"range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")
    return Decimal(text)


def bool_param(params: Params, name: str) -> bool:
    text = params.get(name, "false").lower()
    if text not in ("true", "false"):
        raise ExchangeError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return text == "true"


def required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise missing(name)
    return value

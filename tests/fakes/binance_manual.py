"""The fake Binance's command line: `python -m tests.fakes.binance_server --port 8765`
serves it until interrupted (prices from --price SYMBOL=PRICE) for a person or a script in
another process (its controls under /_control/<name>: binance_control.py)."""

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

from loguru import logger

from tests.fakes.binance_server import FakeBinance


async def _serve_forever(fake: FakeBinance) -> None:
    async with fake:
        print(f"fake binance on {fake.url} (ws {fake.ws_url}) key={fake.api_key} "
              f"secret={fake.api_secret}", flush=True)
        while True:
            await asyncio.sleep(3600)


def main(argv: list[str] | None = None,
         serve: Callable[[FakeBinance], Awaitable[None]] = _serve_forever) -> None:
    parser = argparse.ArgumentParser(description="Fake Binance USD-M futures server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="fake-api-key-0123456789")
    parser.add_argument("--api-secret", default="fake-api-secret-0123456789")
    parser.add_argument("--ws-layout", default="both", choices=("routed", "legacy", "both"))
    parser.add_argument("--price", action="append", default=[],
                        help="SYMBOL=PRICE, repeatable (default: a few majors)")
    args = parser.parse_args(argv)
    prices = {k: Decimal(v) for k, v in (item.split("=", 1) for item in args.price)} or None
    fake = FakeBinance(api_key=args.api_key, api_secret=args.api_secret, prices=prices,
                       host=args.host, port=args.port, ws_layout=args.ws_layout)
    started = time.monotonic()
    try:
        asyncio.run(serve(fake))
    except KeyboardInterrupt:
        logger.info("fake binance stopped after {:.0f}s", time.monotonic() - started)


if __name__ == "__main__":
    main()

"""The libraries' own log lines (python-telegram-bot, httpx, python-binance, aiohttp,
asyncio: all on the standard `logging` module) and Python warnings go through the agent's
loguru sinks: masked like every other line, one JSON object per line with LOG_JSON=1, and
the chatty ones (httpx's line per request) kept quiet.

The leak this guards against: a proxy's HTML error page echoing the request path
`/bot<TOKEN>/getMe` made python-telegram-bot log "Can not load invalid JSON data: ..." with
the token in it, raw, beside the JSON stream.
"""

import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from loguru import logger
from telegram import Bot
from telegram.error import NetworkError
from telegram.warnings import PTBDeprecationWarning

from trader.logs import register_secret, setup_logging

TOKEN = "123456789:AAH-proxy-echoed-SECRET-token"
QUIETED = ("httpx", "httpcore", "matplotlib", "PIL", "telegram", "binance", "aiohttp")


@pytest.fixture(autouse=True)
def stdlib_logging_restored() -> Iterator[None]:
    """setup_logging takes over the process's root logger: give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIETED}
    yield
    logger.remove()
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)


def failing_request() -> None:
    raise ValueError(f"Expecting value: line 1 column 1 (char 0) in /bot{TOKEN}/getMe")


def log_from_telegram_request() -> None:
    """What telegram.request does with an HTML body (telegram/request/_baserequest.py)."""
    page = f"<html><body><h1>502 Bad Gateway</h1>\n<p>/bot{TOKEN}/getMe</p></body></html>"
    try:
        failing_request()
    except ValueError:
        logging.getLogger("telegram.request").exception('Can not load invalid JSON data: "%s"',
                                                        page)


def json_records(err: str) -> list[dict[str, Any]]:
    """Every line of stderr as a JSON object (json.loads fails the test on any other line)."""
    return [json.loads(line)["record"] for line in err.splitlines()]


def test_a_library_error_with_a_traceback_is_one_masked_json_line(capsys) -> None:
    register_secret(TOKEN)
    setup_logging(json_lines=True, level="INFO")
    log_from_telegram_request()
    err = capsys.readouterr().err
    assert TOKEN not in err
    [record] = json_records(err)
    assert record["name"] == "telegram.request"
    assert record["level"]["name"] == "ERROR"
    assert record["message"].startswith('Can not load invalid JSON data: "<html>')
    assert "********" in record["message"]
    assert record["exception"]["type"] == "ValueError"
    assert "********" in record["exception"]["value"]


def test_a_library_error_in_plain_lines_is_masked_with_its_traceback(capsys) -> None:
    register_secret(TOKEN)
    setup_logging(json_lines=False, level="INFO")
    log_from_telegram_request()
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert " ERROR   telegram.request: Can not load invalid JSON data" in err
    assert "Traceback" in err and "ValueError" in err and "********" in err


@pytest.mark.parametrize(("level", "shown"), [
    ("INFO", {"binance warning", "aiohttp error", "asyncio error"}),
    ("DEBUG", {"binance warning", "aiohttp error", "asyncio error", "telegram info",
               "telegram debug", "aiohttp info"}),
])
def test_chatty_libraries_speak_at_warning_unless_debugging(level: str, shown: set[str],
                                                            capsys) -> None:
    setup_logging(json_lines=True, level=level)
    # httpx logs every request at INFO: PTB's getUpdates long poll, every few seconds.
    logging.getLogger("httpx").info('HTTP Request: POST http://x/getUpdates "HTTP/1.1 200 OK"')
    logging.getLogger("httpcore.http11").debug("receive_response_headers.started")
    logging.getLogger("matplotlib.font_manager").info("generated new fontManager")
    logging.getLogger("telegram.ext.Application").info("telegram info")
    logging.getLogger("telegram.ext.Updater").debug("telegram debug")
    logging.getLogger("binance.ws.reconnecting_websocket").warning("binance warning")
    logging.getLogger("aiohttp.access").info("aiohttp info")
    logging.getLogger("aiohttp.client").error("aiohttp error")
    logging.getLogger("asyncio").error("asyncio error")
    assert {record["message"] for record in json_records(capsys.readouterr().err)} == shown


def test_a_python_warning_is_a_log_record_too(capsys) -> None:
    setup_logging(json_lines=True, level="INFO")
    warnings.warn(PTBDeprecationWarning("22.2", "retry_after will become a timedelta"),
                  stacklevel=1)
    [record] = json_records(capsys.readouterr().err)
    assert record["name"] == "py.warnings" and record["level"]["name"] == "WARNING"
    assert "PTBDeprecationWarning: Deprecated since version 22.2: retry_after will become" \
        in record["message"]


async def echoing_bad_gateway(request: web.Request) -> web.Response:
    """A proxy in front of Telegram that is down: an HTML page naming the path it was asked."""
    return web.Response(status=502, content_type="text/html",
                        text=f"<html><head><title>502 Bad Gateway</title></head><body>"
                             f"<p>upstream failed for {request.path}</p></body></html>")


async def test_python_telegram_bot_behind_a_failing_proxy_logs_no_token(capsys) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echoing_bad_gateway)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    register_secret(TOKEN)
    setup_logging(json_lines=True, level="INFO")
    try:
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot")
        with pytest.raises(NetworkError, match="Bad Gateway"):
            async with bot:      # initialize: getMe
                pass
    finally:
        await runner.cleanup()
    err = capsys.readouterr().err
    assert TOKEN not in err
    records = json_records(err)
    assert any(r["name"] == "telegram.request.BaseRequest" and r["message"].startswith(
        "Can not load invalid JSON data") and "/bot********/getMe" in r["message"]
        for r in records), records


def test_optunas_warnings_go_through_loguru(capsys: pytest.CaptureFixture[str]) -> None:
    """optuna writes through its own stderr handler unless told otherwise: its lines would
    escape the masking and the LOG_JSON format."""
    optuna_logging = pytest.importorskip("optuna.logging",
                                         reason="optuna is an optional extra")
    from trader.sweep import import_optuna
    setup_logging(json_lines=True, level="INFO")
    import_optuna()
    optuna_logging.get_logger("optuna.study").warning("trial 3 failed with value None")
    err = capsys.readouterr().err
    logger.remove()
    assert [record["name"] for record in json_records(err)] == ["optuna.study"]


def updater_fails_at_shutdown() -> None:
    """What telegram.ext.Updater logs when its last getUpdates fails while stopping
    (telegram/ext/_updater.py, `_stop_polling`), on a connection Telegram dropped."""
    try:
        try:
            raise ConnectionResetError("Server disconnected without sending a response.")
        except ConnectionResetError as exc:
            raise NetworkError(f"httpx.RemoteProtocolError: {exc}") from exc
    except NetworkError:
        logging.getLogger("telegram.ext.Updater").exception(
            "Error while calling `get_updates` one more time to mark all fetched updates.")


def test_a_librarys_network_error_is_one_line_without_its_traceback(capsys) -> None:
    """A dropped connection is no bug: python-telegram-bot's 70-line traceback reached the
    operator's terminal at a shutdown while Telegram was unreachable (found by a reviewer).
    The line keeps the error's type and text."""
    setup_logging(json_lines=False, level="INFO")
    updater_fails_at_shutdown()
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    [line] = err.strip().splitlines()
    assert "telegram.ext.Updater" in line and "Error while calling `get_updates`" in line
    assert "error=telegram.error.NetworkError: httpx.RemoteProtocolError: Server disconnected" \
        in line, line


def test_any_other_library_error_keeps_its_traceback(capsys) -> None:
    setup_logging(json_lines=False, level="INFO")
    log_from_telegram_request()            # a ValueError: a bug or a bad answer, worth it all
    assert "Traceback" in capsys.readouterr().err

"""No secret in a log line, traceback included: the message is masked, and so are an
exception's text (an URL with the bot token in it) and its frames' variables (not shown)."""

import json

import pytest
from loguru import logger

from trader.logs import register_secret, setup_logging

SECRET = "k3y-S3CR3T-0123456789"


def failing_call(api_secret: str) -> None:
    raise ConnectionError(f"cannot reach https://api.telegram.org/bot{api_secret}/getMe")


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_logged_exception_shows_no_secret(json_lines: bool,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    register_secret(SECRET)
    setup_logging(json_lines=json_lines, level="DEBUG")
    try:
        failing_call(SECRET)
    except ConnectionError as exc:
        logger.opt(exception=exc).error("telegram unreachable token={}", SECRET)
    err = capsys.readouterr().err
    assert "telegram unreachable" in err and "ConnectionError" in err
    assert "Traceback" in err or "traceback" in err          # the traceback is still there
    assert SECRET not in err
    assert "********" in err
    logger.remove()


@pytest.mark.parametrize("secret", ['pa"ss-word-01', "back\\slash-key-02", "tab\tkey-0003",
                                    "ключ-секрет-04"])
def test_a_secret_with_json_escaped_characters_is_masked_in_json_lines(
        secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    """LOG_JSON=1 writes the line JSON-escaped (`"` as `\\"`), an exception's text and
    traceback included: the escaped spelling of a secret is masked too."""
    register_secret(secret)
    setup_logging(json_lines=True, level="DEBUG")
    try:
        failing_call(secret)
    except ConnectionError as exc:
        logger.opt(exception=exc).error("telegram unreachable")
    err = capsys.readouterr().err
    logger.remove()
    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    assert secret not in err and escaped not in err
    assert "********" in json.loads(err.splitlines()[-1])["text"]

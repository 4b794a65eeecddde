"""Binance's error answers to a request that could create or cancel an order, by kind, as
its pages document them: execution unknown (probed by client id, never sent again blind),
a failure (nothing executed; some retryable) or a refusal. Error-code page:
https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code; the 408
and the 503 variants: .../usds-margined-futures/general-info ("HTTP Return Codes", "HTTP
503 Status: Message Variants & Handling"). The documented answers are the fixtures
tests/fixtures/binance/error_*.json; the fake answers them (`FakeBinance.answer_documented`).

Before the fix, -1006 and HTTP 408 were read as refusals ("unexpected error") and every
5xx as unknown, the documented failures (-1008, -1001, "Service Unavailable.") included.
"""

import pytest

from tests.fakes.binance_harness import market, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import documented
from trader.domain import OrderRole, Side
from trader.exchange import binance_codec as codec
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.exchange.errors import Outcome, Retry, classify, execution_unknown

UNKNOWN = ("error_unexpected_resp", "error_backend_timeout", "error_408_empty",
           "error_503_unknown")
# failures Binance documents as "100% failure" / "a failure API operation": retryable
FAILED_RETRYABLE = ("error_request_throttled", "error_internal_503",
                    "error_503_service_unavailable", "error_server_busy")


def answer(name: str, *, sending: bool, status: int | None = None) -> Exception:
    doc = documented(name)
    body = doc.payload or {}
    return codec.error_from_answer(status or doc.http_status, body.get("code"),
                                   body.get("msg", ""), None, sending=sending)


@pytest.mark.parametrize("name", UNKNOWN)
def test_an_answer_that_leaves_the_execution_unknown_is_an_unknown_outcome(name):
    error = answer(name, sending=True)
    assert isinstance(error, UnknownOutcome)
    assert classify(error, OrderRole.ENTRY).outcome is Outcome.UNKNOWN


@pytest.mark.parametrize("status", [400, 500, 503])
def test_unexpected_resp_is_unknown_whatever_the_http_status(status):
    """-1006 "Execution status unknown." carries no documented status: the code decides."""
    assert isinstance(answer("error_unexpected_resp", sending=True, status=status),
                      UnknownOutcome)


@pytest.mark.parametrize("name", FAILED_RETRYABLE)
def test_a_documented_failure_is_a_failure_to_retry_not_an_unknown_outcome(name):
    error = answer(name, sending=True)
    assert isinstance(error, ExchangeError)
    verdict = classify(error, OrderRole.ENTRY)
    assert (verdict.outcome, verdict.retry) == (Outcome.SKIPPED, Retry.BACKOFF)


@pytest.mark.parametrize("role", [OrderRole.ENTRY, OrderRole.STOP_LOSS, OrderRole.FLATTEN])
def test_a_refusal_stays_a_refusal_for_every_role(role):
    """Negative: -2019 (margin) is final, never probed, never retried."""
    error = answer("error_margin_insufficient", sending=True)
    assert not isinstance(error, UnknownOutcome)
    verdict = classify(error, role)
    assert verdict.outcome is Outcome.SKIPPED and verdict.retry is Retry.NONE


def test_a_refusal_at_a_5xx_status_is_still_the_refusal_its_code_says():
    error = codec.error_from_answer(503, -4164, "Order's notional must be no smaller than 5.0 "
                                    "(unless you choose reduce only)", None, sending=True)
    assert not isinstance(error, UnknownOutcome)
    assert classify(error, OrderRole.ENTRY).outcome is Outcome.SKIPPED


@pytest.mark.parametrize("name", [*UNKNOWN, *FAILED_RETRYABLE])
def test_for_a_read_or_a_cancel_every_server_answer_is_asked_again(name):
    """Nothing is created by a read or a cancel: the gate retries them with backoff."""
    error = answer(name, sending=False)
    assert isinstance(error, ExchangeError)
    verdict = classify(error, sending=False)
    assert (verdict.outcome, verdict.retry) == (Outcome.SKIPPED, Retry.BACKOFF)


def test_an_undocumented_5xx_stays_unknown_and_a_message_decides_the_503_variants():
    assert execution_unknown(502, 0, "HTTP 502 without a Binance error body")
    assert execution_unknown(500, 0, "Request occur unknown error.")   # "retry later" only
    assert execution_unknown(503, -1001, "Unknown error, please check your request or try "
                                         "again later.")
    assert not execution_unknown(503, 0, "Service Unavailable.")
    assert execution_unknown(502, 0, "Service Unavailable.")   # variant B is a 503's


# Every code of the error-code page beyond the server issues (11xx request issues, 20xx
# processing, 40xx filters, 50xx order execution): the request was refused, so never an
# unknown outcome, whatever HTTP status comes with it.
REFUSALS = (
    -1100, -1101, -1102, -1103, -1104, -1105, -1106, -1108, -1109, -1110, -1111, -1112,
    -1113, -1114, -1115, -1116, -1117, -1118, -1119, -1120, -1121, -1122, -1125, -1126,
    -1127, -1128, -1130, -1136, -2010, -2011, -2012, -2013, -2014, -2015, -2016, -2017,
    -2018, -2019, -2020, -2021, -2022, -2023, -2024, -2025, -2026, -2027, -2028,
    *range(-4033, -3999), -4044, -4045, -4046, -4047, -4048, *range(-4088, -4048),
    -4104, -4109, -4114, -4115, -4116, -4117, -4118, -4120, -4131, -4135, -4137, -4138,
    -4139, -4140, -4141, -4142, -4144, -4161, -4164, -4165, -4167, -4168, -4169, -4170,
    -4171, -4172, -4183, -4184, -4192, -4202, -4203, -4205, -4206, -4208, -4209, -4210,
    -4211, -4400, -4401, -4402, -4403, -5021, -5022, -5024, -5025, -5026, -5027, -5028,
    -5029, -5037, -5038, -5039, -5040, -5041, -5043)
# The 10xx server issues: which leave a send's execution unknown.
SERVER_ISSUES = {-1000: True, -1001: False, -1002: False, -1004: False, -1005: False,
                 -1006: True, -1007: True, -1008: False, -1010: True, -1011: False,
                 -1013: False, -1014: False, -1016: False, -1020: False, -1021: False,
                 -1022: False, -1023: False, -1099: False}


@pytest.mark.parametrize("status", [400, 503])
def test_the_whole_error_code_table_is_sorted_into_unknown_and_failure(status):
    for code in REFUSALS:
        assert not execution_unknown(status, code, "refused"), code
    for code, unknown in SERVER_ISSUES.items():
        assert execution_unknown(status, code, "server issue") is unknown, code


# --- through the client library, against the fake ------------------------------------

@pytest.mark.parametrize("name", [*UNKNOWN, *FAILED_RETRYABLE, "error_margin_insufficient"])
async def test_the_adapter_reads_each_documented_answer_of_the_fake_by_its_kind(name):
    """The fake answers as the page shows (an empty 408 included); python-binance and the
    codec turn each into the error of its kind."""
    async with FakeBinance() as fake, started_exchange(fake) as exchange:
        fake.answer_documented("POST /fapi/v1/order", name)
        with pytest.raises((ExchangeError, UnknownOutcome)) as raised:
            await exchange.place(market(Side.BUY, "0.01"))
    assert isinstance(raised.value, UnknownOutcome) is (name in UNKNOWN), raised.value
    assert raised.value.http_status == documented(name).http_status

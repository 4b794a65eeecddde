"""/sl with a price written with a decimal comma, as a phone set to a European locale types
it: "0,61" is 0.61 to the person, and the parser used to drop the comma as a thousands
separator and read 61, a stop a hundred times away (for a SHORT at 0.58 that is on the
right side of the mark: one tap on the confirmation and the position has no real stop).

A comma is a thousands separator only where it cannot be a decimal comma: two or more groups
of three ("1,234,567"), or one group followed by a decimal dot ("49,300.25"). "49,300" and
"1,234" are refused: to a European phone they are 49.3 and 1.234, and the confirmation prompt
would show them back as "49,300" and "1,234", so the person would confirm a stop 1,000 times
away. Anything else with a comma is refused too, naming the dot."""

from decimal import Decimal

import pytest

from bot.parsing import UsageError, parse_command

SYMBOLS = ["XRPUSDT", "BTCUSDT"]


@pytest.mark.parametrize("text", ["0,61", "49,3", "1,2345", ",5", "5,", "1,,000", "12,34.5",
                                  "1234,567", "0,6100", "0,610", "49,300", "1,234", "100,000"])
def test_a_comma_that_cannot_be_a_thousands_separator_is_refused(text: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_command("sl", ["XRPUSDT", text], SYMBOLS)
    assert f"{text} is not a price" in str(refused.value)
    assert "dot" in str(refused.value)


@pytest.mark.parametrize(("text", "value"), [
    ("1,234,567.5", "1234567.5"), ("999", "999"), ("0.61", "0.61"),
    ("49,300.25", "49300.25"), ("1,000,000", "1000000")])
def test_thousands_separators_still_read(text: str, value: str) -> None:
    assert parse_command("sl", ["BTCUSDT", text], SYMBOLS).price == Decimal(value)

"""TRADEBOT_ALERTS_SILENT / TRADEBOT_ALERTS_OFF: alert names, checked at start-up (a typo is a
config error naming the variable and the closest name; a CRITICAL name is refused)."""

import pytest

from trader.alert_routing import AlertRouting
from trader.alerts import AlertName
from trader.config import ConfigError, load_settings


def problems(**env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **env)
    return caught.value.problems


def test_names_are_read_case_insensitively_and_become_the_routing() -> None:
    settings = load_settings(_env_file=None, TRADEBOT_ALERTS_SILENT="error, position_reduced",
                             TRADEBOT_ALERTS_OFF="DAILY_SUMMARY")
    routing = AlertRouting.from_settings(settings)
    assert routing.silent == {AlertName.ERROR, AlertName.POSITION_REDUCED}
    assert routing.off == {AlertName.DAILY_SUMMARY}
    assert settings.masked()["TRADEBOT_ALERTS_OFF"] == "DAILY_SUMMARY"


def test_by_default_nothing_is_silenced_or_off() -> None:
    routing = AlertRouting.from_settings(load_settings(_env_file=None))
    assert routing.silent == routing.off == frozenset()


@pytest.mark.parametrize("variable", ["TRADEBOT_ALERTS_SILENT", "TRADEBOT_ALERTS_OFF"])
def test_a_typo_names_the_variable_and_the_closest_alert(variable: str) -> None:
    [line] = problems(**{variable: "FILL,BREAKER_TRIPED"})
    assert line.startswith(f"{variable}: unknown alert name 'BREAKER_TRIPED'")
    assert "did you mean BREAKER_TRIPPED?" in line


def test_a_name_like_nothing_points_to_the_readme() -> None:
    [line] = problems(TRADEBOT_ALERTS_OFF="XYZZY")
    assert "unknown alert name 'XYZZY'" in line and "README" in line


@pytest.mark.parametrize("variable", ["TRADEBOT_ALERTS_SILENT", "TRADEBOT_ALERTS_OFF"])
def test_a_critical_alert_cannot_be_silenced_or_turned_off(variable: str) -> None:
    [line] = problems(**{variable: "SL_MISSING"})
    assert line.startswith(f"{variable}: SL_MISSING is CRITICAL")

"""The lowest value a field of a dataclass strategy accepts, declared on the field, so the
strategy refuses a bad value when built and `tradebot sweep` refuses it before any trial.

    @dataclass(frozen=True)
    class MyStrategy:
        channel: int = at_least(30, 1)              # 1 or more
        sl_atr: Decimal = above(Decimal("1.5"), 0)  # more than 0

        def __post_init__(self) -> None:
            check_bounds(self)   # ValueError("channel=0: must be at least 1")
"""

from dataclasses import Field, field, fields
from typing import Any

# Dataclass field metadata key: (bound, inclusive) for the lowest value a field accepts.
LOWEST = "lowest"


def at_least(default: Any, minimum: Any) -> Any:
    """A dataclass field with `default` that accepts `minimum` and more."""
    return field(default=default, metadata={LOWEST: (minimum, True)})


def above(default: Any, bound: Any) -> Any:
    """A dataclass field with `default` that accepts only values greater than `bound`."""
    return field(default=default, metadata={LOWEST: (bound, False)})


def bound_problem(item: "Field[Any]", value: Any) -> str | None:
    """Why `value` is outside the bound declared on the field ("must be at least 1"), or
    None (also for a field that declares none)."""
    if LOWEST not in item.metadata:
        return None
    bound, inclusive = item.metadata[LOWEST]
    if value >= bound if inclusive else value > bound:
        return None
    return f"must be {'at least' if inclusive else 'above'} {bound}"


def check_bounds(strategy: Any) -> None:
    """ValueError naming the first field of a dataclass strategy outside its declared
    bound: "channel=-5: must be at least 1"."""
    for item in fields(strategy):
        problem = bound_problem(item, getattr(strategy, item.name))
        if problem:
            raise ValueError(f"{item.name}={getattr(strategy, item.name)}: {problem}")

"""Capturing loguru messages in a test.

    with logged("WARNING") as lines:
        ...
    assert any("replaced" in line for line in lines)
"""

from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger


@contextmanager
def logged(level: str, starting: str = "") -> Iterator[list[str]]:
    """The messages logged at `level` or above while inside (those starting with `starting`)."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level=level,
                      filter=lambda record: record["message"].startswith(starting))
    try:
        yield lines
    finally:
        logger.remove(sink)

"""A Ray instance of the tests' own (the tests of `tradebot sweep` on Ray)."""

import os
from collections.abc import Iterator

import pytest

# A Ray instance for the tests alone: every address on the loopback (Ray's own switch for
# single-machine clusters), no usage report sent out, no token file shared through HOME.
LOCAL_RAY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
             "RAY_AUTH_MODE": "disabled"}
# Ray reads them when imported, and any test may import it first: set as the session starts
# (tests/conftest.py imports this module). A value set outside is left as it is.
for _name, _value in LOCAL_RAY.items():
    os.environ.setdefault(_name, _value)


def local_ray() -> Iterator[str]:
    """Starts a Ray instance on the loopback, yields its address, shuts it down."""
    ray = pytest.importorskip("ray", reason="ray is an optional extra: pip install '.[ray]'")
    # address="local": a new instance, never the one a stale /tmp/ray/ray_current_cluster names
    context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                       configure_logging=False)
    try:
        assert context.address_info["address"].startswith("127.0.0.1:"), "loopback only"
        yield context.address_info["address"]
    finally:
        ray.shutdown()

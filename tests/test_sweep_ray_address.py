"""RAY_ADDRESS naming a host:port where no Ray cluster listens: one line naming RAY_ADDRESS
within seconds and exit 2. Before, ray.init (which has no bound) retried for minutes,
warning every 5 s (review4: killed after 500 s; a Ctrl-C took 37 s)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_sweep import SLICE
from trader.sweep_runners import check_reachable, this_machines_cluster
from trader.sweep_spec import SweepError

BOUND = 60.0   # imports and the bundled candles on a busy machine; the check itself: < 5 s


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_port_where_nothing_listens_is_refused_at_once() -> None:
    port = closed_port()
    with pytest.raises(SweepError) as refused:
        check_reachable(f"127.0.0.1:{port}")
    assert str(refused.value) == (
        f"RAY_ADDRESS=127.0.0.1:{port}: no Ray cluster answers there (Connection refused); "
        "start one with `ray start --head` or unset RAY_ADDRESS")


def test_an_address_that_never_answers_is_given_up_within_the_bound() -> None:
    """192.0.2.1: TEST-NET-1 (RFC 5737), routed nowhere: a connect there hangs or fails."""
    started = time.monotonic()
    with pytest.raises(SweepError, match=r"RAY_ADDRESS=ray://192\.0\.2\.1:10001: no Ray"):
        check_reachable("ray://192.0.2.1:10001", seconds=0.5)
    assert time.monotonic() - started < 3


def test_a_listening_head_and_other_forms_pass() -> None:
    """The negative case: something listens there (a head), or the form is Ray's to read."""
    with socket.socket() as head:
        head.bind(("127.0.0.1", 0))
        head.listen()
        check_reachable(f"127.0.0.1:{head.getsockname()[1]}")
        check_reachable(f"ray://localhost:{head.getsockname()[1]}")
    check_reachable("auto")   # without a target: Ray's to find


def test_auto_is_checked_at_the_cluster_it_stands_for(monkeypatch) -> None:
    """RAY_ADDRESS=auto with no head running and /tmp/ray/ray_current_cluster left behind
    (a head that died, another user's): ray.init hung there as for a host:port."""
    services = pytest.importorskip("ray._private.services", reason="ray is an optional extra")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    port = closed_port()
    monkeypatch.setattr(services, "find_gcs_addresses", list)
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: f"127.0.0.1:{port}")
    target = this_machines_cluster("auto")
    assert target is not None and target.endswith(f":{port}")   # the host: Ray's node address
    with pytest.raises(SweepError) as refused:
        check_reachable("auto", target=target)
    assert str(refused.value) == (
        f"RAY_ADDRESS=auto ({target}, the cluster last started on this machine): no Ray "
        "cluster answers there (Connection refused); start one with `ray start --head` or "
        "unset RAY_ADDRESS")
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    with pytest.raises(SweepError, match="RAY_ADDRESS=auto: no Ray cluster runs on this machine"):
        this_machines_cluster("auto")
    assert this_machines_cluster("127.0.0.1:6379") is None, "only auto is looked up"


def test_a_sweep_with_ray_address_where_nothing_listens_ends_in_seconds(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is an optional extra: pip install '.[ray]'")
    address = f"127.0.0.1:{closed_port()}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "PYTHONDONTWRITEBYTECODE": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_ADDRESS": address}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "trader", "sweep", *SLICE, "--grid", "strategy.channel=20,30"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BOUND, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the sweep still waited for RAY_ADDRESS={address} after {BOUND:.0f} s")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"sweep error: RAY_ADDRESS={address}: no Ray cluster answers there "
                     "(Connection refused); start one with `ray start --head` or unset "
                     "RAY_ADDRESS"]
    assert not (tmp_path / "out").exists()

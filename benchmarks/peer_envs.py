"""The peers of benchmarks/peers.py and their virtualenvs: each peer is installed from the
package registry with pip into its own venv under the cache dir (~/.cache/tradebot-bench/
<peer>), once; later runs reuse it while its requirement is unchanged.

    env = ensure_environment(PEERS["jesse"], Path("~/.cache/tradebot-bench").expanduser())
    env.python      # the venv's interpreter, which runs peer_runners/jesse_runner.py

A peer that cannot be installed raises PeerUnavailable with the reason (no suitable Python,
pip's last error line, the package does not import), which peers.py prints in its row.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RUNNERS = Path(__file__).resolve().parent / "peer_runners"
INSTALL_TIMEOUT = 40 * 60      # seconds; freqtrade and jesse took ~3 min each here
MARKER = "tradebot-bench.json"


class PeerUnavailable(Exception):
    """The peer cannot run here; the message is the reason, one line."""


@dataclass(frozen=True)
class Peer:
    """One engine: `requirement` is what pip installs (pinned: the runners use their APIs);
    `module` must import afterwards; `min_python` the oldest Python the pinned release ships
    wheels for."""
    name: str
    kind: str
    requirement: str
    module: str
    distribution: str
    min_python: tuple[int, int] = (3, 11)

    @property
    def runner(self) -> Path:
        return RUNNERS / f"{self.name}_runner.py"


PEERS = {peer.name: peer for peer in (
    Peer("jesse", "event-driven", "jesse==3.5.3", "jesse", "jesse"),
    Peer("freqtrade", "pandas signals + trade loop", "freqtrade==2026.9", "freqtrade",
         "freqtrade"),
    Peer("nautilus", "event-driven", "nautilus_trader==1.231.0", "nautilus_trader",
         "nautilus_trader", min_python=(3, 12)),
    Peer("backtesting", "vectorised + bar loop", "backtesting==0.6.6", "backtesting",
         "backtesting"),
)}
DISPLAY = {"nautilus": "nautilus_trader", "backtesting": "backtesting.py"}


@dataclass(frozen=True)
class Environment:
    python: Path
    version: str                       # the installed distribution's version
    install_seconds: float | None      # None: reused from the cache


def python_version(executable: str | Path) -> tuple[int, int] | None:
    """(major, minor) of an interpreter that runs, else None (a pyenv shim of a Python that
    is not selected exits with an error)."""
    try:
        answer = subprocess.run([str(executable), "-c", "import sys; print(*sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = answer.stdout.split()
    return (int(parts[0]), int(parts[1])) if answer.returncode == 0 and len(parts) == 2 else None


def find_python(minimum: tuple[int, int]) -> Path | None:
    """The oldest interpreter >= `minimum` among this one, python3.X on PATH and pyenv's."""
    candidates = [Path(sys.executable)]
    for minor in range(minimum[1], 16):
        found = shutil.which(f"python3.{minor}")
        if found:
            candidates.append(Path(found))
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(pyenv.glob("3.*/bin/python3"))
    usable = []
    for candidate in candidates:
        version = python_version(candidate)
        if version is not None and version >= minimum:
            usable.append((version, candidate))
    return min(usable)[1] if usable else None


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_environment(peer: Peer, cache: Path) -> Environment:
    """The peer's venv, installed now if missing or made for another requirement."""
    venv = cache / peer.name
    marker = venv / MARKER
    if marker.exists() and json.loads(marker.read_text()).get("requirement") == peer.requirement \
            and python_version(venv_python(venv)) is not None:
        return Environment(venv_python(venv), installed_version(venv, peer), None)
    python = find_python(peer.min_python)
    if python is None:
        raise PeerUnavailable(f"{peer.requirement} needs Python >= "
                              f"{'.'.join(map(str, peer.min_python))}; none found")
    if venv.exists():
        shutil.rmtree(venv)    # a partial install, or one for another requirement
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / f"{peer.name}.install.log"
    started = time.perf_counter()
    _run_logged([str(python), "-m", "venv", str(venv)], log, "python -m venv")
    _run_logged([str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check",
                 peer.requirement], log, f"pip install {peer.requirement}")
    seconds = time.perf_counter() - started
    check = subprocess.run([str(venv_python(venv)), "-c", f"import {peer.module}"],
                           capture_output=True, text=True, timeout=300, check=False)
    if check.returncode != 0:
        raise PeerUnavailable(f"{peer.module} does not import: {last_line(check.stderr)}")
    marker.write_text(json.dumps({"requirement": peer.requirement, "python": str(python),
                                  "install_seconds": round(seconds, 1)}))
    return Environment(venv_python(venv), installed_version(venv, peer), seconds)


def _run_logged(command: list[str], log: Path, what: str) -> None:
    with log.open("a") as output:
        output.write(f"$ {' '.join(command)}\n")
        output.flush()
        try:
            done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT,
                                  timeout=INSTALL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise PeerUnavailable(f"{what}: no answer in {INSTALL_TIMEOUT} s (log: {log})") \
                from None
    if done.returncode != 0:
        raise PeerUnavailable(f"{what} failed: {last_line(log.read_text())} (log: {log})")


def installed_version(venv: Path, peer: Peer) -> str:
    try:
        answer = subprocess.run(
            [str(venv_python(venv)), "-c",
             f"import importlib.metadata as m; print(m.version({peer.distribution!r}))"],
            capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return answer.stdout.strip() if answer.returncode == 0 else "?"


def last_line(text: str) -> str:
    """The last non-empty line of an error output, shortened: what a table cell can hold."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = re.sub(r"\s+", " ", lines[-1]) if lines else "no output"
    return line if len(line) <= 160 else line[:157] + "..."

"""`make run`'s whole platform started for a test or a benchmark: `maille-devstack run` on free ports and a .var of
its own (beside any real `make run`), stopped by Ctrl-C on leaving, as a person stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from maille_devstack.processes import free_port
from maille_devstack.stack import Ports

READY_LINE = "Ctrl-C or `make stop`"
# Debian's Chromium for the portal's tests and benchmark, and what it needs here: no sandbox as root, and none of its
# calls home (this machine's network is closed: they would fail, many at a time, at every start).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Devstack:
    ports: Ports
    var: Path
    output: str  # up to the ready line
    returncode: int | None = None  # once stopped: 0 when Ctrl-C stopped everything cleanly
    rest: str = ""  # once stopped: what it printed after the ready line

    @property
    def gateway(self) -> str:
        return f"http://localhost:{self.ports.gateway}"

    @property
    def keycloak(self) -> str:
        return f"http://localhost:{self.ports.keycloak}"

    @property
    def docstore(self) -> str:
        return f"mongodb://127.0.0.1:{self.ports.docstore}"

    def env_of(self, deployable: str) -> dict[str, str]:
        """The environment an operator's command of `deployable` runs with against this platform (its settings, its
        NATS user's password), as `maille-devstack env <deployable>` prints it."""
        here = {
            **os.environ,
            "MAILLE_DEVSTACK_PORTS": json.dumps(vars(self.ports)),
            "MAILLE_DEVSTACK_VAR": str(self.var),
        }
        exports = subprocess.run(
            [str(Path(sys.executable).parent / "maille-devstack"), "env", deployable],
            env=here,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return {**os.environ, **dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())}


@contextmanager
def devstack(var: Path, *, start_seconds: float = 400, env: dict[str, str] | None = None) -> Iterator[Devstack]:
    """The platform, up (its ready line printed) within `start_seconds`; stopped with Ctrl-C on leaving."""
    ports = Ports(**{name: free_port() for name in vars(Ports())})
    environment = {**os.environ, **(env or {}), "MAILLE_DEVSTACK_PORTS": json.dumps(vars(ports))}
    environment["MAILLE_DEVSTACK_VAR"] = str(var)
    environment.pop("MONGODB_URL", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "maille-devstack"), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        start_new_session=True,
    )
    stack: Devstack | None = None
    try:
        seen: list[str] = []
        deadline = time.monotonic() + start_seconds
        assert process.stdout is not None
        while READY_LINE not in "".join(seen[-1:]):
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("the devstack exited:\n" + "".join(seen))
            seen.append(line)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the devstack did not start in {start_seconds:g} s:\n" + "".join(seen))
        stack = Devstack(ports=ports, var=var, output="".join(seen))
        yield stack
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            rest, _ = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            rest, _ = process.communicate(timeout=10)
        if stack is not None:
            stack.returncode, stack.rest = process.returncode, rest

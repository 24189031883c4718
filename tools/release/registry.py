"""A local OCI registry — the CNCF distribution registry, built from its Go module — for `make release` when no
registry is named: `registry.py start` (in the background, data in .var/registry, on 127.0.0.1:5000 or
$MAILLE_REGISTRY_PORT), `registry.py stop`. `make stop` stops it too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / ".var"
PID = VAR / "run" / "registry.pid"
BINARY = ROOT / ".cache" / "bin" / "registry"


def config(data: Path, port: int) -> str:
    return (
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )


def serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The registry on 127.0.0.1:`port` keeping its blobs in `data`, once it answers (30 s at most)."""
    data.mkdir(parents=True, exist_ok=True)
    (data / "config.yml").write_text(config(data / "blobs", port))
    process = subprocess.Popen(
        [str(BINARY), "serve", str(data / "config.yml")],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the registry did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def main(action: str) -> None:
    port = int(os.environ.get("MAILLE_REGISTRY_PORT", "5000"))
    if action == "start":
        if PID.exists():
            print(f"127.0.0.1:{port}")
            return
        PID.parent.mkdir(parents=True, exist_ok=True)
        process = serve(VAR / "registry", port, VAR / "run" / "registry.log")
        PID.write_text(str(process.pid))
        print(f"127.0.0.1:{port}")
    elif action == "stop" and PID.exists():
        try:
            os.kill(int(PID.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
        PID.unlink()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "start")

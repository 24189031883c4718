"""Each deployable starts with `python -m maille_<name>`, answers /healthz, /readyz, /openapi.json and
its /about, and stops cleanly on SIGTERM; wrong settings or an unreachable NATS stop it with a clear word."""

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from maille_devstack.processes import DocstoreServer, NatsServer, Process, ServiceProcess, free_port

DEPLOYABLES = ["gateway", "identity", "catalog", "messaging", "library", "timeline", "support", "observatory"]


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_starts_serves_and_stops_cleanly(name: str, service_factory: Callable[..., ServiceProcess]) -> None:
    service = service_factory(name, wait=False)
    # Started as `python -m maille_<name>` rather than by its console script.
    service.process.stop()
    service.process.argv = [sys.executable, "-m", f"maille_{name}"]
    service.start()
    assert httpx.get(f"{service.url}/healthz").status_code == 200
    assert httpx.get(f"{service.url}/readyz").status_code == 200
    openapi = httpx.get(f"{service.url}/openapi.json").json()
    assert f"/api/{name}/v1/about" in openapi["paths"]
    assert httpx.get(f"{service.url}/api/{name}/v1/about").json()["name"] == name

    popen = service.process.popen
    assert popen is not None
    popen.send_signal(signal.SIGTERM)
    assert popen.wait(15) == 0
    log = service.process.log_path.read_text()
    assert '"message": "stopped"' in log
    assert "Traceback" not in log


def test_not_ready_while_nats_is_away_past_a_blip(
    nats_factory: Callable[[], NatsServer], docstore_server: DocstoreServer, tmp_path: Path
) -> None:
    nats = nats_factory()
    service = ServiceProcess(
        "catalog",
        port=free_port(),
        log_dir=tmp_path,
        env={
            "MAILLE_CATALOG_NATS_URL": nats.url,
            "MAILLE_CATALOG_MONGODB_URL": docstore_server.url,
            "MAILLE_CATALOG_NATS_GRACE_SECONDS": "3",
        },
    )
    service.start()
    try:
        nats.stop()
        # a blip (a NATS node restarting): still in its Service, for the requests that need no NATS
        assert httpx.get(f"{service.url}/readyz").status_code == 200
        service.process.wait_ready(lambda: httpx.get(f"{service.url}/readyz").status_code == 503, 10)
        answer = httpx.get(f"{service.url}/readyz")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["checks"] == {"nats": False, "docstore": True}
        assert httpx.get(f"{service.url}/healthz").status_code == 200  # alive all the same
        nats.start()
        service.process.wait_ready(lambda: httpx.get(f"{service.url}/readyz").status_code == 200, 20)
    finally:
        service.stop()


def test_not_ready_while_its_docstore_does_not_answer(nats_server: NatsServer, tmp_path: Path) -> None:
    """A docstore that accepts connections but answers nothing (stuck, as when its storage froze): /readyz says
    so within its deadline instead of hanging, and ready again once the store answers."""
    store = DocstoreServer(port=free_port(), data_dir=tmp_path / "docstore", log_dir=tmp_path)
    store.start()
    service = ServiceProcess(
        "catalog",
        port=free_port(),
        log_dir=tmp_path,
        env={"MAILLE_CATALOG_NATS_URL": nats_server.url, "MAILLE_CATALOG_MONGODB_URL": store.url},
    )
    try:
        service.start()
        popen = store.process.popen
        assert popen is not None
        popen.send_signal(signal.SIGSTOP)
        try:
            answer = httpx.get(f"{service.url}/readyz", timeout=10)
            assert answer.status_code == 503 and answer.json()["checks"] == {"nats": True, "docstore": False}
            assert answer.elapsed.total_seconds() < 5
            about = httpx.get(f"{service.url}/api/catalog/v1/about", timeout=10)
            assert about.status_code == 200 and about.json()["docstore"]["connected"] is False
        finally:
            popen.send_signal(signal.SIGCONT)
        service.process.wait_ready(lambda: httpx.get(f"{service.url}/readyz").status_code == 200, 20)
    finally:
        service.stop()
        store.stop()


def test_unreachable_nats_stops_the_start_with_a_clear_word(docstore_server: DocstoreServer, tmp_path: Path) -> None:
    process = Process(
        "catalog",
        [sys.executable, "-m", "maille_catalog"],
        tmp_path / "catalog.log",
        env={
            "MAILLE_CATALOG_HTTP_PORT": str(free_port()),
            "MAILLE_CATALOG_NATS_URL": f"nats://127.0.0.1:{free_port()}",
            "MAILLE_CATALOG_NATS_CONNECT_TIMEOUT": "2",
            "MAILLE_CATALOG_MONGODB_URL": docstore_server.url,
        },
    )
    process.start()
    assert process.popen is not None
    assert process.popen.wait(30) == 3
    assert "unreachable" in process.log_path.read_text()


def test_invalid_settings_named() -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "maille_gateway"],
        capture_output=True,
        text=True,
        timeout=30,
        env={
            "MAILLE_GATEWAY_HTTP_PORT": "eighty",
            "MAILLE_GATEWAY_ROUTES": '{"catalog": "ftp://x"}',
            "PATH": "/usr/bin",
        },
    )
    assert answer.returncode == 2
    assert "http_port" in answer.stderr and "routes" in answer.stderr
    assert "ftp://x" in answer.stderr

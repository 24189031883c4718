"""What an operator's Prometheus sees of `make run`'s platform: Debian's Prometheus scrapes every deployable's
/metrics; once a pupil has signed in through EduConnect, read their mail and médiacentre, and an operator has
imported an AAF delivery, the series the dashboards and alerts read are there, with the labels they use."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from maille_devstack.browser import Browser
from maille_devstack.keycloak_admin import admin_client, ensure_service_client
from maille_devstack.paths import PROMETHEUS, require
from maille_devstack.processes import Process, free_port
from maille_devstack.started import Devstack, devstack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    with devstack(tmp_path_factory.mktemp("var")) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(stack: Devstack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Prometheus, scraping every deployable each second."""
    work = tmp_path_factory.mktemp("prometheus")
    targets = "".join(
        f"  - job_name: {name}\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{target}']}}]\n"
        for name, target in stack.ports.metrics_targets().items()
    )
    (work / "prometheus.yml").write_text(f"global: {{scrape_timeout: 1s}}\nscrape_configs:\n{targets}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        "prometheus",
        [
            str(require(PROMETHEUS, "Debian's prometheus (`make setup`)")),
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        work / "prometheus.log",
    )
    process.start()
    try:
        process.wait_ready(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 30)
        yield url
    finally:
        process.stop()


def query(prometheus: str, promql: str) -> list[dict]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).raise_for_status()
    return answer.json()["data"]["result"]


def eventually(prometheus: str, promql: str, seconds: float = 60, has=bool) -> list[dict]:
    """The series `promql` gives once `has` them (by default: once there are some; each scrape is a second
    apart), or fail naming them."""
    deadline = time.monotonic() + seconds
    while not has(found := query(prometheus, promql)):
        assert time.monotonic() < deadline, f"not there: {promql} gives {found}"
        time.sleep(1)
    return found


def operator_token(stack: Devstack) -> str:
    """A token of an operator's API client, made in the realm as an operator would (admin console)."""
    client_id, secret = "test-metrics-operator", "test-metrics-operator-secret"
    with admin_client(stack.keycloak, "admin", "admin") as admin:
        ensure_service_client(admin, client_id, secret, roles=("operator",))
    answer = httpx.post(
        f"{stack.keycloak}/realms/maille/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30,
    )
    return answer.raise_for_status().json()["access_token"]


def test_prometheus_scrapes_every_deployable_and_finds_the_key_series(stack: Devstack, prometheus: str) -> None:
    gateway = stack.gateway
    # Every deployable is a target, and up.
    deadline = time.monotonic() + 60
    while True:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        health = {target["labels"]["job"]: (target["health"], target["lastError"]) for target in targets}
        if len(health) == 8 and all(state == "up" for state, _ in health.values()):
            break
        assert time.monotonic() < deadline, f"targets not all up: {health}"
        time.sleep(1)
    assert set(health) == {
        "gateway",
        "identity",
        "catalog",
        "messaging",
        "library",
        "timeline",
        "support",
        "observatory",
    }

    # A pupil's morning: sign in through EduConnect, the inbox, the médiacentre.
    with MongoClient(stack.docstore, serverSelectionTimeoutMS=3000) as client:
        pupil = client["maille_identity"]["persons"].find_one({"kind": "pupil"})
    assert pupil is not None
    browser = Browser()
    page = browser.go(f"{gateway}/login", params={"idp": "educonnect", "next": "/api/identity/v1/me"})
    assert browser.sign_in_upstream(page, pupil["keys"][0], "demo").status_code == 200
    assert browser.request("GET", f"{gateway}/api/messaging/v1/folders/inbox/messages").status_code == 200
    assert browser.request("GET", f"{gateway}/api/catalog/v1/mediacentre").status_code == 200

    # An operator imports the demo delivery again (nothing changes; every record is read).
    delivery = io.BytesIO()
    with tarfile.open(fileobj=delivery, mode="w:gz") as tar:
        for path in sorted(Path(stack.var, "demo-aaf").glob("*.xml")):
            tar.add(path, arcname=path.name)
    token = operator_token(stack)
    job = httpx.post(
        f"{gateway}/api/identity/v1/operator/imports",
        params={"filename": "demo.tar.gz"},
        content=delivery.getvalue(),
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert job.status_code == 202, job.text

    # RED per route, on the gateway and behind it.
    signed_in = eventually(prometheus, 'maille_gateway_signins_total{idp="educonnect",outcome="linked"}')
    assert float(signed_in[0]["value"][1]) >= 1
    eventually(prometheus, "maille_gateway_sessions_started_total")
    eventually(prometheus, 'maille_gateway_live_streams{job="gateway"}')  # the pages' live streams, open now
    wanted = {("messaging", "/api/messaging/v1/folders/{folder}/messages"), ("catalog", "/api/catalog/v1/mediacentre")}
    eventually(
        prometheus,
        "http_server_request_duration_seconds_count",
        has=lambda found: wanted <= {(s["metric"]["job"], s["metric"]["http_route"]) for s in found},
    )
    statuses = eventually(prometheus, 'http_server_request_duration_seconds_count{job="gateway"}')
    assert {"http_response_status_code", "http_route"} <= set(statuses[0]["metric"])
    # The docstore's calls, the outboxes, the consumers and the dead letters of each service that has them.
    for service in ("identity", "catalog", "messaging", "library", "timeline", "support", "observatory"):
        eventually(prometheus, f'maille_docstore_duration_seconds_bucket{{job="{service}",command="find"}}')
        eventually(prometheus, f'maille_outbox_backlog{{job="{service}"}}')
        eventually(prometheus, f'maille_outbox_lag_seconds{{job="{service}"}}')
        eventually(prometheus, f'maille_deadletters{{job="{service}",service="{service}"}}')
        eventually(prometheus, f'maille_consumer_pending{{job="{service}"}}')
        eventually(prometheus, f'maille_consumer_redelivered{{job="{service}"}}')
    # The import's progress and outcome; the GAR client certificate's expiry (the catalog presents it).
    records = eventually(prometheus, 'maille_aaf_records_total{job="identity"}')
    assert float(records[0]["value"][1]) > 0
    eventually(prometheus, 'maille_aaf_imports_total{outcome="done"}', seconds=120)
    expiry = eventually(prometheus, 'maille_certificate_expiry_seconds{certificate="gar-client"}')
    assert float(expiry[0]["value"][1]) > time.time()

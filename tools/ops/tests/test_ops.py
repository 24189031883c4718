"""maille-ops short of the API calls (no Kubernetes API server can run on the project's machine: see the README):
the status read off real client objects made from what the charts render, the rolling restart's patch, and the
Job it starts from identity's CronJob — checked by kubeconform as Kubernetes would check it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from maille_ops.ops import JOBS, RESTARTED_AT, job_from_cronjob, restart_patch, table, workload_of

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools" / "charts"))
import check  # noqa: E402


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    check.build_dependencies()
    return check.documents(check.render("maille"))


def as_client(doc: dict, kind: str):
    """The `kubernetes` package's object for a manifest, as the API would hand it back."""
    return ApiClient()._ApiClient__deserialize(doc, kind)


def named(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_status_names_what_is_not_ready_first(rendered: list[dict]) -> None:
    gateway = {
        **named(rendered, "Deployment", "maille-gateway"),
        "status": {"readyReplicas": 2, "updatedReplicas": 2, "observedGeneration": 3},
    }
    gateway["spec"] = {**gateway["spec"], "replicas": 2}
    gateway["metadata"] = {**gateway["metadata"], "generation": 3}
    nats = {
        **named(rendered, "StatefulSet", "maille-nats"),
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "observedGeneration": 1},
    }
    nats["metadata"] = {**nats["metadata"], "generation": 1}
    rolling = {
        **named(rendered, "Deployment", "maille-identity"),
        "status": {"readyReplicas": 2, "updatedReplicas": 2, "observedGeneration": 4},
    }
    rolling["spec"] = {**rolling["spec"], "replicas": 2}
    rolling["metadata"] = {**rolling["metadata"], "generation": 5}  # a new spec the controller has not seen yet
    workloads = [
        workload_of("Deployment", as_client(gateway, "V1Deployment")),
        workload_of("StatefulSet", as_client(nats, "V1StatefulSet")),
        workload_of("Deployment", as_client(rolling, "V1Deployment")),
    ]
    assert [w.healthy for w in workloads] == [True, False, False]
    lines = table(workloads).splitlines()
    assert lines[0].split()[:5] == ["KIND", "NAME", "READY", "UP-TO-DATE", "STATE"]
    assert "maille-nats" in lines[2] and "2/3" in lines[2] and "NOT READY" in lines[2]
    assert "maille-identity" in lines[1] and "NOT READY" in lines[1]
    assert lines[3].split()[1:3] == ["maille-gateway", "2/2"] and lines[3].endswith("ghcr.io/maille/gateway:0.1.0")


def test_restart_rolls_the_pods_by_a_new_template_annotation() -> None:
    patch = restart_patch(datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    assert patch == {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-12-03T08:00:00Z"}}}}}


@pytest.mark.parametrize("job", sorted(JOBS))
def test_run_makes_a_job_kubernetes_accepts_from_the_cronjob(rendered: list[dict], job: str) -> None:
    cronjob = named(rendered, "CronJob", f"maille-{JOBS[job]}")
    cronjob["metadata"] = {**cronjob["metadata"], "namespace": "maille", "uid": "0b9c5a52-2f7e-4bd4-9a3c-0d4c1a6f7e11"}
    body = job_from_cronjob(as_client(cronjob, "V1CronJob"), now=datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    body["spec"] = ApiClient().sanitize_for_serialization(body["spec"])
    assert body["metadata"]["name"] == f"maille-{JOBS[job]}-manual-20261203080000"
    assert body["metadata"]["ownerReferences"][0]["name"] == f"maille-{JOBS[job]}"
    assert (
        body["spec"]["template"]["spec"]["containers"][0]["command"]
        == cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    )
    assert body["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    version = (check.SCHEMAS / ".done").read_text().split()[-1]
    assert "Valid: 1" in check.kubeconform(f"maille-ops run {job}", json.dumps(body), version)


def test_without_a_cluster_the_operator_is_told(tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "none"), "KUBERNETES_SERVICE_HOST": ""}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "maille-ops"), "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stderr.startswith("maille-ops: ") and "Traceback" not in done.stderr, (
        done.stderr
    )
    bad = subprocess.run(
        [str(Path(sys.executable).parent / "maille-ops"), "run", "nightly"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr

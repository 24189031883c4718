"""maille-ops against a real Kubernetes API server: kube-apiserver (built from Kubernetes' own module by `make`) on
etcd (Debian's package), with what the umbrella chart renders applied to it. No controller runs there (no
scheduler, no kubelet): a workload's status is what the test writes through the status subresource, as a
controller would — everything maille-ops reads and writes goes through the real API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client, config, utils

from maille_devstack.paths import DEPLOYABLES
from maille_devstack.processes import free_port
from maille_ops.ops import RESTARTED_AT

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools" / "charts"))
import check  # noqa: E402

APISERVER = ROOT / ".cache" / "bin" / "kube-apiserver"
ETCD = ROOT / ".cache" / "debs" / "etcd" / "root" / "usr" / "bin" / "etcd"
TOKEN = "maille-ops-test-token"


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    assert APISERVER.exists() and ETCD.exists(), "kube-apiserver and etcd are set up by `make test` (make ops-cluster)"
    work = tmp_path_factory.mktemp("cluster")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    (work / "tokens.csv").write_text(f'{TOKEN},operator,1,"system:masters"\n')
    subprocess.run(["openssl", "genrsa", "-out", str(work / "sa.key"), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(work / "sa.key"), "-pubout", "-out", str(work / "sa.pub")],
        check=True,
        capture_output=True,
    )
    logs = [open(work / "etcd.log", "w"), open(work / "apiserver.log", "w")]
    etcd = subprocess.Popen(
        [
            str(ETCD),
            "--data-dir",
            str(work / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer_port}",
        ],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
        env={**os.environ, "ETCD_UNSUPPORTED_ARCH": "amd64"},
    )
    apiserver = subprocess.Popen(
        [
            str(APISERVER),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={work / 'certs'}",
            f"--token-auth-file={work / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={work / 'sa.pub'}",
            f"--service-account-signing-key-file={work / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-priority-and-fairness=false",
        ],
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    path = work / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "clusters": [
                    {
                        "name": "test",
                        "cluster": {"server": f"https://127.0.0.1:{api_port}", "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "operator", "user": {"token": TOKEN}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "operator"}}],
            }
        )
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ready = httpx.get(
                    f"https://127.0.0.1:{api_port}/readyz",
                    verify=False,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=2,
                )
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and apiserver.poll() is None, (work / "apiserver.log").read_text()[
                -3000:
            ]
            time.sleep(1)
        yield path
    finally:
        for process in (apiserver, etcd):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def cluster(kubeconfig: Path) -> client.ApiClient:
    """The API with the umbrella chart's manifests applied in namespace maille (hooks and all)."""
    api = config.new_client_from_config(str(kubeconfig))
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "maille"}})
    check.build_dependencies()
    for doc in check.documents(check.render("maille")):
        utils.create_from_dict(api, doc, namespace="maille")
    return api


def ops(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "maille-ops"), "-n", "maille", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        timeout=120,
    )


def roll_out(api: client.ApiClient) -> None:
    """What the controllers would report once every pod runs: each workload ready and up to date."""
    apps = client.AppsV1Api(api)
    kinds = (
        (apps.list_namespaced_deployment, apps.patch_namespaced_deployment_status, {}),
        (apps.list_namespaced_stateful_set, apps.patch_namespaced_stateful_set_status, {"currentReplicas": None}),
    )
    for listing, patch, more in kinds:
        for item in listing("maille").items:
            replicas = item.spec.replicas
            status = {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas}
            status |= {key: replicas for key in more} | {"availableReplicas": replicas}
            patch(item.metadata.name, "maille", {"status": {**status, "observedGeneration": item.metadata.generation}})


def test_status_then_restart_then_run_on_a_real_api_server(cluster: client.ApiClient, kubeconfig: Path) -> None:
    # Just installed: nothing runs yet — every workload named, NOT READY, exit 1.
    fresh = ops(kubeconfig, "status")
    assert fresh.returncode == 1, fresh.stdout + fresh.stderr
    names = [line.split()[1] for line in fresh.stdout.splitlines()[1:]]
    assert sorted(names) == sorted(f"maille-{name}" for name in (*DEPLOYABLES, "keycloak", "nats", "mongodb"))
    assert fresh.stdout.count("NOT READY") == 11 and "ghcr.io/maille/gateway:0.1.0" in fresh.stdout

    roll_out(cluster)
    ready = ops(kubeconfig, "status")
    assert ready.returncode == 0 and "NOT READY" not in ready.stdout, ready.stdout
    assert "0/2" not in ready.stdout and "3/3" in ready.stdout  # NATS's three servers

    # A key rotated: the gateway and identity roll (a new template), and are not up to date until the controller says
    # so.
    rolled = ops(kubeconfig, "restart", "gateway", "maille-identity")
    assert rolled.returncode == 0 and "maille-gateway, maille-identity" in rolled.stdout, rolled.stderr
    apps = client.AppsV1Api(cluster)
    for name in ("maille-gateway", "maille-identity"):
        assert RESTARTED_AT in apps.read_namespaced_deployment(name, "maille").spec.template.metadata.annotations
    assert RESTARTED_AT not in (
        apps.read_namespaced_deployment("maille-catalog", "maille").spec.template.metadata.annotations or {}
    )
    rolling = ops(kubeconfig, "status")
    assert rolling.returncode == 1 and rolling.stdout.count("NOT READY") == 2
    unknown = ops(kubeconfig, "restart", "mail")
    assert (
        unknown.returncode == 1
        and "no Deployment of Maille named maille-mail" in unknown.stderr
        and "maille-messaging" in unknown.stderr
    )

    # The GAR export and the AAF import now: Jobs from identity's CronJobs (the suspended one too).
    batch = client.BatchV1Api(cluster)
    for job, cronjob in (("gar-export", "maille-identity-gar-export"), ("aaf-import", "maille-identity-aaf-import")):
        started = ops(kubeconfig, "run", job)
        assert started.returncode == 0, started.stderr
        name = started.stdout.split()[1]
        created = batch.read_namespaced_job(name, "maille")
        source = batch.read_namespaced_cron_job(cronjob, "maille")
        assert (
            created.metadata.owner_references[0].name == cronjob
            and created.metadata.owner_references[0].uid == source.metadata.uid
        )
        assert (
            created.spec.template.spec.containers[0].command
            == source.spec.job_template.spec.template.spec.containers[0].command
        )


def test_helm_install_on_the_api_server_says_what_next(kubeconfig: Path) -> None:
    """`helm install` of the umbrella (server-side dry run: the API server checks every object) ends with the NOTES
    an operator reads: where the portal is, how to see the pods, which Secrets to create, how to watch it."""
    check.build_dependencies()
    out = check.helm(
        "install",
        "notes",
        str(check.CHARTS / "maille"),
        "--namespace",
        "notes",
        "--create-namespace",
        "--dry-run=server",
        "--kubeconfig",
        str(kubeconfig),
    )
    notes = out.split("NOTES:", 1)[1]
    assert "https://ent.example.org/" in notes and "https://auth.ent.example.org/" in notes
    assert "maille-ops -n notes status" in notes
    for secret in ("maille-nats-users", "maille-mongodb", "maille-keycloak"):
        assert secret in notes
    assert "alerts       off (monitoring.alerts.enabled)" in notes and "maille-ops deadletters list" in notes

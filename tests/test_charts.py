"""The Helm charts as an operator deploys them: what `helm template` renders (with the Helm `make charts` builds)
is locked down, probed, sized, spread, budgeted and fenced; nothing secret is in it; a `latest` tag or an unknown
field is refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "charts"))
import check  # noqa: E402  (tools/charts/check.py: what `make charts` runs)

SERVICES = check.DEPLOYABLES
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    assert (check.BIN / "helm").exists(), "Helm is built by `make charts` (make test runs it first)"
    check.build_dependencies()
    return {name: check.documents(text) for name, text in check.renders().items()}


def pod_of(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def named(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_every_pod_is_locked_down_sized_and_versioned(rendered: dict[str, list[dict]]) -> None:
    for render, docs in rendered.items():
        workloads = [d for d in docs if d["kind"] in WORKLOADS]
        assert workloads, render
        for doc in workloads:
            pod, where = pod_of(doc), f"{render}: {doc['kind']} {doc['metadata']['name']}"
            assert (
                pod["securityContext"]["runAsNonRoot"] is True
                and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
            ), where
            assert pod["automountServiceAccountToken"] is False, where
            for container in pod["containers"] + pod.get("initContainers", []):
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False, (
                    where
                )
                assert security["capabilities"]["drop"] == ["ALL"], where
                image = container["image"]
                assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), (where, image)
                assert container["resources"]["requests"] and container["resources"]["limits"], where


def test_the_services_are_probed_spread_budgeted_and_scaled(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["maille/production"]
    for service in (s for s in SERVICES if s != "observatory"):
        deployment = named(docs, "Deployment", f"maille-{service}")
        container = pod_of(deployment)["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        spread = pod_of(deployment)["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        assert named(docs, "PodDisruptionBudget", f"maille-{service}")["spec"]["maxUnavailable"] == 1
        hpa = named(docs, "HorizontalPodAutoscaler", f"maille-{service}")
        assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    # The observatory: one replica folds the uses — no budget keeping it from a drain, no autoscaler doubling it.
    observatory = named(docs, "Deployment", "maille-observatory")
    assert observatory["spec"]["replicas"] == 1 and observatory["spec"]["strategy"] == {"type": "Recreate"}
    assert not [
        d
        for d in docs
        if d["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")
        and d["metadata"]["name"] == "maille-observatory"
    ]
    nats = named(docs, "StatefulSet", "maille-nats")
    assert nats["spec"]["replicas"] == 3
    config = named(docs, "ConfigMap", "maille-nats")["data"]["nats.conf"]
    assert "jetstream" in config and config.count("nats://maille-nats-") == 3


def test_only_the_gateway_is_reachable_and_the_infrastructure_only_from_maille(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["maille/default"]
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    gateway_pods = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": "maille"}
    for service in ("identity", "catalog", "messaging", "library"):
        rules = policies[f"maille-{service}"]["spec"]["ingress"]
        http = [rule for rule in rules if rule["ports"] == [{"port": "http", "protocol": "TCP"}]]
        assert [peer["podSelector"]["matchLabels"] for rule in http for peer in rule["from"]] == [gateway_pods], service
        # Beside it, only the metrics port, for the cluster's Prometheus.
        assert [rule["ports"] for rule in rules if rule not in http] == [[{"port": "metrics", "protocol": "TCP"}]]
    assert "from" not in policies["maille-gateway"]["spec"]["ingress"][0]  # the public entry
    for part in ("nats", "mongodb"):
        peers = [peer for rule in policies[f"maille-{part}"]["spec"]["ingress"] for peer in rule["from"]]
        assert peers == [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "maille"}}}], part
    keycloak = [peer for rule in policies["maille-keycloak"]["spec"]["ingress"] for peer in rule["from"]]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "maille"}}} in keycloak
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in keycloak
    # Every pod of the release carries the label those policies let in; only Services of the gateway's are exposed.
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            assert doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "maille"
    ingresses = [
        rule["http"]["paths"][0]["backend"]["service"]["name"]
        for d in docs
        if d["kind"] == "Ingress"
        for rule in d["spec"]["rules"]
    ]
    assert sorted(ingresses) == ["maille-gateway", "maille-keycloak"]


def test_no_secret_is_written_only_existing_secrets_are_named(rendered: dict[str, list[dict]]) -> None:
    for render, docs in rendered.items():
        assert not [d for d in docs if d["kind"] == "Secret"], render
        text = json.dumps(docs)
        for leaked in ("dev-secret", "change-me", 'password": "'):
            assert leaked not in text, (render, leaked)
    refs = {
        ref["secretKeyRef"]["name"]
        for doc in rendered["maille/default"]
        if doc["kind"] in WORKLOADS
        for c in pod_of(doc)["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in (ref := e.get("valueFrom", {}))
    }
    assert refs == {
        "maille-mongodb",
        "maille-gateway",
        "maille-identity",
        "maille-keycloak",
        "maille-nats-users",
        "maille-library",
        "maille-timeline",
        "maille-support",
        "maille-usage",
    }

    # The usage key goes to those who tell uses, never to the observatory nor to identity.
    def usage_key(name: str) -> bool:
        env = pod_of(named(rendered["maille/default"], "Deployment", name))["containers"][0].get("env", [])
        return any(e["name"].endswith("_USAGE_KEY") for e in env)

    assert usage_key("maille-gateway") and usage_key("maille-messaging") and usage_key("maille-support")
    assert not usage_key("maille-observatory") and not usage_key("maille-identity")
    # One replica of the observatory folds the uses: replaced, never doubled, by an upgrade.
    observatory = named(rendered["maille/default"], "Deployment", "maille-observatory")
    assert observatory["spec"]["strategy"] == {"type": "Recreate"} and observatory["spec"]["replicas"] == 1


def test_the_catalog_reaches_the_gar_with_the_ents_certificate_from_its_secret(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["maille/production"]
    pod = pod_of(named(docs, "Deployment", "maille-catalog"))
    volume = next(v for v in pod["volumes"] if v["name"] == "gar-certificate")
    assert volume["secret"] == {"secretName": "maille-gar-certificate", "defaultMode": 288}  # 0440
    assert {"name": "gar-certificate", "mountPath": "/etc/maille/gar", "readOnly": True} in pod["containers"][0][
        "volumeMounts"
    ]
    config = named(docs, "ConfigMap", "maille-catalog")["data"]
    assert (
        config["MAILLE_CATALOG_GAR_CLIENT_CERT"] == "/etc/maille/gar/tls.crt"
        and config["MAILLE_CATALOG_GAR_CLIENT_KEY"] == "/etc/maille/gar/tls.key"
    )
    assert "gar-certificate" not in json.dumps(named(rendered["maille/default"], "Deployment", "maille-catalog"))


def test_the_external_endpoints_replace_the_bundled_infrastructure(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["maille/external"]
    assert not [
        d for d in docs if d["metadata"]["name"].startswith(("maille-nats", "maille-mongodb", "maille-keycloak"))
    ]
    env = {e["name"]: e for e in pod_of(named(docs, "Deployment", "maille-catalog"))["containers"][0]["env"]}
    assert env["MAILLE_CATALOG_NATS_URL"]["value"].startswith("nats://nats-0.nats.infra.svc")
    assert env["MAILLE_CATALOG_MONGODB_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "maille-mongodb-external",
        "key": "uri",
    }
    assert env["MAILLE_CATALOG_AUTH_ISSUER"]["value"] == "https://sso.example.org/realms/maille"


def test_keycloak_starts_with_its_quarkus_files_on_a_read_only_root(rendered: dict[str, list[dict]]) -> None:
    """Keycloak's `start` rewrites lib/quarkus and will not start on an empty one (seen with its distribution run as a
    non-root user over a read-only tree): an init container fills the writable volume with the image's files."""
    pod = pod_of(named(rendered["maille/production"], "Deployment", "maille-keycloak"))
    init = pod["initContainers"][0]
    assert (
        init["image"] == pod["containers"][0]["image"]
        and "cp -a /opt/keycloak/lib/quarkus/. /quarkus/" in init["command"][-1]
    )
    assert {"name": "quarkus", "mountPath": "/quarkus"} in init["volumeMounts"]
    assert {"name": "quarkus", "mountPath": "/opt/keycloak/lib/quarkus"} in pod["containers"][0]["volumeMounts"]


def test_identity_has_its_jobs(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["maille/default"]
    reconcile = named(docs, "Job", "maille-identity-keycloak-reconcile")
    assert pod_of(reconcile)["containers"][0]["command"] == ["maille-identity", "sync-keycloak"]
    assert reconcile["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    bootstrap = named(docs, "Job", "maille-messaging-bootstrap")
    assert pod_of(bootstrap)["containers"][0]["command"] == ["python", "-m", "maille_kit.bootstrap", "messaging"]
    assert "pre-upgrade" in bootstrap["metadata"]["annotations"]["helm.sh/hook"]
    gar = named(docs, "CronJob", "maille-identity-gar-export")
    assert gar["spec"]["schedule"] == "30 1 * * *" and pod_of(gar)["containers"][0]["command"][:2] == [
        "maille-identity",
        "export-gar",
    ]
    aaf = named(docs, "CronJob", "maille-identity-aaf-import")
    assert aaf["spec"]["suspend"] is True and pod_of(aaf)["containers"][0]["command"][:2] == [
        "maille-identity",
        "import-aaf",
    ]


def test_a_latest_tag_is_refused(tmp_path: Path) -> None:
    values = tmp_path / "latest.yaml"
    values.write_text("global:\n  imageTag: latest\n")
    with pytest.raises(RuntimeError, match="must name a version"):
        check.render("maille", [str(values)])
    values.write_text("nats:\n  image: docker.io/library/nats:latest\n")
    with pytest.raises(RuntimeError, match="must name a version"):
        check.render("maille", [str(values)])


def test_kubeconform_refuses_what_kubernetes_would(rendered: dict[str, list[dict]]) -> None:
    deployment = dict(named(rendered["maille/default"], "Deployment", "maille-library"))
    deployment["spec"] = {**deployment["spec"], "replicaz": 2}  # a field Kubernetes does not know
    versions = (check.SCHEMAS / ".done").read_text().split()
    with pytest.raises(RuntimeError, match="replicaz"):
        check.kubeconform("bogus", json.dumps(deployment), versions[0])
    assert "Valid: 1" in check.kubeconform(
        "fine", json.dumps(named(rendered["maille/default"], "Deployment", "maille-library")), versions[0]
    )


def test_the_realm_seed_is_identitys(rendered: dict[str, list[dict]]) -> None:
    seed = json.loads((ROOT / "charts" / "maille" / "files" / "realm-maille.json").read_text())
    ours = json.loads((ROOT / "identity" / "keycloak" / "realm-maille.json").read_text())
    assert seed["clients"][0].pop("secret") == "${MAILLE_IDENTITY_KEYCLOAK_CLIENT_SECRET}"
    ours["clients"][0].pop("secret")
    assert seed == ours


def test_make_charts_passes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "charts" / "check.py")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Invalid: 0, Errors: 0" in done.stdout and "Valid: 0," not in done.stdout


def test_production_holds_the_8am_peak_of_docs_capacity(rendered: dict[str, list[dict]]) -> None:
    """docs/capacity.md: Keycloak needs 14.4 vCPU at 300 sign-ins/s and 207 refreshes/s (at 70 %), with a pod spare
    for one lost, and at most the 32 vCPU the model allows; the gateway 5.4 at its peak — what values-production.yaml
    requests must hold it. Keycloak's pools fit its PostgreSQL's 250 connections."""
    docs = rendered["maille/production"]

    def cpu(value: str) -> float:
        return float(value[:-1]) / 1000 if str(value).endswith("m") else float(value)

    keycloak = named(docs, "Deployment", "maille-keycloak")
    container = pod_of(keycloak)["containers"][0]
    replicas, per_pod = keycloak["spec"]["replicas"], cpu(container["resources"]["requests"]["cpu"])
    assert (replicas - 1) * per_pod >= 14.4, (replicas, per_pod)  # the peak held with one pod lost
    assert replicas * cpu(container["resources"]["limits"]["cpu"]) <= 32
    pool = {e["name"]: e.get("value") for e in container["env"]}["KC_DB_POOL_MAX_SIZE"]
    assert replicas * int(pool) <= 250 - int(pool)  # and one pod more during a rolling update
    gateway = named(docs, "HorizontalPodAutoscaler", "maille-gateway")["spec"]
    per_pod = cpu(pod_of(named(docs, "Deployment", "maille-gateway"))["containers"][0]["resources"]["requests"]["cpu"])
    assert (
        gateway["maxReplicas"] * per_pod * gateway["metrics"][0]["resource"]["target"]["averageUtilization"] / 100
        >= 5.4
    )
    assert not [d for d in docs if d["metadata"]["name"].startswith("maille-mongodb")]  # an external replica set
    assert named(docs, "PersistentVolumeClaim", "maille-identity-data")["spec"]["accessModes"] == ["ReadWriteMany"]


def test_every_values_key_is_commented() -> None:
    """Each key of every chart's values files has its comment on the line(s) just above it (or a group's above it)."""
    uncommented = []
    for values in sorted(
        (ROOT / "charts").glob("*/values.yaml")
    ):  # values-production.yaml only sets keys described here
        lines = values.read_text().splitlines()
        for number, line in enumerate(lines):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
                continue
            above = lines[number - 1].strip() if number else ""
            if not above.startswith("#") and "#" not in line:
                uncommented.append(f"{values.relative_to(ROOT)}:{number + 1}: {stripped}")
    assert uncommented == [], "\n".join(uncommented)


def test_the_nats_configuration_is_one_nats_server_accepts(rendered: dict[str, list[dict]], tmp_path: Path) -> None:
    for render in ("maille/default", "maille/production"):
        conf = named(rendered[render], "ConfigMap", "maille-nats")["data"]["nats.conf"]
        # The TLS Secret's files, as mounted: a server certificate and its CA.
        from maille_devstack.pki import make_pki

        pki = make_pki(tmp_path / "pki")
        tls = tmp_path / "nats-tls"
        tls.mkdir(exist_ok=True)
        for name, source in (("tls.crt", pki.server_cert), ("tls.key", pki.server_key), ("ca.crt", pki.ca)):
            (tls / name).write_bytes(Path(source).read_bytes())
        conf = conf.replace("/data", str(tmp_path / "data")).replace("/etc/nats-tls", str(tls))
        (tmp_path / "nats.conf").write_text(conf)
        from maille_kit.busauth import USERS, password_variable

        passwords = {password_variable(user): "p" for user in USERS}
        # The NATS pods read each of them from the Secret.
        env = named(rendered[render], "StatefulSet", "maille-nats")["spec"]["template"]["spec"]["containers"][0]["env"]
        assert set(passwords) <= {variable["name"] for variable in env}
        done = subprocess.run(
            [str(Path(sys.executable).parent / "nats-server"), "-c", str(tmp_path / "nats.conf"), "-t"],
            env={**os.environ, "POD_NAME": "maille-nats-0", **passwords},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0 and "is valid" in done.stdout + done.stderr, (render, done.stdout + done.stderr)


def test_each_deployable_is_its_own_nats_user_and_production_speaks_tls(rendered: dict[str, list[dict]]) -> None:
    from maille_kit.busauth import authorization

    made = (ROOT / "charts" / "maille" / "files" / "nats-authorization.conf").read_text()
    assert made.endswith(authorization()), (
        "charts/maille/files/nats-authorization.conf is stale: make it again from busauth"
    )
    for render in ("maille/default", "maille/production"):
        conf = named(rendered[render], "ConfigMap", "maille-nats")["data"]["nats.conf"]
        assert "authorization {" in conf and "$MAILLE_NATS_CATALOG_PASSWORD" in conf
        nats_env = {
            e["name"]: e for e in pod_of(named(rendered[render], "StatefulSet", "maille-nats"))["containers"][0]["env"]
        }
        for service in SERVICES:
            secret = nats_env[f"MAILLE_NATS_{service.upper()}_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert secret == {"name": "maille-nats-users", "key": service}
            pod = pod_of(named(rendered[render], "Deployment", f"maille-{service}"))
            env = {e["name"]: e for e in pod["containers"][0]["env"]}
            prefix = f"MAILLE_{service.upper()}_"
            assert env[f"{prefix}NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
                "name": "maille-nats-users",
                "key": service,
            }
            if render == "maille/production":
                assert env[f"{prefix}NATS_URL"]["value"].startswith("tls://")
                assert env[f"{prefix}NATS_TLS_CA_FILE"]["value"] == "/etc/maille/nats-tls/ca.crt"
                assert any(v.get("secret", {}).get("secretName") == "maille-nats-tls" for v in pod["volumes"])
        assert ("tls {" in conf) == (render == "maille/production")


def test_the_gateway_believes_forwarded_addresses_only_from_its_proxies(rendered: dict[str, list[dict]]) -> None:
    for render in ("maille/default", "maille/production", "gateway"):
        env = {
            e["name"]: e
            for e in pod_of(named(rendered[render], "Deployment", "maille-gateway"))["containers"][0]["env"]
        }
        assert env["FORWARDED_ALLOW_IPS"]["value"] and "*" not in env["FORWARDED_ALLOW_IPS"]["value"]


def test_production_keeps_three_copies_of_every_stream_and_bucket(rendered: dict[str, list[dict]]) -> None:
    """A NATS node lost in production loses no event and no session: every deployable makes its streams and
    buckets with 3 replicas there (1 by default, for a single NATS)."""
    for values, expected in (("maille/production", "3"), ("maille/default", "1")):
        for service in SERVICES:
            deployment = named(rendered[values], "Deployment", f"maille-{service}")
            env = {e["name"]: e.get("value") for e in pod_of(deployment)["containers"][0]["env"]}
            replicas = [value for name, value in env.items() if name.endswith("_STREAM_REPLICAS")]
            assert replicas == [expected], (values, deployment["metadata"]["name"])


def test_production_is_watched_scraped_alerted_and_charted(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["maille/production"]
    for service in ("gateway", "identity", "catalog", "messaging", "library"):
        monitor = named(docs, "ServiceMonitor", f"maille-{service}")
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        pods = named(docs, "Deployment", f"maille-{service}")["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in pods["ports"]
        assert {"name": f"MAILLE_{service.upper()}_METRICS_PORT", "value": "9464"} in pods["env"]
        assert any(port["name"] == "metrics" for port in named(docs, "Service", f"maille-{service}")["spec"]["ports"])
    rules = named(docs, "PrometheusRule", "maille-alerts")["spec"]["groups"]
    alerts = {rule["alert"] for group in rules for rule in group["rules"]}
    assert {
        "MailleErrorRatioHigh",
        "MailleOutboxLagging",
        "MailleDeadLetters",
        "MailleGarCertificateExpiring",
    } <= alerts
    dashboards = [d for d in docs if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]]
    assert sorted(name for d in dashboards for name in d["data"]) == ["overview.json", "service.json", "signin.json"]
    # Every alert has its entry in the runbook, under the anchor its annotation names.
    runbook = (check.ROOT / "docs" / "operations.md").read_text()
    anchors = {"#" + line.lstrip("#").strip().lower() for line in runbook.splitlines() if line.startswith("### ")}
    for group in rules:
        for rule in group["rules"]:
            assert rule["annotations"]["runbook"].removeprefix("docs/operations.md") in anchors, rule["alert"]
    # A serviceMonitor without a metrics port is refused, not rendered scraping nothing.
    with pytest.raises(RuntimeError, match="serviceMonitor.enabled needs a metricsPort"):
        check.helm(
            "template",
            "maille",
            str(check.CHARTS / "maille"),
            "--set",
            "catalog.metricsPort=0",
            "--set",
            "catalog.serviceMonitor.enabled=true",
        )


@pytest.mark.parametrize(
    ("setting", "refusal"),
    [
        (("--set", "gateway.replicaCont=3"), "additional properties 'replicaCont' not allowed"),
        (("--set-string", "catalog.replicaCount=deux"), "got string, want integer"),
        (("--set", "monitoring.alerts.enable=true"), "additional properties 'enable' not allowed"),
        (("--set", "global.nats.streamReplica=3"), "additional properties 'streamReplica' not allowed"),
        (("--set", "catalog.image.digest=latest"), "'/image/digest': 'latest' does not match pattern"),
    ],
)
def test_a_wrong_key_or_type_in_the_values_is_refused_by_name(rendered, setting: tuple[str, str], refusal: str) -> None:
    for command in (
        ("lint", "--strict", str(check.CHARTS / "maille")),
        ("template", "maille", str(check.CHARTS / "maille")),
    ):
        with pytest.raises(RuntimeError, match=re.escape(refusal)):
            check.helm(*command, *setting)


def test_a_quantity_may_be_a_number_and_a_free_map_any_key(rendered) -> None:
    manifests = check.helm(
        "template",
        "maille",
        str(check.CHARTS / "maille"),
        "--set",
        "catalog.resources.requests.cpu=2",
        "--set",
        "identity.config.GAR_EXPORT_AT=02:30",
    )
    assert "MAILLE_IDENTITY_GAR_EXPORT_AT" in manifests

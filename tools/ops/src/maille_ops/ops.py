"""What maille-ops does, on the Kubernetes API: Maille's workloads are those labelled
`app.kubernetes.io/part-of=maille` in the release's namespace (every chart of Maille sets it).

Each operation is split in two: the request body it sends, built by a plain function (tested without a
cluster), and the call that sends it (`Cluster`, a thin wrapper over the `kubernetes` client)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SELECTOR = "app.kubernetes.io/part-of=maille"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` sets: the pods are replaced in turn
JOBS = {
    "gar-export": "identity-gar-export",
    "aaf-import": "identity-aaf-import",
}  # maille-ops run NAME -> CronJob suffix


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet of Maille, as `status` shows it."""

    kind: str
    name: str
    desired: int
    ready: int
    updated: int
    images: tuple[str, ...]
    generation_seen: bool  # the controller has seen the latest spec

    @property
    def healthy(self) -> bool:
        return self.generation_seen and self.ready >= self.desired and self.updated >= self.desired


def workload_of(kind: str, obj: Any) -> Workload:
    """A Workload from a V1Deployment or V1StatefulSet."""
    spec, status, meta = obj.spec, obj.status, obj.metadata
    desired = spec.replicas if spec.replicas is not None else 1
    images = tuple(c.image for c in spec.template.spec.containers)
    seen = (status.observed_generation or 0) >= (meta.generation or 0)
    return Workload(kind, meta.name, desired, status.ready_replicas or 0, status.updated_replicas or 0, images, seen)


def table(workloads: list[Workload]) -> str:
    """The status table: one line per workload, NOT READY first to catch the eye."""
    rows = [("KIND", "NAME", "READY", "UP-TO-DATE", "STATE", "IMAGES")]
    for w in sorted(workloads, key=lambda w: (w.healthy, w.kind, w.name)):
        rows.append(
            (
                w.kind,
                w.name,
                f"{w.ready}/{w.desired}",
                str(w.updated),
                "ok" if w.healthy else "NOT READY",
                ", ".join(w.images),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(widths[i]) if i < 5 else c for i, c in enumerate(r)).rstrip() for r in rows)


def restart_patch(now: datetime | None = None) -> dict[str, Any]:
    """The patch that rolls a workload's pods one by one (new pod template annotation)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def job_from_cronjob(cronjob: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """A Job made now from a CronJob's template (what `kubectl create job --from=cronjob/…` does), owned by it so that
    the CronJob's history keeps it; a suspended CronJob's template runs just the same."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    template = cronjob.spec.job_template
    labels = dict((template.metadata.labels if template.metadata else None) or {})
    labels.update({k: v for k, v in (cronjob.metadata.labels or {}).items() if k.startswith("app.kubernetes.io/")})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{cronjob.metadata.name}-manual-{stamp}"[:63],
            "namespace": cronjob.metadata.namespace,
            "labels": labels,
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual", "maille.fr/started-by": "maille-ops"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cronjob.metadata.name,
                    "uid": cronjob.metadata.uid,
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": copy.deepcopy(cronjob.spec.job_template.spec),
    }


class OpsError(RuntimeError):
    """Something an operator must be told (a workload not found, a job that failed)."""


class Cluster:
    """The calls, on the cluster of the current kube context (or in-cluster)."""

    def __init__(self, namespace: str, *, context: str | None = None) -> None:
        from kubernetes import client, config

        try:
            config.load_kube_config(context=context)
        except Exception:  # running inside the cluster (a Job, a pod of the operators)
            config.load_incluster_config()
        self.namespace = namespace
        self.api = client.ApiClient()
        self.apps = client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)

    def workloads(self) -> list[Workload]:
        found = [
            workload_of("Deployment", d)
            for d in self.apps.list_namespaced_deployment(self.namespace, label_selector=SELECTOR).items
        ]
        found += [
            workload_of("StatefulSet", s)
            for s in self.apps.list_namespaced_stateful_set(self.namespace, label_selector=SELECTOR).items
        ]
        return found

    def restart(self, names: list[str]) -> list[str]:
        """Roll the named Deployments (or every Deployment of Maille's, for no name); their names."""
        deployments = {
            d.metadata.name: d
            for d in self.apps.list_namespaced_deployment(self.namespace, label_selector=SELECTOR).items
        }
        wanted = list(deployments) if not names else [n if n in deployments else f"maille-{n}" for n in names]
        unknown = [n for n in wanted if n not in deployments]
        if unknown:
            raise OpsError(
                f"no Deployment of Maille named {', '.join(unknown)} in {self.namespace} (there are: "
                f"{', '.join(sorted(deployments))})"
            )
        patch = restart_patch()
        for name in wanted:
            self.apps.patch_namespaced_deployment(name, self.namespace, patch)
        return wanted

    def wait_rolled(self, names: list[str], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [workload_of("Deployment", self.apps.read_namespaced_deployment(n, self.namespace)) for n in names]
            if all(w.healthy for w in states):
                return
            time.sleep(3)
        raise OpsError(f"not rolled within {timeout:.0f} s: {', '.join(w.name for w in states if not w.healthy)}")

    def run(self, job: str) -> str:
        """Start the named job now from its CronJob; the Job's name."""
        if job not in JOBS:
            raise OpsError(f"unknown job {job!r}: one of {', '.join(JOBS)}")
        cronjobs = [
            c
            for c in self.batch.list_namespaced_cron_job(self.namespace, label_selector=SELECTOR).items
            if c.metadata.name.endswith(JOBS[job])
        ]
        if not cronjobs:
            raise OpsError(
                f"no CronJob *{JOBS[job]} in {self.namespace} (is jobs.{job} enabled in the identity chart?)"
            )
        body = job_from_cronjob(cronjobs[0])
        body["spec"] = self.api.sanitize_for_serialization(body["spec"])
        created = self.batch.create_namespaced_job(self.namespace, body)
        return created.metadata.name

    def wait_job(self, name: str, timeout: float = 7200) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.batch.read_namespaced_job(name, self.namespace).status
            if status.succeeded:
                return "succeeded"
            if status.failed and any(c.type == "Failed" and c.status == "True" for c in status.conditions or []):
                raise OpsError(f"job {name} failed: `kubectl logs -n {self.namespace} job/{name}` tells why")
            time.sleep(5)
        raise OpsError(f"job {name} still running after {timeout:.0f} s")

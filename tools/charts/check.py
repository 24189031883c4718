"""`make charts`: the Helm charts checked as CI checks them.

1. each chart's library dependency packed in (`helm dependency build`, the service charts before the umbrella);
2. `helm lint --strict` of every chart (a service chart with `charts/ci-standalone.yaml`, what it needs alone);
3. `helm template` of the umbrella over the matrix — default values, `values-production.yaml`, `ci/external.yaml`
   — and of each service chart alone;
4. every rendered manifest validated by kubeconform (`-strict`: unknown fields refused) against the JSON schemas
   of each Kubernetes version in K8S_VERSIONS, offline (tools/charts/schemas.py).

Helm and kubeconform are the ones `make` built into .cache/bin; Helm's own caches go to .cache/helm.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
BIN = ROOT / ".cache" / "bin"
SCHEMAS = ROOT / ".cache" / "k8s-schemas"
SERVICES = ("gateway", "identity", "catalog", "messaging", "library")
MATRIX = {"default": [], "production": ["values-production.yaml"], "external": ["ci/external.yaml"]}
ENV = {
    **os.environ,
    "HELM_CACHE_HOME": str(ROOT / ".cache" / "helm" / "cache"),
    "HELM_CONFIG_HOME": str(ROOT / ".cache" / "helm" / "config"),
    "HELM_DATA_HOME": str(ROOT / ".cache" / "helm" / "data"),
}


def helm(*args: str) -> str:
    done = subprocess.run([str(BIN / "helm"), *args], env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def build_dependencies() -> None:
    for chart in (*SERVICES, "maille"):
        helm("dependency", "build", str(CHARTS / chart), "--skip-refresh")


def render(chart: str, values: list[str] = (), release: str = "maille", namespace: str = "maille") -> str:
    """The chart's manifests as `helm template` writes them (values files relative to the chart)."""
    args = ["template", release, str(CHARTS / chart), "--namespace", namespace]
    for name in values:
        args += ["--values", str(CHARTS / chart / name) if not Path(name).is_absolute() else name]
    return helm(*args)


def documents(manifests: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(manifests) if doc]


def renders() -> dict[str, str]:
    """Every rendering of the matrix, by name."""
    out = {f"maille/{name}": render("maille", files) for name, files in MATRIX.items()}
    for chart in SERVICES:
        out[chart] = render(chart, [str(CHARTS / "ci-standalone.yaml")])
    return out


def kubeconform(name: str, manifests: str, version: str) -> str:
    done = subprocess.run(
        [
            str(BIN / "kubeconform"),
            "-strict",
            "-summary",
            "-kubernetes-version",
            version,
            "-schema-location",
            str(SCHEMAS)
            + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json",  # noqa: E501
            "-",
        ],
        input=manifests,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubeconform ({name}, Kubernetes {version}) refused:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def main() -> int:
    versions = (SCHEMAS / ".done").read_text().split()
    try:
        build_dependencies()
        for chart in SERVICES:
            helm("lint", "--strict", str(CHARTS / chart), "--values", str(CHARTS / "ci-standalone.yaml"))
        for files in MATRIX.values():
            helm(
                "lint",
                "--strict",
                str(CHARTS / "maille"),
                *[a for f in files for a in ("--values", str(CHARTS / "maille" / f))],
            )
        print(f"helm lint --strict: {len(SERVICES) + len(MATRIX)} charts and value sets, no finding")
        for name, manifests in renders().items():
            kinds = len(documents(manifests))
            for version in versions:
                print(f"{name:<20} {kinds:>3} manifests, Kubernetes {version}: {kubeconform(name, manifests, version)}")
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

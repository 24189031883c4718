"""`make charts`: the Helm charts checked as CI checks them.

1. each chart's library dependency packed in (`helm dependency build`, the service charts before the umbrella);
2. `helm lint --strict` of every chart (a service chart with `charts/ci-standalone.yaml`, what it needs alone);
3. `helm template` of the umbrella over the matrix — default values, `values-production.yaml`, `ci/external.yaml`
   — and of each service chart alone;
4. every rendered manifest validated by kubeconform (`-strict`: unknown fields refused) against the JSON schemas
   of each Kubernetes version in K8S_VERSIONS, offline (tools/charts/schemas.py) — but the Prometheus operator's
   resources, whose schemas come with its CRDs: the PrometheusRule's rules are checked by promtool instead;
5. the alerts: `promtool check rules` on the rules as rendered, `promtool test rules` on tools/charts/alerts-test.yaml
   (each alert fires when it should and stays quiet otherwise);
6. the dashboards: as tools/charts/dashboards.py writes them, every query parsed by promtool;
7. each chart's values.schema.json and README.md as tools/charts/schema.py writes them from its values.yaml (with
   the schema, a wrong key or type fails `helm lint`, `helm template` and `helm install`).

Helm and kubeconform are the ones `make` built into .cache/bin; Helm's own caches go to .cache/helm.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from maille_devstack.paths import DEPLOYABLES

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
BIN = ROOT / ".cache" / "bin"
SCHEMAS = ROOT / ".cache" / "k8s-schemas"
PROMTOOL = ROOT / ".cache" / "debs" / "prometheus" / "root" / "usr" / "bin" / "promtool"
OPERATOR_KINDS = ("ServiceMonitor", "PrometheusRule")
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
    for chart in (*DEPLOYABLES, "maille"):
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
    for chart in DEPLOYABLES:
        out[chart] = render(chart, [str(CHARTS / "ci-standalone.yaml")])
    return out


def kubeconform(name: str, manifests: str, version: str) -> str:
    done = subprocess.run(
        [
            str(BIN / "kubeconform"),
            "-strict",
            "-summary",
            "-skip",
            ",".join(OPERATOR_KINDS),
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


def promtool(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([str(PROMTOOL), *args], input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"promtool {args[0]} {args[1]} refused:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def check_alerts(rendered: dict[str, str], work: Path) -> None:
    """The rules as the umbrella renders them, then the alerts' test cases."""
    rules = [
        doc["spec"]
        for manifests in rendered.values()
        for doc in documents(manifests)
        if doc["kind"] == "PrometheusRule"
    ]
    if not rules:
        raise RuntimeError("no rendering of the matrix has the PrometheusRule (values-production.yaml enables it)")
    (work / "rendered-rules.yaml").write_text(yaml.safe_dump(rules[0]))
    print(promtool("check", "rules", str(work / "rendered-rules.yaml")).splitlines()[-1].strip())
    print("alerts' cases:", promtool("test", "rules", str(ROOT / "tools" / "charts" / "alerts-test.yaml")).split()[-1])


def check_dashboards(work: Path) -> None:
    """The dashboards are what dashboards.py writes, and each of their queries parses."""
    sys.path.insert(0, str(ROOT / "tools" / "charts"))
    import dashboards

    for name, text in dashboards.rendered().items():
        path = dashboards.OUT / name
        if not path.exists() or path.read_text() != text:
            raise RuntimeError(f"{path} is not current: run `python tools/charts/dashboards.py`")
    queries = dashboards.queries()
    recorded = [{"record": f"maille:dashboard_query_{n}", "expr": expr} for n, expr in enumerate(queries)]
    (work / "dashboard-queries.yaml").write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": recorded}]}))
    promtool("check", "rules", str(work / "dashboard-queries.yaml"))
    print(f"dashboards: {len(dashboards.DASHBOARDS)} current, {len(queries)} queries parsed")


def check_schemas() -> None:
    """The values' schemas and the charts' READMEs are what schema.py writes from the values files."""
    sys.path.insert(0, str(ROOT / "tools" / "charts"))
    import schema

    stale = [
        str(path.relative_to(ROOT))
        for path, text in schema.rendered().items()
        if not path.exists() or path.read_text() != text
    ]
    if stale:
        raise RuntimeError(f"not current: {', '.join(stale)} — run `python tools/charts/schema.py`")
    print(f"values.schema.json and README.md: current for {len(schema.CHARTED)} charts")


def main() -> int:
    versions = (SCHEMAS / ".done").read_text().split()
    try:
        check_schemas()
        build_dependencies()
        for chart in DEPLOYABLES:
            helm("lint", "--strict", str(CHARTS / chart), "--values", str(CHARTS / "ci-standalone.yaml"))
        for files in MATRIX.values():
            helm(
                "lint",
                "--strict",
                str(CHARTS / "maille"),
                *[a for f in files for a in ("--values", str(CHARTS / "maille" / f))],
            )
        print(f"helm lint --strict: {len(DEPLOYABLES) + len(MATRIX)} charts and value sets, no finding")
        rendered = renders()
        with tempfile.TemporaryDirectory() as work:
            check_alerts(rendered, Path(work))
            check_dashboards(Path(work))
        for name, manifests in rendered.items():
            kinds = len(documents(manifests))
            for version in versions:
                print(f"{name:<20} {kinds:>3} manifests, Kubernetes {version}: {kubeconform(name, manifests, version)}")
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

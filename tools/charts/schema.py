"""Each chart's `values.schema.json` and `README.md`, written from its `values.yaml` — the defaults give the types,
the comment above each key its description: `python tools/charts/schema.py` writes them, `make charts` checks
they are current.

With the schema, Helm refuses values that are not the chart's (a key misspelt, a number where a word is wanted)
at `helm lint`, `helm template` and `helm install`, instead of rendering a chart that silently ignores them.

How a default's type becomes the schema's:
- a mapping with keys is an object of exactly those keys (`additionalProperties: false`); an empty one (`{}`) is
  free (labels, annotations, selectors, more settings);
- a list is an array of what its first item is, or of anything when empty;
- a string that Kubernetes reads as a quantity ("2", "500m", "1Gi") may be given as a number too;
- `null` (`~`) is anything.
The umbrella's sections of the service charts (`gateway:`, `catalog:` …) are checked by those charts' own
schemas, which also take Helm's `global`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from maille_devstack.paths import DEPLOYABLES

CHARTS = Path(__file__).resolve().parents[2] / "charts"
CHARTED = (*DEPLOYABLES, "maille")
# Maps whose keys are the operator's (settings, Secrets' keys, labels): any key, whatever the defaults show.
FREE = {"config", "secretEnv", "labels", "annotations", "podAnnotations", "nodeSelector", "extraEnv"}
# Keys whose value has a shape of its own.
PATTERNS = {"digest": "^(sha256:[0-9a-f]{64})?$"}
QUANTITY = re.compile(r"^[0-9.]+([munkMGTPE]i?)?$")
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*):(?:\s|$)")


def comments(path: Path) -> dict[tuple[str, ...], str]:
    """The comment lines just above each key of the YAML file, by the key's path."""
    found: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip().removeprefix("-- "))
            continue
        match = KEY.match(line)
        if not match or stripped.startswith("- "):
            pending = [] if not stripped else pending
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        found[tuple(key for _, key in stack)] = " ".join(pending)
        pending = []
    return found


def schema_of(value: Any, path: tuple[str, ...], described: dict[tuple[str, ...], str], free: bool = False) -> dict:
    """The JSON schema of a default value (and of what is below it)."""
    node: dict[str, Any]
    if isinstance(value, dict):
        if not value or free:
            node = {"type": "object"}
        else:
            node = {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    key: schema_of(sub, (*path, key), described, free=key in FREE) for key, sub in value.items()
                },
            }
    elif isinstance(value, bool):
        node = {"type": "boolean"}
    elif isinstance(value, int):
        node = {"type": "integer"}
    elif isinstance(value, float):
        node = {"type": "number"}
    elif isinstance(value, str):
        node = {"type": ["string", "number"]} if value and QUANTITY.match(value) else {"type": "string"}
    elif isinstance(value, list):
        node = {"type": "array"}
        if value and not isinstance(value[0], (dict, list)):
            node["items"] = {k: v for k, v in schema_of(value[0], path, {}).items() if k == "type"}
    else:  # null: anything
        node = {}
    if path and path[-1] in PATTERNS:
        node["pattern"] = PATTERNS[path[-1]]
    if described.get(path):
        node["description"] = described[path]
    return node


def schema(chart: str) -> dict:
    """The schema of a chart's values."""
    values_file = CHARTS / chart / "values.yaml"
    values = yaml.safe_load(values_file.read_text())
    described = comments(values_file)
    root = schema_of(values, (), described)
    root["$schema"] = "http://json-schema.org/draft-07/schema#"
    root["title"] = f"Values of the Maille chart {chart}"
    properties = root["properties"]
    meta = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())
    for dependency in meta.get("dependencies", []):  # Helm passes each dependency its values under its name
        properties.setdefault(dependency["name"], {"type": "object", "description": "values of the chart it uses"})
    if chart == "maille":
        for service in DEPLOYABLES:  # checked by the service chart's own schema
            properties[service] = {"type": "object", "description": properties[service].get("description", "")}
    else:
        properties.setdefault("global", {"type": "object", "description": "what the umbrella chart shares"})
    return {"$schema": root.pop("$schema"), "title": root.pop("title"), **root}


def rows(node: dict, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) of every leaf, depth first."""
    out = []
    for key, sub in node.get("properties", {}).items():
        name = f"{prefix}{key}"
        out.append((name, sub))
    table = []
    for name, sub in out:
        if sub.get("properties"):
            if sub.get("description"):
                table.append((f"`{name}`", "object", "", sub["description"]))
            table += rows(sub, f"{name}.")
        else:
            kind = sub.get("type", "any")
            table.append(
                (f"`{name}`", " or ".join(kind) if isinstance(kind, list) else kind, "", sub.get("description", ""))
            )
    return table


def readme(chart: str) -> str:
    """The chart's README: what it is, then every value with its type, default and description."""
    meta = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    lines = [
        f"# {meta['name']}",
        "",
        meta.get("description", ""),
        "",
        f"Chart version {meta['version']}, application version {meta.get('appVersion', meta['version'])}. "
        "Installing, upgrading and operating: `docs/deployment.md` and `docs/operations.md` of the repository.",
        "",
        "<!-- Written by tools/charts/schema.py from values.yaml (its comments); `make charts` checks it is "
        "current. -->",
        "",
        "## Values",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    for key, kind, _, description in rows(schema(chart)):
        default = lookup(values, key.strip("`"))
        shown = "" if isinstance(default, dict) and default else f"`{json.dumps(default, ensure_ascii=False)}`"
        escaped = description.replace("|", "\\|")
        lines.append(f"| {key} | {kind} | {shown} | {escaped} |")
    return "\n".join(lines) + "\n"


def lookup(values: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        values = values.get(part) if isinstance(values, dict) else None
    return values


def rendered() -> dict[Path, str]:
    """Every file this writes, with its content."""
    out: dict[Path, str] = {}
    for chart in CHARTED:
        out[CHARTS / chart / "values.schema.json"] = json.dumps(schema(chart), indent=2, ensure_ascii=False) + "\n"
        out[CHARTS / chart / "README.md"] = readme(chart)
    return out


if __name__ == "__main__":
    for path, text in rendered().items():
        path.write_text(text)
    print(f"wrote values.schema.json and README.md of {', '.join(CHARTED)}", file=sys.stderr)

"""`make release` end to end, against a real OCI registry (the CNCF distribution registry, started here): the five
images built without a Docker engine and pushed, the charts pushed as OCI artifacts; the umbrella chart pulled
back from the registry renders every workload with the image pushed, pinned by its digest."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "release"))
sys.path.insert(0, str(ROOT / "tools" / "charts"))
import check  # noqa: E402
import registry  # noqa: E402
import release  # noqa: E402

from maille_devstack.processes import free_port  # noqa: E402

# The release builds Debian's root file system (debootstrap from the mirror) and one environment per deployable: on a
# fresh clone that is several minutes, beyond the suite's 300 s a test, which counts the fixture's set-up.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory):
    """The registry, once `release.py` has pushed to it: (its address, the version, the images' digests)."""
    work = tmp_path_factory.mktemp("registry")
    port = free_port()
    server = registry.serve(work / "data", port, work / "registry.log")
    address = f"127.0.0.1:{port}"
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "release" / "release.py"), "--registry", address, "--plain-http"],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        images = yaml.safe_load((release.WORK / "images.yaml").read_text())
        version = images["global"]["imageTag"]
        yield address, version, {name: images[name]["image"]["digest"] for name in release.DEPLOYABLES}
    finally:
        server.terminate()
        server.wait(timeout=30)


def crane(*args: str) -> str:
    return subprocess.run([str(release.CRANE), *args, "--insecure"], capture_output=True, text=True, check=True).stdout


def test_each_deployable_is_an_image_in_the_registry_runnable_as_the_dockerfile_says(pushed) -> None:
    address, version, digests = pushed
    for name, digest in digests.items():
        assert crane("digest", f"{address}/maille/{name}:{version}").strip() == digest
        config = json.loads(crane("config", f"{address}/maille/{name}@{digest}"))
        assert config["os"] == "linux" and config["architecture"] == "amd64"
        assert config["config"]["User"] == "10001:10001"
        assert config["config"]["Cmd"] == ["python", "-m", "maille_kit.container"]
        assert f"MAILLE_DEPLOYABLE={name}" in config["config"]["Env"]
        assert set(config["config"]["ExposedPorts"]) == {"8080/tcp", "9464/tcp"}
    # Two layers: Debian with Python (the same for all), then /app with the deployable's own environment.
    layers = {
        name: json.loads(crane("manifest", f"{address}/maille/{name}@{d}"))["layers"] for name, d in digests.items()
    }
    assert len({entries[0]["digest"] for entries in layers.values()}) == 1
    assert len({entries[1]["digest"] for entries in layers.values()}) == len(release.DEPLOYABLES)
    exported = subprocess.run(
        [str(release.CRANE), "export", "--insecure", f"{address}/maille/catalog@{digests['catalog']}", "-"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = set(tar.getnames())
    assert {"usr/bin/python3.11", "app/.venv/bin/python", "app/portal/index.html"} <= names
    assert any(n.startswith("app/.venv/lib/python3.11/site-packages/maille_catalog/") for n in names)
    assert not any(n.startswith("app/.venv/lib/python3.11/site-packages/maille_identity/") for n in names)


def test_the_chart_pulled_back_renders_the_pushed_images_by_digest(pushed, tmp_path: Path) -> None:
    address, version, digests = pushed
    check.helm(
        "pull",
        f"oci://{address}/maille/charts/maille",
        "--version",
        version,
        "--plain-http",
        "--destination",
        str(tmp_path),
    )
    pulled = tmp_path / f"maille-{version}.tgz"
    manifests = check.documents(
        check.helm("template", "maille", str(pulled), "--namespace", "maille", "-f", str(release.WORK / "images.yaml"))
    )
    images = {
        doc["metadata"]["name"]: [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]]
        for doc in manifests
        if doc["kind"] == "Deployment" and doc["metadata"]["name"].removeprefix("maille-") in digests
    }
    assert set(images) == {f"maille-{name}" for name in digests}
    for name, digest in digests.items():
        assert images[f"maille-{name}"] == [f"{address}/maille/{name}:{version}@{digest}"]

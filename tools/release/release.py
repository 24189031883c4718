"""`make release`: Maille's charts and one OCI image per deployable, built without a Docker engine and pushed to an
OCI registry.

    .venv/bin/python tools/release/release.py --registry HOST:PORT [--version 0.1.0] [--plain-http]

The route that works here (docs/operations.md says which were tried): the image's root file system is made by
Debian's own tools — `debootstrap --variant=minbase bookworm`, then Debian's python3.11 installed in it with its
apt — and each deployable's virtual environment is installed into it in a chroot, from the versions uv.lock pins
and the workspace's wheels (uv build). The layers are plain tar files written here (owner root, every file dated the
commit's time); `crane` (go-containerregistry, built from the Go module proxy) appends
them to an empty image, sets its configuration (user 10001, the command, the environment, the ports, the platform)
and pushes it. No daemon, no base image from a registry (Docker Hub is not reachable from here).

Each image has two layers: Debian with Python 3.11 (the same for all five: stored once by the registry), and
/app — the deployable's own virtual environment (only its packages), and the built portal (served by the gateway).

The charts are packed by `helm package` and pushed as OCI artifacts (`helm push`) to
oci://<registry>/maille/charts; `.cache/release/images.yaml` is written: the values that pin each deployable's image by
digest (`helm install … -f images.yaml`).

Needs root (debootstrap and chroot).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml

from maille_devstack.paths import DEPLOYABLES

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
WORK = CACHE / "release"
BIN = CACHE / "bin"
CRANE = BIN / "crane"
HELM = BIN / "helm"
DEBOOTSTRAP = CACHE / "debs" / "debootstrap" / "root"
MIRROR = os.environ.get("MAILLE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("python3.11", "python3.11-venv", "ca-certificates")
UID = 10001
HELM_ENV = {
    **os.environ,
    "HELM_CACHE_HOME": str(CACHE / "helm" / "cache"),
    "HELM_CONFIG_HOME": str(CACHE / "helm" / "config"),
    "HELM_DATA_HOME": str(CACHE / "helm" / "data"),
}


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args[:4]))} … failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def say(what: str) -> None:
    print(f"release: {what}", flush=True)


def base_rootfs() -> Path:
    """Debian bookworm (minbase) with Python 3.11 and the user maille, made once and kept in .cache/release."""
    rootfs = WORK / "rootfs"
    marker = rootfs / ".maille-base"
    wanted = " ".join(BASE_PACKAGES)
    if marker.exists() and marker.read_text() == wanted:
        return rootfs
    shutil.rmtree(rootfs, ignore_errors=True)
    say("debootstrap bookworm (minbase)…")
    env = {**os.environ, "DEBOOTSTRAP_DIR": str(DEBOOTSTRAP / "usr" / "share" / "debootstrap")}
    run(DEBOOTSTRAP / "usr" / "sbin" / "debootstrap", "--variant=minbase", "bookworm", rootfs, MIRROR, env=env)
    shutil.copy("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    say(f"apt-get install {wanted} (in the chroot)…")
    chroot(
        rootfs,
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
        f"{wanted} && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man /var/log/*.log "
        f"&& groupadd --gid {UID} maille && useradd --uid {UID} --gid {UID} --no-create-home "
        "--shell /usr/sbin/nologin maille",
    )
    (rootfs / "etc" / "resolv.conf").write_text("")  # the cluster's DNS is the runtime's to give
    marker.write_text(wanted)
    return rootfs


def chroot(rootfs: Path, script: str, mounts: dict[Path, str] | None = None) -> str:
    """`script` run in the root file system, with host folders copied in for the while (`mounts`: host → inside)."""
    for source, inside in (mounts or {}).items():
        shutil.copytree(source, rootfs / inside, dirs_exist_ok=True)
    try:
        return run(
            "chroot", rootfs, "/bin/sh", "-c", script, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
        )
    finally:
        for inside in (mounts or {}).values():
            shutil.rmtree(rootfs / inside, ignore_errors=True)


def wheels() -> Path:
    """The workspace's packages as wheels."""
    out = WORK / "wheels"
    shutil.rmtree(out, ignore_errors=True)
    run(CACHE / "uv" / "bin" / "uv", "build", "--all-packages", "--wheel", "--out-dir", out, cwd=ROOT)
    return out


def workspace_deps(package: str) -> list[str]:
    """`package` and the workspace packages it depends on (maille-*), by their pyproject files."""
    projects = {}
    for pyproject in ROOT.glob("**/pyproject.toml"):
        if ".cache" in pyproject.parts or ".venv" in pyproject.parts or "node_modules" in pyproject.parts:
            continue
        text = pyproject.read_text()
        name = next((line.split('"')[1] for line in text.splitlines() if line.startswith("name = ")), None)
        if name:
            projects[name] = [dep for dep in text.split('"') if dep.startswith("maille-") and dep != name]
    found, todo = [], [package]
    while todo:
        name = todo.pop()
        if name not in found:
            found.append(name)
            todo += [dep.split(">")[0].split("=")[0].strip() for dep in projects.get(name, [])]
    return found


def install(rootfs: Path, deployable: str, built: Path) -> None:
    """The deployable's virtual environment at /app/.venv of the root file system, and the built portal."""
    app = rootfs / "app"
    shutil.rmtree(app, ignore_errors=True)
    (app / "wheels").mkdir(parents=True)
    package = f"maille-{deployable}"
    pins = run(
        CACHE / "uv" / "bin" / "uv",
        "export",
        "--frozen",
        "--no-dev",
        "--no-hashes",
        "--no-emit-workspace",
        "--no-header",
        "--package",
        package,
        cwd=ROOT,
    )
    (app / "wheels" / "requirements.txt").write_text(pins)
    ours = []
    for name in workspace_deps(package):
        wheel = next(built.glob(f"{name.replace('-', '_')}-*.whl"))
        shutil.copy(wheel, app / "wheels" / wheel.name)
        ours.append(f"/app/wheels/{wheel.name}")
    # Fetched here (the chroot has neither this machine's network set-up nor its certificates), installed there
    # from that folder alone.
    run(
        CACHE / "uv" / "bin" / "pip",
        "wheel",
        "-q",
        "--disable-pip-version-check",
        "-r",
        app / "wheels" / "requirements.txt",
        "--wheel-dir",
        WORK / "wheelhouse",
    )
    needed = [
        line.split(" ")[0].split(";")[0] for line in pins.splitlines() if line and not line.startswith(("#", " "))
    ]
    chroot(
        rootfs,
        "python3.11 -m venv /app/.venv && /app/.venv/bin/pip install -q --no-cache-dir --disable-pip-version-check "
        f"--no-index --find-links /wheelhouse {' '.join(needed)} && /app/.venv/bin/pip install -q --no-cache-dir "
        f"--no-index --no-deps {' '.join(ours)} && /app/.venv/bin/pip uninstall -q -y pip "
        f"&& /app/.venv/bin/python -c 'import maille_kit.container, maille_{deployable}.main'",
        mounts={WORK / "wheelhouse": "wheelhouse"},
    )
    shutil.rmtree(app / "wheels")
    shutil.copytree(ROOT / "portal" / "dist", app / "portal")


def layer(rootfs: Path, out: Path, *, only: str | None = None, leave_out: str | None = None, epoch: int) -> Path:
    """A gzipped tar of the root file system (or of its `only` folder), files owned by root, one fixed time."""

    def tidy(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if leave_out and (info.name == leave_out or info.name.startswith(leave_out + "/")):
            return None
        if info.name.startswith(("proc/", "sys/", "dev/", "run/", "tmp/")) and info.isfile():
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = epoch
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        names = sorted(p.name for p in rootfs.iterdir()) if only is None else [only]
        for name in names:
            if name.startswith(".maille"):
                continue
            tar.add(rootfs / name, arcname=name, filter=tidy)
    with gzip.GzipFile(out, "wb", mtime=epoch) as gz:
        gz.write(buffer.getvalue())
    return out


def push_image(registry: str, deployable: str, version: str, layers: list[Path], build: str, plain: bool) -> str:
    """The image pushed, configured; its digest."""
    reference = f"{registry}/maille/{deployable}:{version}"
    insecure = ["--insecure"] if plain else []
    run(CRANE, "append", *insecure, *[a for path in layers for a in ("--new_layer", str(path))], "--new_tag", reference)
    env = {
        "PATH": "/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONUNBUFFERED": "1",
        "MAILLE_DEPLOYABLE": deployable,
        "MAILLE_BUILD": build,
    }
    run(
        CRANE,
        "mutate",
        *insecure,
        reference,
        "--cmd",
        "python,-m,maille_kit.container",
        "--user",
        f"{UID}:{UID}",
        "--workdir",
        "/app",
        "--exposed-ports",
        "8080/tcp,9464/tcp",
        "--set-platform",
        "linux/amd64",
        *[a for key, value in env.items() for a in ("--env", f"{key}={value}")],
        "--label",
        f"org.opencontainers.image.version={version}",
        "--label",
        f"org.opencontainers.image.revision={build}",
        "--tag",
        reference,
    )
    return run(CRANE, "digest", *insecure, reference).strip()


def push_charts(registry: str, version: str, plain: bool) -> list[str]:
    """Every chart packed (dependencies first) and pushed to oci://<registry>/maille/charts."""
    out = WORK / "charts"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    pushed = []
    for chart in (*DEPLOYABLES, "maille"):
        run(HELM, "dependency", "build", ROOT / "charts" / chart, "--skip-refresh", env=HELM_ENV)
        run(
            HELM,
            "package",
            ROOT / "charts" / chart,
            "--version",
            version,
            "--app-version",
            version,
            "--destination",
            out,
            env=HELM_ENV,
        )
        package = out / f"{chart}-{version}.tgz"
        run(
            HELM, "push", package, f"oci://{registry}/maille/charts", *(["--plain-http"] if plain else []), env=HELM_ENV
        )
        pushed.append(f"oci://{registry}/maille/charts/{chart}:{version}")
    return pushed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="HOST:PORT[/path] of the OCI registry")
    parser.add_argument(
        "--version", default=yaml.safe_load((ROOT / "charts" / "maille" / "Chart.yaml").read_text())["version"]
    )
    parser.add_argument("--plain-http", action="store_true", help="the registry speaks HTTP (a local one)")
    parser.add_argument("--only", nargs="*", choices=DEPLOYABLES, default=list(DEPLOYABLES), help="these images only")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("release: debootstrap and chroot need root")
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    build = run("git", "rev-parse", "--short", "HEAD", cwd=ROOT).strip()
    epoch = int(run("git", "log", "-1", "--format=%ct", cwd=ROOT).strip())
    rootfs = base_rootfs()
    base = layer(rootfs, WORK / "base.tar.gz", leave_out="app", epoch=epoch)
    built = wheels()
    digests = {}
    for deployable in args.only:
        say(f"{deployable}: its virtual environment…")
        install(rootfs, deployable, built)
        app = layer(rootfs, WORK / f"{deployable}.tar.gz", only="app", epoch=epoch)
        digests[deployable] = push_image(args.registry, deployable, args.version, [base, app], build, args.plain_http)
        say(f"{deployable}: {args.registry}/maille/{deployable}:{args.version}@{digests[deployable]}")
    shutil.rmtree(rootfs / "app", ignore_errors=True)
    charts = push_charts(args.registry, args.version, args.plain_http)
    for chart in charts:
        say(f"chart {chart}")
    images = {
        "global": {"imageRegistry": f"{args.registry}/maille", "imageTag": args.version},
        **{name: {"image": {"digest": digest}} for name, digest in digests.items()},
    }
    (WORK / "images.yaml").write_text(
        "# Written by `make release`: each deployable's image by digest (helm install … -f images.yaml).\n"
        + yaml.safe_dump(images, sort_keys=False)
    )
    (WORK / "manifest.json").write_text(
        json.dumps({"version": args.version, "build": build, "images": digests, "charts": charts}, indent=2) + "\n"
    )
    say(f"done in {time.monotonic() - started:.0f} s: {WORK / 'images.yaml'}, {WORK / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

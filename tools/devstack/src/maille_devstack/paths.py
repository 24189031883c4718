"""Where the devstack finds what the set-up installed and keeps what it runs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# What Maille deploys: the gateway, then the services behind it.
DEPLOYABLES = ("gateway", "identity", "catalog", "messaging", "library", "timeline", "support", "observatory")


def _find_root() -> Path:
    if "MAILLE_ROOT" in os.environ:
        return Path(os.environ["MAILLE_ROOT"]).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Makefile").exists() and (parent / "services" / "kit").is_dir():
            return parent
    return Path.cwd()


ROOT = _find_root()
CACHE = ROOT / ".cache"
VAR = ROOT / ".var"
KEYCLOAK_VERSION = os.environ.get("KEYCLOAK_VERSION", "26.4.7")
KEYCLOAK_HOME = CACHE / f"keycloak-{KEYCLOAK_VERSION}"
REALM_FILE = ROOT / "identity" / "keycloak" / "realm-maille.json"
DOCSTORE_BIN = CACHE / "bin" / "maille-docstore"
MAILPIT_BIN = CACHE / "bin" / "mailpit"  # the SMTP server of `make run` and the tests, built from its Go module
XMLSEC_BIN = CACHE / "bin" / "xmlsec1"
PROMETHEUS = CACHE / "debs" / "prometheus" / "root" / "usr" / "bin" / "prometheus"  # Debian's, unpacked
PROMTOOL = PROMETHEUS.with_name("promtool")
NGINX = CACHE / "debs" / "root" / "usr" / "sbin" / "nginx"  # `make bench-tools`


def postgres_bin() -> Path:
    """The directory of Debian's PostgreSQL server programs (initdb, postgres): unpacked into the cache by
    `make bench-tools`, else the machine's own (`postgresql` installed)."""
    for root in (CACHE / "debs" / "postgresql" / "root" / "usr" / "lib" / "postgresql", Path("/usr/lib/postgresql")):
        found = sorted(root.glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name), reverse=True)
        if found:
            return found[0].parent
    raise MissingPart("PostgreSQL's server is missing: run `make bench-tools`")


class MissingPart(RuntimeError):
    """A part the set-up installs is not there."""


def bin_of(name: str) -> Path:
    """A console script of the project's environment (the one running this code)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise MissingPart(f"{name} is not installed: run `make setup`")


def require(path: Path, what: str) -> Path:
    """`path`, or a clear error naming the set-up step that makes it."""
    if not path.exists():
        raise MissingPart(f"{what} is missing at {path}: run `make setup`")
    return path

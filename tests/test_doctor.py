"""`make doctor` on a machine that lacks things: with a PATH missing each prerequisite in turn, it names that one
(what, and how to get it) in one line and exits 1; with everything, it says so and exits 0. It is plain sh, so
it runs where Python 3.11 itself is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCTOR = ROOT / "tools" / "doctor.sh"
# What doctor looks for, and the words its line for each begins with.
TOOLS = {
    "python3.11": "Python 3.11",
    "go": "Go ≥",
    "java": "Java ≥",
    "mvn": "Maven",
    "node": "Node.js",
    "npm": "Node.js",
    "git": "git",
}
# What the script itself runs (kept in every PATH).
BASICS = (
    "sh",
    "bash",
    "sed",
    "head",
    "id",
    "printf",
    "tar",
    "apt-get",
    "dpkg-deb",
    "cat",
    "env",
    "dirname",
    "readlink",
)


def machine(tmp_path: Path, leave_out: str | None) -> Path:
    """A bin directory with this machine's tools, but `leave_out`."""
    bin_dir = tmp_path / f"bin-without-{leave_out}"
    bin_dir.mkdir()
    for tool in (*TOOLS, *BASICS):
        # The Python running the tests is a 3.11 (a shim on the PATH may need more than this PATH has).
        found = str(Path(sys.executable).resolve()) if tool == "python3.11" else shutil.which(tool)
        if tool != leave_out and found:
            (bin_dir / tool).symlink_to(found)
    # Go and Java find their own files from where they really are; node's npm is a script run by node.
    return bin_dir


def doctor(bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(DOCTOR)],
        env={"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root"), "CHROMIUM": "/bin/sh", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_with_everything_it_says_so(tmp_path: Path) -> None:
    done = doctor(machine(tmp_path, None))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every prerequisite is here" in done.stdout


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_each_missing_prerequisite_is_named_with_how_to_get_it(tmp_path: Path, tool: str) -> None:
    done = doctor(machine(tmp_path, tool))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("missing: ")]
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith(f"missing: {TOOLS[tool]}"), lines
    assert " — " in lines[0]  # and how to get it
    assert "1 prerequisite(s) missing" in done.stdout


def test_an_old_version_is_named_with_the_version_found(tmp_path: Path) -> None:
    bin_dir = machine(tmp_path, "java")
    (bin_dir / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    (bin_dir / "java").chmod(0o755)
    done = doctor(bin_dir)
    assert done.returncode == 1
    assert "missing: Java ≥ 17 (found 11)" in done.stdout


def test_chromium_and_xmlsec1_without_apt_get(tmp_path: Path) -> None:
    bin_dir = machine(tmp_path, "apt-get")
    done = doctor(bin_dir, CHROMIUM=str(tmp_path / "no-chromium"))
    assert done.returncode == 1
    missing = [line for line in done.stdout.splitlines() if line.startswith("missing: ")]
    assert any(line.startswith("missing: Chromium") and "apt-get install chromium" in line for line in missing)
    if shutil.which("xmlsec1") is None:
        assert any(line.startswith("missing: xmlsec1") for line in missing)

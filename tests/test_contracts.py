"""The contracts: the generated Python code is what proto/ says, and a breaking change is caught."""

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / ".cache" / "bin" / "buf"


def protos() -> list[str]:
    return sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto" / "maille").rglob("*.proto"))


def test_generated_code_is_current(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            *protos(),
        ],
        cwd=ROOT / "proto",
        check=True,
    )
    compared = filecmp.dircmp(tmp_path / "maille", ROOT / "proto" / "python" / "maille")
    stale: list[str] = []

    def walk(cmp: filecmp.dircmp, prefix: str) -> None:
        stale.extend(f"{prefix}{name}" for name in cmp.left_only + cmp.right_only + cmp.diff_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(compared, "")
    assert stale == [], f"proto/python is stale ({stale}): run `make proto`"


def test_breaking_change_is_caught(tmp_path: Path) -> None:
    assert BUF.exists(), "buf is built by `make proto-check` (part of `make test`)"
    before, after = tmp_path / "before", tmp_path / "after"
    for target in (before, after):
        shutil.copytree(ROOT / "proto", target, ignore=shutil.ignore_patterns("python"))
    envelope = after / "maille" / "events" / "v1" / "envelope.proto"
    envelope.write_text(envelope.read_text().replace("  string source = 5;\n", ""))
    answer = subprocess.run(
        [str(BUF), "breaking", str(after), "--against", str(before)], capture_output=True, text=True
    )
    assert answer.returncode != 0
    assert "source" in answer.stdout + answer.stderr
    same = subprocess.run([str(BUF), "breaking", str(before), "--against", str(before)], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr

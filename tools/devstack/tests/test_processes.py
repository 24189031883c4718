"""The devstack leaves no process behind: stopping a part stops its children too."""

import time
from pathlib import Path

from maille_devstack.processes import Process, free_port, port_open
from maille_devstack.stack import stop_running


def test_stop_takes_the_children_along(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    process = Process("shell", ["sh", "-c", f"sleep 300 & echo $! > {pid_file}; wait"], tmp_path / "shell.log")
    process.start()
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    process.stop(timeout=5)
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_wait_ready_reports_the_log_of_a_part_that_died(tmp_path: Path) -> None:
    process = Process("broken", ["sh", "-c", "echo 'cannot bind 127.0.0.1:1'; exit 4"], tmp_path / "broken.log")
    process.start()
    try:
        process.wait_ready(lambda: False, 5)
    except Exception as exc:
        assert "broken exited with 4" in str(exc)
        assert "cannot bind" in str(exc)
    else:
        raise AssertionError("a dead part was reported ready")


def test_stop_without_a_running_stack(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MAILLE_DEVSTACK_VAR", str(tmp_path))
    assert stop_running() == 0
    assert "not running" in capsys.readouterr().out


def test_free_ports_are_free() -> None:
    assert not port_open(free_port())

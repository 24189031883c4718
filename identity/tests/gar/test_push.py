"""The SFTP delivery of a GAR export, to a real SFTP server (asyncssh's) started by the test."""

import asyncio
import hashlib
from pathlib import Path

import asyncssh
import pytest

from maille_devstack.processes import free_port
from maille_identity.gar.push import PushError, SftpTarget, push


@pytest.fixture
async def sftp_server(tmp_path: Path):
    """An SFTP server on a free port, rooted in a folder of the test's, that knows one client key."""
    root = tmp_path / "gar"
    root.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    port = free_port()
    server = await asyncssh.listen(
        "127.0.0.1",
        port,
        server_host_keys=[host_key],
        authorized_client_keys=authorized,
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
        allow_scp=False,
    )
    known = f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n"
    yield root, port, client_key.export_private_key().decode(), known
    server.close()
    await server.wait_closed()


def files(tmp_path: Path) -> list[Path]:
    archive = tmp_path / "ENT_GAR-ENT_Complet_20261125_020000.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 100)
    md5 = tmp_path / (archive.name + ".md5")
    md5.write_text(f"{hashlib.md5(archive.read_bytes()).hexdigest()}  {archive.name}\n")
    return [archive, md5]


async def test_delivery_lands_whole(tmp_path: Path, sftp_server) -> None:
    root, port, key, known = sftp_server
    sent = files(tmp_path)
    written = await push(SftpTarget("127.0.0.1", port, "maille", key, known, "/"), sent)
    assert written == [f"/{p.name}" for p in sent]
    for path in sent:
        assert (root / path.name).read_bytes() == path.read_bytes()
    assert not list(root.glob("*.part"))


async def test_a_server_that_is_not_the_one_known_gets_nothing(tmp_path: Path, sftp_server) -> None:
    root, port, key, _ = sftp_server
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    with pytest.raises(PushError, match="not the one in known hosts"):
        await push(
            SftpTarget("127.0.0.1", port, "maille", key, f"[127.0.0.1]:{port} {impostor}\n", "/"), files(tmp_path)
        )
    assert list(root.iterdir()) == []


async def test_an_unknown_key_is_refused(tmp_path: Path, sftp_server) -> None:
    root, port, _, known = sftp_server
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    with pytest.raises(PushError, match="login refused"):
        await push(SftpTarget("127.0.0.1", port, "maille", stranger, known, "/"), files(tmp_path))
    assert list(root.iterdir()) == []


def test_next_run_is_the_next_time_of_day() -> None:
    from datetime import UTC, datetime

    from maille_identity.gar.nightly import next_run

    assert next_run(datetime(2026, 11, 25, 1, 0, tzinfo=UTC), "02:30") == datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
    assert next_run(datetime(2026, 11, 25, 2, 30, tzinfo=UTC), "02:30") == datetime(2026, 11, 26, 2, 30, tzinfo=UTC)


async def test_the_nightly_export_runs_once_a_night_and_is_pushed(
    tmp_path: Path, sftp_server, docstore, outbox, bus
) -> None:
    from maille_identity.directory.repository import DirectoryRepository
    from maille_identity.directory.synthetic import generate
    from maille_identity.gar.nightly import export_once
    from maille_identity.settings import IdentitySettings

    from ..directory.test_import import TENANT, run_import

    root, port, key, known = sftp_server
    generate(tmp_path / "feed", persons=200, schools=1)
    await run_import(docstore, outbox, tmp_path / "feed")
    settings = IdentitySettings(
        tenant=TENANT,
        gar_export_dir=str(tmp_path / "out"),
        gar_sftp_host="127.0.0.1",
        gar_sftp_port=port,
        gar_sftp_user="maille",
        gar_sftp_key=key,
        gar_sftp_known_hosts=known,
        gar_sftp_dir="/",
    )
    repository = DirectoryRepository(docstore)
    first, second = await asyncio.gather(
        *(export_once(bus, repository, settings, night="2026-11-25") for _ in range(2))
    )
    report = first or second
    assert (first is None) != (second is None)  # two replicas, one export
    assert sorted(p.name for p in root.iterdir()) == sorted([report.archive.name, f"{report.archive.name}.md5"])
    assert await export_once(bus, repository, settings, night="2026-11-26") is not None  # the next night runs again


async def test_each_run_is_recorded_with_how_it_ended(tmp_path: Path, sftp_server, docstore, outbox, bus) -> None:
    from maille_identity.directory.repository import DirectoryRepository
    from maille_identity.directory.synthetic import generate
    from maille_identity.gar.nightly import export_once
    from maille_identity.settings import IdentitySettings

    from ..directory.test_import import TENANT, run_import

    root, port, key, known = sftp_server
    generate(tmp_path / "feed", persons=200, schools=1)
    await run_import(docstore, outbox, tmp_path / "feed")
    good = {
        "tenant": TENANT,
        "gar_export_dir": str(tmp_path / "out"),
        "gar_sftp_host": "127.0.0.1",
        "gar_sftp_port": port,
        "gar_sftp_user": "maille",
        "gar_sftp_key": key,
        "gar_sftp_known_hosts": known,
        "gar_sftp_dir": "/",
    }
    repository = DirectoryRepository(docstore)
    await export_once(bus, repository, IdentitySettings(**good), night="2026-12-01")
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    with pytest.raises(PushError):
        await export_once(bus, repository, IdentitySettings(**{**good, "gar_sftp_key": stranger}), night="2026-12-02")
    failed, done = await repository.gar_runs(TENANT)
    assert done["night"] == "2026-12-01" and done["outcome"] == "done" and done["pushed"] and done["files"] >= 1
    assert failed["night"] == "2026-12-02" and failed["outcome"] == "failed" and "login refused" in failed["error"]
    assert failed["finished_at"] >= failed["started_at"]

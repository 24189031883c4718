"""Delivering a GAR export by SFTP, with an SSH key, to a host known in advance.

The host key is always checked against the configured known-hosts lines: a server that is not the one
expected gets nothing. Each file is written under a temporary name and renamed once whole, the `.md5`
last, so the GAR never picks up half a delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PushError(RuntimeError):
    """The delivery did not happen; says why (host unknown or changed, refused key, remote error)."""


@dataclass(frozen=True)
class SftpTarget:
    """Where and as whom to deliver."""

    host: str
    port: int
    user: str
    private_key: str  # the key itself (PEM / OpenSSH), from a Secret
    known_hosts: str  # known_hosts lines for the host
    directory: str = "."


async def push(target: SftpTarget, files: list[Path], *, timeout: float = 60) -> list[str]:
    """Upload `files` (in order) to the target's directory; the remote paths written."""
    import asyncssh  # here: the settings name a target, and the commands that push nothing start without SSH

    try:
        key = asyncssh.import_private_key(target.private_key)
        known = asyncssh.import_known_hosts(target.known_hosts)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise PushError(f"SFTP key or known hosts unreadable: {exc}") from None
    written = []
    try:
        async with (
            asyncssh.connect(
                target.host,
                port=target.port,
                username=target.user,
                client_keys=[key],
                known_hosts=known,
                agent_path=None,
                connect_timeout=timeout,
                config=None,
            ) as connection,
            connection.start_sftp_client() as sftp,
        ):
            for path in files:
                remote = f"{target.directory.rstrip('/')}/{path.name}"
                await sftp.put(str(path), remote + ".part")
                if await sftp.exists(remote):
                    await sftp.remove(remote)
                await sftp.rename(remote + ".part", remote)
                written.append(remote)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise PushError(f"SFTP host {target.host}:{target.port} is not the one in known hosts: {exc.reason}") from None
    except asyncssh.PermissionDenied as exc:
        raise PushError(f"SFTP login refused for {target.user}@{target.host}: {exc.reason}") from None
    except (OSError, asyncssh.Error) as exc:
        raise PushError(f"SFTP delivery to {target.host}:{target.port} failed: {exc}") from None
    return written

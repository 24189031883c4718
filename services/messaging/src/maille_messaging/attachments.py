"""Attachments: their type read from the content (never the name), a virus scanner's hook, and where the
bytes are kept — behind `AttachmentStore`, whose one implementation keeps them in the service's database
in chunks looked up by key (another store, e.g. S3-compatible, plugs in there)."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Protocol

import filetype  # type: ignore[import-untyped]

from maille_kit.errors import Unsupported
from maille_messaging.repository import MailRepository

CHUNK = 255 * 1024
ALLOWED_PREFIXES = ("image/", "audio/", "video/", "text/")
ALLOWED = {
    "application/pdf",
    "application/zip",
    "application/epub+zip",
    "application/rtf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
REFUSED_IMAGES = {"image/svg+xml"}  # scripts inside


class Refused(Unsupported):
    """An attachment that may not be kept, and why."""


def sniff(head: bytes) -> str:
    """The type the content says it is (the first bytes are enough); `Refused` when it is not one a mail may carry."""
    kind = filetype.guess(head)
    if kind is not None:
        mime = kind.mime
    elif b"\x00" not in head[:8192] and _utf8(head[:8192]):
        mime = "text/plain"
    else:
        raise Refused(
            "the attachment's content is of no type a message may carry (documents, images, sound, video, text)"
        )
    if mime in REFUSED_IMAGES or not (mime in ALLOWED or mime.startswith(ALLOWED_PREFIXES)):
        raise Refused(f"a message may not carry {mime} files (found from the content)")
    return mime


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 3  # a character cut at the end of the sample
    return True


class Scanner(Protocol):
    """A virus scanner: the name of what it found, or None when the file is clean."""

    async def scan(self, data: bytes) -> str | None: ...


class ClamdScanner:
    """ClamAV's daemon over TCP (`zINSTREAM`): the file in chunks, the verdict in one line."""

    def __init__(self, address: str, *, timeout: float) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port, self.timeout = host or "127.0.0.1", int(port), timeout

    async def scan(self, data: bytes) -> str | None:
        return await asyncio.wait_for(self._scan(data), self.timeout)

    async def _scan(self, data: bytes) -> str | None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(b"zINSTREAM\0")
            for start in range(0, len(data), 64 * 1024):
                piece = data[start : start + 64 * 1024]
                writer.write(struct.pack("!I", len(piece)) + piece)
            writer.write(struct.pack("!I", 0))
            await writer.drain()
            answer = (await reader.readuntil(b"\0")).rstrip(b"\0").decode("utf-8", "replace")
        finally:
            writer.close()
        # "stream: OK", "stream: Eicar-Signature FOUND", "INSTREAM size limit exceeded. ERROR"
        if answer.endswith("FOUND"):
            return answer.removeprefix("stream:").removesuffix("FOUND").strip()
        if answer.endswith("OK"):
            return None
        raise RuntimeError(f"the virus scanner answered {answer!r}")


class AttachmentStore(Protocol):
    """Where attachments' bytes live."""

    async def put(self, meta: dict[str, Any], data: bytes) -> None: ...

    def read(self, meta: dict[str, Any]) -> AsyncIterator[bytes]: ...

    async def delete(self, meta: dict[str, Any]) -> None: ...


class DocstoreAttachments:
    """Attachments in the service's own database, in chunks of 255 KiB looked up by key."""

    def __init__(self, repository: MailRepository) -> None:
        self.repo = repository

    async def put(self, meta: dict[str, Any], data: bytes) -> None:
        chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        await self.repo.put_attachment({**meta, "chunks": len(chunks)}, chunks)

    async def read(self, meta: dict[str, Any]) -> AsyncIterator[bytes]:
        for n in range(meta.get("chunks", 0)):
            chunk = await self.repo.chunk(meta["_id"], n)
            if chunk is None:
                raise RuntimeError(f"attachment {meta['_id']} lost its chunk {n}")
            yield chunk

    async def delete(self, meta: dict[str, Any]) -> None:
        await self.repo.delete_attachment(meta)


def new_attachment(*, tenant: str, owner: str, message: str, name: str, mime: str, size: int) -> dict[str, Any]:
    return {
        "_id": "a" + os.urandom(10).hex(),
        "tenant": tenant,
        "owner": owner,
        "message": message,
        "name": name,
        "type": mime,
        "size": size,
        "created": datetime.now(UTC),
    }

"""Files people attach (a mail's attachments, a news item's images and documents): their type read from the content
(never the name), a virus scanner's hook, and where the bytes are kept — behind `FileStore`, whose one implementation
keeps them in the service's own database in chunks looked up by key (GridFS finds chunks by a secondary field: a scan
on FerretDB). Another store (S3-compatible, say) plugs in there. Every service that keeps files uses this one."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import quote

import filetype  # type: ignore[import-untyped]
from bson import Binary
from fastapi.responses import StreamingResponse

from maille_kit.docstore import Docstore
from maille_kit.errors import Invalid, TooLarge, Unavailable, Unsupported

log = logging.getLogger("maille.files")

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
    """A file that may not be kept, and why."""


def sniff(head: bytes) -> str:
    """The type the content says it is (the first bytes are enough); `Refused` when it is not one that may be kept."""
    kind = filetype.guess(head)
    if kind is not None:
        mime = kind.mime
    elif b"\x00" not in head[:8192] and _utf8(head[:8192]):
        mime = "text/plain"
    else:
        raise Refused("the file's content is of no type that may be kept here (documents, images, sound, video, text)")
    if mime in REFUSED_IMAGES or not (mime in ALLOWED or mime.startswith(ALLOWED_PREFIXES)):
        raise Refused(f"{mime} files may not be kept here (found from the content)")
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


class FileStore(Protocol):
    """Where files' bytes live."""

    async def put(self, meta: dict[str, Any], data: bytes) -> None: ...

    def read(self, meta: dict[str, Any]) -> AsyncIterator[bytes]: ...

    async def delete(self, meta: dict[str, Any]) -> None: ...


async def receive(body: AsyncIterator[bytes], *, limit: int, scanner: Scanner | None) -> tuple[bytes, str]:
    """A file sent in a request's body, checked before anything is kept: its size (`TooLarge` past `limit` bytes, read
    no further), its type from its content (`Refused`), and the virus scanner's word (`Invalid` when it finds one,
    `Unavailable` when it cannot say). The bytes and their type."""
    data = bytearray()
    async for piece in body:
        data += piece
        if len(data) > limit:
            raise TooLarge(f"a file may be {limit} bytes at most", limit=limit)
    if not data:
        raise Invalid("the file is empty")
    mime = sniff(bytes(data[:8192]))
    if scanner is not None:
        try:
            found = await scanner.scan(bytes(data))
        except Exception as exc:
            log.warning("virus scan failed: %s", exc)
            raise Unavailable(
                "the virus scanner cannot check the file now; try again", headers={"Retry-After": "30"}
            ) from exc
        if found:
            raise Invalid(f"the file carries a virus ({found}): it was not kept")
    return bytes(data), mime


class DocstoreFiles:
    """Files in the service's own database: each file's description in `files` (its `_id`, and `chunks`: how many),
    its bytes in `chunks` as documents of 255 KiB keyed `<id>:<n>`."""

    def __init__(self, docstore: Docstore, *, files: str, chunks: str) -> None:
        self.docstore = docstore
        self.files = docstore.db[files]
        self.chunks = docstore.db[chunks]

    async def put(self, meta: dict[str, Any], data: bytes) -> None:
        pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        async with self.docstore.writing():
            if pieces:
                await self.chunks.insert_many(
                    [{"_id": f"{meta['_id']}:{n:05d}", "data": Binary(piece)} for n, piece in enumerate(pieces)]
                )
            await self.files.insert_one({**meta, "chunks": len(pieces)})

    async def keep(
        self, body: AsyncIterator[bytes], *, name: str, limit: int, scanner: Scanner | None, **owner: Any
    ) -> dict[str, Any]:
        """A file sent in a request's body, checked (`receive`) and kept with its `owner`'s fields; what its owner
        keeps of it: id, name, type, size and chunks (what `read` and `forget` need)."""
        data, mime = await receive(body, limit=limit, scanner=scanner)
        meta = {"_id": "f" + os.urandom(10).hex(), **owner, "name": name, "type": mime, "size": len(data)}
        await self.put(meta, data)
        return {"id": meta["_id"], "name": name, "type": mime, "size": len(data), "chunks": -(-len(data) // CHUNK)}

    async def forget(self, described: dict[str, Any]) -> None:
        """A file `keep` kept, deleted (its owner did not take it after all)."""
        await self.delete({"_id": described["id"], "chunks": described["chunks"]})

    async def meta(self, file_id: str) -> dict[str, Any] | None:
        return await self.files.find_one({"_id": file_id})

    async def read(self, meta: dict[str, Any]) -> AsyncIterator[bytes]:
        for n in range(meta.get("chunks", 0)):
            doc = await self.chunks.find_one({"_id": f"{meta['_id']}:{n:05d}"})
            if doc is None:
                raise RuntimeError(f"file {meta['_id']} lost its chunk {n}")
            yield bytes(doc["data"])

    async def delete(self, meta: dict[str, Any]) -> None:
        async with self.docstore.writing():
            await self.files.delete_one({"_id": meta["_id"]})
            for n in range(meta.get("chunks", 0)):
                await self.chunks.delete_one({"_id": f"{meta['_id']}:{n:05d}"})


def file_answer(
    meta: dict[str, Any], chunks: AsyncIterator[bytes], *, inline: bool = False, cache: str = "private, no-store"
) -> StreamingResponse:
    """A kept file as an HTTP answer: its type and length, never sniffed, sandboxed, named for the download (`inline`:
    shown in the page, an image of a news item)."""
    return StreamingResponse(
        chunks,
        media_type=meta["type"],
        headers={
            "Content-Length": str(meta["size"]),
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(meta['name'])}",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": cache,
        },
    )

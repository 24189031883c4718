"""Reading AAF feeds: the files of a delivery (a folder, files, or a `.tar.gz`), in the order an import
needs them, each streamed record by record with its line number.

The AAF (annuaire académique fédérateur) is the académie's directory feed: one XML file per kind of
record, full ("Complet") or delta. Reading is safe by construction: no DTD is loaded, no entity is
resolved, nothing is fetched from the network, and a file that declares entities of its own is refused
whole. Memory stays flat: each record is dropped once read.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, cast

from lxml import etree

from maille_kit.xml import UNTRUSTED

FILE_NAME = re.compile(
    r"^ENT_(?P<feed>[^_]+)_(?P<mode>Complet|Delta)_(?P<kind>EtabEducNat|MatEducNat|MefEducNat|PersEducNat|Eleve|PersRelEleve)"
    r"_(?P<number>\d+)\.xml$"
)
OPERATIONS = {"addRequest": "add", "modifyRequest": "modify", "deleteRequest": "delete"}
# How much of a file's start is read for its prologue (XML declaration, DOCTYPE) before the root.
PROLOGUE_BYTES = 64 * 1024


class Kind(StrEnum):
    """The kinds of AAF file, in the order an import applies them (structures before the people in them)."""

    STRUCTURES = "EtabEducNat"
    SUBJECTS = "MatEducNat"
    MEFS = "MefEducNat"
    STAFF = "PersEducNat"
    PUPILS = "Eleve"
    PARENTS = "PersRelEleve"


KIND_ORDER = list(Kind)


@dataclass(frozen=True)
class FeedFile:
    """One file of a delivery: where it is, what it holds, and how to open it."""

    name: str  # as reported (a path, or `archive.tar.gz:member`)
    kind: Kind
    full: bool
    number: int
    opener: object = field(compare=False, repr=False)

    def open(self) -> IO[bytes]:
        return self.opener()  # type: ignore[operator]


class Record:
    """One add / modify / delete request of a feed file, valid until the next record is read.

    `raw` is a digest of the record as written, enough to tell an unchanged record; its attributes are
    read from the XML only when asked for (a re-import mostly never asks).
    """

    __slots__ = ("operation", "id", "raw", "file", "line", "_element", "_attributes")

    def __init__(
        self,
        operation: str,
        id: str,
        raw: str,
        file: str,
        line: int,
        element: etree._Element | None = None,
        attributes: dict[str, list[str]] | None = None,
    ) -> None:
        self.operation, self.id, self.raw, self.file, self.line = operation, id, raw, file, line
        self._element, self._attributes = element, attributes

    @property
    def attributes(self) -> dict[str, list[str]]:
        """Attribute name -> its non-empty values (operational attributes as `@name`)."""
        if self._attributes is None:
            self._attributes = _attributes(self._element) if self._element is not None else {}
        return self._attributes

    def values(self, name: str) -> list[str]:
        """One attribute's non-empty values, without reading the others."""
        if self._attributes is not None or self._element is None:
            return self.attributes.get(name, [])
        found = self._element.iterfind(f"attributes/attr[@name='{name}']/value")
        return [text for value in found if (text := (value.text or "").strip())]

    @property
    def read_in_full(self) -> bool:
        """Whether the attributes were read."""
        return self._attributes is not None


class FeedError(Exception):
    """A file could not be read (on the whole, or from some point on); says where and why."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        super().__init__(f"{file}:{line or '-'}: {reason}")
        self.file, self.line, self.reason = file, line, reason


@dataclass
class Delivery:
    """The recognised files of a delivery, in import order, and what was set aside."""

    files: list[FeedFile]
    ignored: list[tuple[str, str]]  # (name, why)


def find_files(paths: list[Path]) -> Delivery:
    """The AAF files under `paths` (files, folders, `.tar.gz` archives), in the order to import them."""
    files: list[FeedFile] = []
    ignored: list[tuple[str, str]] = []

    def consider(name: str, base: str, opener: object) -> None:
        match = FILE_NAME.match(base)
        if match is None:
            ignored.append((name, "not an AAF file name (ENT_<id>_<Complet|Delta>_<Kind>_<NNNN>.xml)"))
            return
        kind = Kind(match["kind"])
        files.append(FeedFile(name, kind, match["mode"] == "Complet", int(match["number"]), opener))

    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file():
                    _consider_path(child, consider, ignored)
        elif path.is_file():
            _consider_path(path, consider, ignored)
        else:
            ignored.append((str(path), "no such file or folder"))
    files.sort(key=lambda f: (KIND_ORDER.index(f.kind), not f.full, f.number, f.name))
    return Delivery(files, ignored)


def _consider_path(
    path: Path, consider: Callable[[str, str, Callable[[], IO[bytes]]], None], ignored: list[tuple[str, str]]
) -> None:
    if path.name.endswith((".tar.gz", ".tgz")):
        try:
            with tarfile.open(path, "r:gz") as archive:
                members = [m for m in archive.getmembers() if m.isfile()]
        except (tarfile.TarError, OSError, EOFError) as exc:
            ignored.append((str(path), f"unreadable archive: {exc}"))
            return
        for member in members:
            consider(f"{path}:{member.name}", Path(member.name).name, _member_opener(path, member.name))
    else:
        consider(str(path), path.name, lambda: path.open("rb"))


def _member_opener(archive_path: Path, member: str) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        archive = tarfile.open(archive_path, "r:gz")
        extracted = archive.extractfile(member)
        if extracted is None:
            raise OSError(f"{member} is not a file")
        return cast(IO[bytes], _ClosingReader(extracted, archive))

    return open_member


class _ClosingReader:
    """A member of an archive that closes the archive with it."""

    def __init__(self, member: IO[bytes], archive: tarfile.TarFile) -> None:
        self._member, self._archive = member, archive

    def read(self, size: int = -1) -> bytes:
        return self._member.read(size)

    def close(self) -> None:
        self._member.close()
        self._archive.close()


class _Prefixed:
    """A stream whose first bytes were already read (for the prologue check) and are given back first."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                return head + (self._rest.read(-1 if size < 0 else size - len(head)))
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._rest.read(size)


def read_records(feed_file: FeedFile) -> Iterator[Record]:
    """The records of one file, streamed; `FeedError` where the file stops being readable XML."""
    try:
        stream = feed_file.open()
    except OSError as exc:
        raise FeedError(feed_file.name, None, f"cannot open: {exc}") from exc
    try:
        head = stream.read(PROLOGUE_BYTES)
        _check_prologue(feed_file.name, head)
        parser = etree.iterparse(_Prefixed(head, stream), events=("end",), tag=tuple(OPERATIONS), **UNTRUSTED)
        try:
            for _, element in parser:
                yield _record(element, feed_file.name)
                # Keep memory flat: drop the record and whatever came before it.
                element.clear()
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as exc:
            line = exc.lineno if exc.lineno else None
            raise FeedError(feed_file.name, line, f"not well-formed XML: {exc.msg}") from exc
    finally:
        stream.close()


def _check_prologue(name: str, head: bytes) -> None:
    # An AAF file references its DTD (never shipped, never fetched) and declares nothing itself: a
    # file that declares entities is an entity-expansion or external-entity attack, refused whole.
    root = re.search(rb"<(?![?!])", head)
    prologue = head[: root.start()] if root else head
    if re.search(rb"<!ENTITY", prologue, re.IGNORECASE):
        line = prologue[: prologue.upper().find(b"<!ENTITY")].count(b"\n") + 1
        raise FeedError(name, line, "the file declares XML entities: refused (an AAF file declares none)")
    if not head.strip():
        raise FeedError(name, None, "empty file")


def _record(element: etree._Element, file: str) -> Record:
    raw = hashlib.blake2b(etree.tostring(element), digest_size=12).hexdigest()
    identifier = element.findtext("identifier/id")
    return Record(OPERATIONS[element.tag], (identifier or "").strip(), raw, file, element.sourceline or 0, element)


def _attributes(element: etree._Element) -> dict[str, list[str]]:
    attributes: dict[str, list[str]] = {}
    for section in element:  # children walked directly: a path search per attribute costs several times more
        prefix = {"attributes": "", "operationalAttributes": "@"}.get(section.tag)
        if prefix is None:
            continue
        for attr in section:
            name = attr.get("name")
            if not name:
                continue
            values = [text for value in attr if (text := (value.text or "").strip())]
            key = prefix + name
            if key in attributes:
                attributes[key].extend(values)
            else:
                attributes[key] = values
    return attributes

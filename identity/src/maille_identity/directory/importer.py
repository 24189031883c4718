"""The AAF import: a delivery of feed files applied to the directory, with a report of what was refused.

Full and delta semantics (docs/specs/aaf.md):
- records are applied kind by kind (structures, referentials, staff, pupils, parents), in file order;
- a delta's modify of an unknown id is an add; its delete removes the person at once;
- after a *full* feed of a kind, whoever of that kind was attached to a structure the feed covers but is
  absent from it is detached from that structure; someone left with no structure is kept, flagged,
  and deleted only after `grace` — a feed missing by mistake costs nobody their account. A kind whose
  full feed could not be read to the end detaches nobody;
- a record that breaks a rule is reported (file, line, reason) and nothing of it is written; the rest
  goes on;
- only a real change is written and published: each record is compared with the digest of what the
  last import saw (its key entries), so re-importing the same feed writes nothing and publishes nothing.

Events are handed over before the documents they describe are written — to JetStream directly, or to
the outbox for whatever JetStream does not acknowledge: a crash in between publishes a change that the
next import applies again, never a change without its event.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import (
    GROUP_CREATED,
    GROUP_DELETED,
    GROUP_UPDATED,
    PERSON_CREATED,
    PERSON_DELETED,
    PERSON_UPDATED,
    STRUCTURE_CREATED,
    STRUCTURE_UPDATED,
)
from maille_identity.directory import records as rec
from maille_identity.directory.aaf import FeedError, FeedFile, Kind, Record, find_files, read_records
from maille_identity.directory.identifiers import PARENT
from maille_identity.directory.repository import (
    GROUPS,
    PERSONS,
    REFERENTIALS,
    STRUCTURES,
    DirectoryRepository,
)
from maille_identity.events import EventBatch

log = logging.getLogger("maille.identity.import")

Doc = dict[str, Any]
PERSON_KINDS = {Kind.STAFF: "staff", Kind.PUPILS: "pupil", Kind.PARENTS: "parent"}
FLUSH_EVERY = 1000
# Python's cycle collector during a bulk import: at its default thresholds it walks the whole growing
# import state thousands of times (6 s of a 35 s full import of 94,000 persons); the import makes few
# cycles, so collecting young objects every 50,000 allocations and the old ones rarely is enough.
BULK_GC_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def bulk_gc() -> Iterator[None]:
    """Collect cycles rarely while a bulk job runs; `gc.freeze()` inside it exempts what exists so far."""
    before = gc.get_threshold()
    gc.set_threshold(*BULK_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def digest(doc: Doc) -> str:
    """A short digest of a document's content (what decides whether it changed).

    The documents are built by the same code in the same key order, so their `repr` is a faithful and
    cheap serialisation (a new version of that code may change some digests: one rewrite, no harm).
    """
    return hashlib.blake2b(repr(doc).encode(), digest_size=12).hexdigest()


# What an update event says changed, by part of a person: the part's fields in the stored document, and the Person
# fields (of the event's message) they become. A key entry keeps one digest per part (`f`), so the next import
# names the parts that changed without reading the person: a service that keeps none of them skips the event.
PARTS = (
    (("last_name", "first_name"), ("last_name", "first_name")),
    (("emails",), ("emails",)),
    (
        ("profiles", "classes", "groups", "relatives", "children", "functions", "head_teacher_of", "detached_at"),
        ("profiles", "group_ids", "relatives", "children", "functions", "head_teacher_of", "detached"),
    ),
)


def part_digests(doc: Doc) -> str:
    """One 16-hex-digit digest per part of `doc`, end to end."""
    return "".join(
        hashlib.blake2b(repr([doc.get(name) for name in stored]).encode(), digest_size=8).hexdigest()
        for stored, _ in PARTS
    )


def changed_fields(before: str | None, after: str) -> list[str]:
    """The Person fields of the parts whose digests differ (a part changed may name a field that did not);
    none when there is nothing to compare with (an entry older than its digests): every field may have changed."""
    if not before or len(before) != len(after):
        return []
    return [
        field
        for n, (_, fields) in enumerate(PARTS)
        if before[16 * n : 16 * n + 16] != after[16 * n : 16 * n + 16]
        for field in fields
    ]


def person_id(secret: bytes, tenant: str, join_key: str) -> str:
    """The ENT person id of a tenant's AAF join key: opaque without the secret, the same every time.

    Derived rather than drawn, so that an import cut short and run again gives each person the id its
    events already carried; as the académie never gives a join key to another person, never reused.
    """
    return hmac.new(secret, f"{tenant}\x00{join_key}".encode(), hashlib.sha256).hexdigest()[:24]


@dataclass
class Summary:
    """What an import did, as counts (the report file has the lines of what it refused or warned about)."""

    files: int = 0
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    detached: int = 0
    rejected: int = 0
    warnings: int = 0
    events: int = 0
    unreadable: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def processed(self) -> bool:
        """Whether the feed could be read at all (some file of it, to the end)."""
        return self.files > len(self.unreadable)


class Report:
    """The report file: one line per refused record or warning (`file:line: reason`)."""

    def __init__(self, out: TextIO | None, summary: Summary) -> None:
        self.out, self.summary = out, summary

    def line(self, file: str, line: int | None, severity: str, reason: str) -> None:
        text = f"{file}:{line if line else '-'}: {severity}: {reason}"
        if severity == "rejected":
            self.summary.rejected += 1
        else:
            self.summary.warnings += 1
        if self.out is not None:
            self.out.write(text + "\n")


class Importer:
    """One import of AAF feeds into one tenant's directory."""

    def __init__(
        self,
        repository: DirectoryRepository,
        events: EventBatch,
        *,
        tenant: str,
        check_uai_letter: bool,
        id_secret: bytes,
        grace: timedelta = timedelta(days=30),
        progress: Callable[[str, int], None] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.repo = repository
        self.id_secret = id_secret
        self.events = events
        self.tenant = tenant
        self.check_uai_letter = check_uai_letter
        self.grace = grace
        self.progress = progress
        self.summary = Summary()
        self.report = Report(None, self.summary)
        # What the directory holds now (loaded once, kept current as the import goes).
        self.structures: dict[str, str] = {}  # UAI -> digest
        self.structure_keys: dict[str, str] = {}  # join key -> UAI
        self.groups: dict[str, tuple[str, str]] = {}  # group id -> (structure UAI, digest)
        self.referentials: dict[str, str] = {}  # id -> digest
        self.keys: dict[
            str, Doc
        ] = {}  # person join key -> {e: ENT id, h: digest, k: kind, s: UAIs, r: adults, c: children}
        self.now = now or datetime.now(UTC)  # the import's one clock (grace periods count from it)
        # This import's pending writes, per collection.
        self._inserts: dict[str, list[Doc]] = defaultdict(list)
        self._replaces: dict[str, list[Doc]] = defaultdict(list)
        self._deletes: dict[str, list[str]] = defaultdict(list)
        self._pending = 0
        self._writing: asyncio.Task[None] | None = None
        self._before: asyncio.Task[None] | None = None
        self._links_cache: tuple[dict[str, Doc], dict[str, set[str]]] | None = None

    async def load(self) -> None:
        """Load what the directory holds for the tenant (structures, groups, person keys)."""
        for doc in await self.repo.structures(self.tenant):
            self.structures[doc["_id"]] = doc["h"]
            self.structure_keys[doc["key"]] = doc["_id"]
        for doc in await self.repo.groups(self.tenant):
            self.groups[doc["_id"]] = (doc["structure"], doc["h"])
        for doc in await self.repo.referentials():
            self.referentials[doc["_id"]] = doc["h"]
        entries = await self.repo.snapshot(self.tenant)
        if entries is None:
            entries = await self._rebuild_entries()
        for entry in entries:
            self.keys[entry["_id"].partition(":")[2]] = entry
        # From here until the snapshot is saved again, the snapshot is not to be trusted.
        await self.repo.invalidate_snapshot(self.tenant)

    async def _rebuild_entries(self) -> list[Doc]:
        """The key entries from the persons themselves (no snapshot, or an import that did not complete).

        Slow on a large directory, and only needed after a failure. An adult named by pupils but never
        imported had an ENT id only in the snapshot: they get a new one.
        """
        entries = []
        for doc in await self.repo.persons(self.tenant):
            delete_after = doc.get("delete_after")
            entries.append(
                {
                    "_id": f"{self.tenant}:{doc['keys'][0]}",
                    "e": doc["_id"],
                    "h": doc.get("h") or "rebuilt:",
                    "k": doc["kind"],
                    "s": sorted({p["structure"] for p in doc.get("profiles", [])}),
                    "r": sorted({r["person"] for r in doc.get("relatives", [])}),
                    "c": doc.get("children", []),
                    "o": doc.get("children", []),
                    "raw": None,
                    "d": delete_after.timestamp() if delete_after else None,
                    "f": part_digests(doc),
                }
            )
        return entries

    async def run(self, paths: list[Path], report_out: TextIO | None = None) -> Summary:
        """Import the delivery under `paths`; the summary (report lines go to `report_out`)."""
        with bulk_gc():
            return await self._run(paths, report_out)

    async def _run(self, paths: list[Path], report_out: TextIO | None) -> Summary:
        started = time.monotonic()
        self.report = Report(report_out, self.summary)
        delivery = find_files(paths)
        for name, why in delivery.ignored:
            self.summary.ignored.append(name)
            self.report.line(name, None, "ignored", why)
        await self.load()
        gc.freeze()  # the state just loaded lives as long as the import: no collection needs to walk it
        by_kind: dict[Kind, list[FeedFile]] = defaultdict(list)
        for feed_file in delivery.files:
            by_kind[feed_file.kind].append(feed_file)
        for kind in Kind:
            files = by_kind.get(kind, [])
            if not files:
                continue
            self._links_cache = None  # the previous kinds may have changed the links
            seen: dict[str, tuple[str, int]] = {}  # key -> where first seen (duplicates in a feed)
            covered: set[str] = set()  # structures this kind's feed speaks for
            complete = True
            for feed_file in files:
                self.summary.files += 1
                complete &= await self._import_file(feed_file, kind, seen, covered)
            await self._flush()
            full = any(f.full for f in files)
            if full and kind in PERSON_KINDS:
                if complete:
                    await self._detach_absent(PERSON_KINDS[kind], seen, covered)
                else:
                    self.report.line(
                        kind.value, None, "warning", "the full feed could not be read to the end: nobody detached"
                    )
            if full and kind is Kind.STRUCTURES and complete:
                listed = {self.structure_keys.get(k) for k in seen}
                absent = sorted(uai for uai in self.structures if uai not in listed)
                for uai in absent:
                    self.report.line(
                        kind.value,
                        None,
                        "warning",
                        f"structure {uai} absent from the full feed: kept (an operator removes structures)",
                    )
        await self._purge_expired()
        await self._update_parents_not_in_feed()
        await self._flush()
        await self.repo.save_snapshot(self.tenant, list(self.keys.values()))
        self.summary.seconds = time.monotonic() - started
        return self.summary

    # -- files and records -------------------------------------------------------------------

    async def _import_file(
        self, feed_file: FeedFile, kind: Kind, seen: dict[str, tuple[str, int]], covered: set[str]
    ) -> bool:
        """Apply one file; whether it was read to the end."""
        unknown: dict[str, int] = {}
        known = rec.KNOWN_ATTRIBUTES[kind]
        count = 0
        try:
            for record in read_records(feed_file):
                count += 1
                self.summary.records += 1
                try:
                    await self._apply(record, kind, feed_file.full, seen, covered)
                except rec.Rejected as exc:
                    self.report.line(record.file, record.line, "rejected", str(exc))
                # Only a record read in full is looked at (one unchanged since the last import is not).
                if record.read_in_full:
                    for name in record.attributes:
                        if not name.startswith("@") and name not in known and name not in unknown:
                            unknown[name] = record.line
                if self.progress is not None and count % 1000 == 0:
                    self.progress(feed_file.name, count)
                if self._pending >= FLUSH_EVERY:
                    await self._flush_soon()
                elif count % 50 == 0:
                    await asyncio.sleep(0)  # let the batch being written send its next write meanwhile
        except FeedError as exc:
            self.summary.unreadable.append(feed_file.name)
            self.report.line(exc.file, exc.line, "unreadable", f"{exc.reason}; the records before it were imported")
            return False
        finally:
            for name, line in unknown.items():
                self.report.line(feed_file.name, line, "warning", f"unknown attribute {name} (ignored)")
            if self.progress is not None:
                self.progress(feed_file.name, count)
        return True

    async def _apply(
        self, record: Record, kind: Kind, full: bool, seen: dict[str, tuple[str, int]], covered: set[str]
    ) -> None:
        key = rec.record_key(record, kind)
        if key in seen and full:
            first_file, first_line = seen[key]
            raise rec.Rejected(
                f"duplicate id {key!r} in the feed (first at {first_file}:{first_line}); this one ignored"
            )
        if record.operation == "delete":
            seen[key] = (record.file, record.line)
            await self._delete(key, kind)
            return
        ctx = rec.Context(self.structure_keys, self.check_uai_letter)
        if kind is Kind.STRUCTURES:
            doc, groups, warnings = rec.structure(record, ctx)
            for warning in warnings:
                self.report.line(record.file, record.line, "warning", warning)
            seen[key] = (record.file, record.line)
            self._put_structure(doc, groups)
        elif kind in (Kind.SUBJECTS, Kind.MEFS):
            doc = rec.referential(record, kind)
            seen[key] = (record.file, record.line)
            self._put_referential(doc)
        else:
            raw = record.raw
            if self._unchanged(key, kind, record, raw):
                seen[key] = (record.file, record.line)
                covered.update(self.keys[key]["s"])
                self.summary.unchanged += 1
                return
            builder = {Kind.STAFF: rec.staff, Kind.PUPILS: rec.pupil, Kind.PARENTS: rec.parent}[kind]
            doc = builder(record, ctx)
            seen[key] = (record.file, record.line)
            await self._put_person(key, doc, covered, raw)

    def _unchanged(self, key: str, kind: Kind, record: Record, raw: str) -> bool:
        """Whether the record is the one the last import took, word for word, and what it leads to is too.

        The re-import's fast path: the record is neither checked nor rebuilt. A pupil's adults must still
        exist; a parent's children (which the pupils' records give too) must be the same.
        """
        entry = self.keys.get(key)
        if entry is None or entry.get("raw") != raw or not entry["h"] or ":" in entry["h"]:
            return False  # new, changed, or changed since by a detach or a link update
        by_ent, reverse = self._links()
        if kind is Kind.PUPILS:
            return all(adult in by_ent for adult in entry["r"])
        if kind is Kind.PARENTS:
            own = {
                self.keys[k]["e"]
                for k in record.values("ENTAuxPersRelEleveEleve")
                if k in self.keys and self.keys[k]["k"] == "pupil"
            }
            children = sorted(own | reverse.get(entry["e"], set()))
            return children == entry["c"] and parent_structures(children, by_ent) == entry["s"]
        return True

    # -- structures, groups, referentials ----------------------------------------------------

    def _put_structure(self, doc: Doc, groups: list[Doc]) -> None:
        uai = doc["_id"]
        self.structure_keys[doc["key"]] = uai
        doc = {**doc, "tenant": self.tenant}
        seat_uai = self.structure_keys.get(doc["seat_key"], "") if doc["seat_key"] else ""
        doc["seat"] = seat_uai
        h = digest(doc)
        doc["h"] = h
        old = self.structures.get(uai)
        if old != h:
            self.structures[uai] = h
            self._queue("replace", STRUCTURES, doc)
            message = pb.Structure(
                id=uai,
                uai=uai,
                name=doc["name"],
                type=doc["type"],
                contract=doc["contract"],
                seat_id=seat_uai,
                academy=doc["academy"],
            )
            if old is None:
                self.summary.created += 1
                self.events.add(STRUCTURE_CREATED, pb.StructureCreated(structure=message))
            else:
                self.summary.updated += 1
                self.events.add(STRUCTURE_UPDATED, pb.StructureUpdated(structure=message))
        else:
            self.summary.unchanged += 1
        listed = set()
        for group in groups:
            listed.add(group["_id"])
            group = {**group, "tenant": self.tenant}
            gh = digest(group)
            group["h"] = gh
            before = self.groups.get(group["_id"])
            if before is not None and before[1] == gh:
                continue
            self.groups[group["_id"]] = (uai, gh)
            self._queue("replace", GROUPS, group)
            kind = pb.GROUP_KIND_CLASS if group["kind"] == "class" else pb.GROUP_KIND_GROUP
            said = pb.Group(id=group["_id"], structure_id=uai, code=group["code"], label=group["label"], kind=kind)
            if before is None:
                self.events.add(GROUP_CREATED, pb.GroupCreated(group=said))
            else:
                self.events.add(GROUP_UPDATED, pb.GroupUpdated(group=said))
        # The structure's record lists all its classes and groups: the others are gone.
        for group_id, (structure_uai, _) in list(self.groups.items()):
            if structure_uai == uai and group_id not in listed:
                del self.groups[group_id]
                self._queue("delete", GROUPS, group_id)
                self.events.add(GROUP_DELETED, pb.GroupDeleted(id=group_id, structure_id=uai))

    def _put_referential(self, doc: Doc) -> None:
        h = digest(doc)
        if self.referentials.get(doc["_id"]) == h:
            self.summary.unchanged += 1
            return
        self.summary.created += doc["_id"] not in self.referentials
        self.summary.updated += doc["_id"] in self.referentials
        self.referentials[doc["_id"]] = h
        self._queue("replace", REFERENTIALS, {**doc, "h": h})

    # -- persons ------------------------------------------------------------------------------

    def _ent_id(self, key: str, kind: str) -> Doc:
        """The key entry of a join key, made (with a new ENT id) when the key is new."""
        entry = self.keys.get(key)
        if entry is None:
            entry = {
                "_id": f"{self.tenant}:{key}",
                "e": person_id(self.id_secret, self.tenant, key),
                "h": None,
                "k": kind,
                "s": [],
                "r": [],
                "c": [],
            }
            self.keys[key] = entry
            if self._links_cache is not None:
                self._links_cache[0][entry["e"]] = entry
        return entry

    async def _put_person(self, key: str, doc: Doc, covered: set[str], raw: str) -> None:
        entry = self._ent_id(key, doc["kind"])
        if entry["k"] != doc["kind"] and entry["h"] is not None:
            raise rec.Rejected(f"id {key!r} is already a {entry['k']} of the directory, not a {doc['kind']}")
        entry["k"] = doc["kind"]
        if doc["kind"] == "pupil":
            adults = []
            for relative in doc["relatives"]:
                adult = self._ent_id(relative.pop("key"), "parent")
                relative["person"] = adult["e"]
                adults.append(adult["e"])
            entry_r = sorted(set(adults))
        else:
            entry_r = []
        own: list[str] = []
        if doc["kind"] == "parent":
            # Pupils come before parents: the links given from the pupils' side are all known by now.
            by_ent, reverse = self._links()
            own = sorted(
                {self.keys[k]["e"] for k in doc.pop("children_keys") if k in self.keys and self.keys[k]["k"] == "pupil"}
            )
            children = sorted(set(own) | reverse.get(entry["e"], set()))
            doc["children"] = children
            doc["profiles"] = parent_profiles(children, by_ent)
        structures = sorted({p["structure"] for p in doc["profiles"]})
        covered.update(structures)
        doc.update({"_id": entry["e"], "tenant": self.tenant, "keys": [key]})
        h = digest(doc)
        if entry["h"] == h:
            self.summary.unchanged += 1
            return
        created = entry["h"] is None
        parts = part_digests(doc)
        changed = changed_fields(entry.get("f"), parts)
        entry.update(
            {
                "h": h,
                "s": structures,
                "r": entry_r,
                "c": doc.get("children", []),
                "o": own,
                "raw": raw,
                "d": None,
                "f": parts,
            }
        )
        doc["h"] = h
        doc["updated_at"] = self.now
        # A first write is an insert: on FerretDB an insert is cheap where a replace scans the collection.
        self._queue("insert" if created else "replace", PERSONS, doc)
        if created:
            self.summary.created += 1
            self.events.add(PERSON_CREATED, pb.PersonCreated(person=person_message(doc)))
        else:
            self.summary.updated += 1
            self.events.add(PERSON_UPDATED, pb.PersonUpdated(person=person_message(doc), changed=changed))

    def _links(self) -> tuple[dict[str, Doc], dict[str, set[str]]]:
        """The key entries by ENT id, and each adult's children as the pupils' records give them."""
        if self._links_cache is None:
            by_ent = {entry["e"]: entry for entry in self.keys.values()}
            reverse: dict[str, set[str]] = defaultdict(set)
            for entry in self.keys.values():
                for adult in entry.get("r", ()):
                    reverse[adult].add(entry["e"])
            self._links_cache = (by_ent, reverse)
        return self._links_cache

    async def _delete(self, key: str, kind: Kind) -> None:
        entry = self.keys.get(key)
        if kind not in PERSON_KINDS:
            self.report.line(
                kind.value,
                None,
                "warning",
                f"delete of {key!r} ignored: structures and referentials are removed by an operator",
            )
            return
        if entry is None or entry["h"] is None:
            self.summary.unchanged += 1
            return
        self._remove_person(key, entry, erased=False)

    def _remove_person(self, key: str, entry: Doc, *, erased: bool) -> None:
        del self.keys[key]
        self._links_cache = None
        self._queue("delete", PERSONS, entry["e"])
        self.summary.deleted += 1
        self.events.add(PERSON_DELETED, pb.PersonDeleted(id=entry["e"], erased=erased))

    async def _detach_absent(self, kind: str, seen: dict[str, tuple[str, int]], covered: set[str]) -> None:
        """After a full feed of `kind`: detach the absent from the structures it covers."""
        absent = {
            entry["e"]: (key, entry)
            for key, entry in self.keys.items()
            if entry["k"] == kind and entry["h"] is not None and key not in seen and set(entry["s"]) & covered
        }
        if not absent:
            return
        for doc in await self.repo.persons_by_id(absent):
            key, entry = absent[doc["_id"]]
            remaining = [p for p in doc.get("profiles", []) if p["structure"] not in covered]
            left = {p["structure"] for p in doc.get("profiles", [])} - {p["structure"] for p in remaining}
            doc["profiles"] = remaining
            for field_name in ("classes", "groups", "head_teacher_of"):
                if field_name in doc:
                    doc[field_name] = [g for g in doc[field_name] if g.split("$", 1)[0] not in left]
            if not remaining and "detached_at" not in doc:
                doc["detached_at"] = self.now
                doc["delete_after"] = self.now + self.grace
                self.summary.detached += 1
            doc["updated_at"] = self.now
            parts = part_digests(doc)
            changed = changed_fields(entry.get("f"), parts)
            entry.update({"h": "detached:" + digest(doc), "s": sorted(p["structure"] for p in remaining), "f": parts})
            doc["h"] = entry["h"]
            if "delete_after" in doc:  # kept in the entry too: the purge then reads no person
                entry["d"] = doc["delete_after"].timestamp()
            self._queue("replace", PERSONS, doc)
            self.summary.updated += 1
            self.events.add(PERSON_UPDATED, pb.PersonUpdated(person=person_message(doc), changed=changed))

    async def _update_parents_not_in_feed(self) -> None:
        """Parents not in this import whose children changed in it: their links and profiles follow."""
        self._links_cache = None
        by_ent, reverse = self._links()
        changed: dict[str, tuple[Doc, list[str]]] = {}
        for entry in self.keys.values():
            if entry["k"] != "parent" or entry["h"] is None:
                continue
            children = sorted((set(entry.get("o", [])) & by_ent.keys()) | reverse.get(entry["e"], set()))
            if children != entry.get("c", []) or parent_structures(children, by_ent) != entry["s"]:
                changed[entry["e"]] = (entry, children)
        if not changed:
            return
        for doc in await self.repo.persons_by_id(changed):
            entry, children = changed[doc["_id"]]
            doc["children"] = children
            doc["profiles"] = parent_profiles(children, by_ent)
            doc["updated_at"] = self.now
            parts = part_digests(doc)
            fields = changed_fields(entry.get("f"), parts)
            entry.update(
                {"h": "links:" + digest(doc), "s": parent_structures(children, by_ent), "c": children, "f": parts}
            )
            doc["h"] = entry["h"]
            self._queue("replace", PERSONS, doc)
            self.summary.updated += 1
            self.events.add(PERSON_UPDATED, pb.PersonUpdated(person=person_message(doc), changed=fields))

    async def _purge_expired(self) -> None:
        """Delete the persons whose grace period after a full feed is over."""
        now = self.now.timestamp()
        for key, entry in list(self.keys.items()):
            if entry.get("d") is not None and entry["d"] <= now:
                self._remove_person(key, entry, erased=False)

    # -- writes ---------------------------------------------------------------------------------

    def _queue(self, what: str, collection: str, item: Any) -> None:
        if what == "insert":
            self._inserts[collection].append(item)
        elif what == "replace":
            self._replaces[collection].append(item)
        elif what == "delete":
            self._deletes[collection].append(item)
        self._pending += 1

    async def _flush_soon(self) -> None:
        """Start committing what is queued while the next records are read: each batch is one unit of work (its
        documents and their events together, or finished by another replica), one batch in flight at a time."""
        work = self.events.work()
        self.summary.events += len(work.events)
        for collection in (STRUCTURES, GROUPS, REFERENTIALS, PERSONS):
            inserts, replaces = self._inserts.pop(collection, []), self._replaces.pop(collection, [])
            deletes = self._deletes.pop(collection, [])
            if inserts:
                work.insert(collection, *inserts)
            for doc in replaces:
                work.put(collection, doc)
            for start in range(0, len(deletes), 500):
                work.delete(collection, {"_id": {"$in": deletes[start : start + 500]}})
        self._pending = 0
        # Two units in flight: one's events go out while the next one's documents are written (events in order).
        previous = self._writing
        if self._before is not None:
            await self._before
        self._before = previous
        self._writing = asyncio.create_task(self.events.commit(work, after=previous))

    async def _flush(self) -> None:
        """Write everything queued, and wait until it is written."""
        await self._flush_soon()
        assert self._writing is not None
        writing, self._writing, self._before = self._writing, None, None
        await writing


def parent_structures(children: list[str], by_ent: dict[str, Doc]) -> list[str]:
    """A parent's structures: their children's."""
    return sorted({uai for child in children if child in by_ent for uai in by_ent[child]["s"]})


def parent_profiles(children: list[str], by_ent: dict[str, Doc]) -> list[Doc]:
    return [{"structure": uai, "code": PARENT} for uai in parent_structures(children, by_ent)]


def person_message(doc: Doc) -> pb.Person:
    """What other services may know of a person."""
    return pb.Person(
        id=doc["_id"],
        last_name=doc.get("last_name", ""),
        first_name=doc.get("first_name", ""),
        profiles=[
            pb.Profile(structure_id=p["structure"], uai=p["structure"], code=p["code"]) for p in doc.get("profiles", [])
        ],
        group_ids=[*doc.get("classes", []), *doc.get("groups", [])],
        relatives=[
            pb.Relative(
                person_id=r["person"],
                legal=r.get("legal", False),
                financial=r.get("financial", False),
                contact=r.get("contact", False),
            )
            for r in doc.get("relatives", [])
        ],
        children=doc.get("children", []),
        functions=[f"{f['structure']}${f['code']}" for f in doc.get("functions", [])],
        head_teacher_of=doc.get("head_teacher_of", []),
        emails=doc.get("emails", []),
        detached="detached_at" in doc,
    )


async def import_feeds(
    repository: DirectoryRepository,
    events: EventBatch,
    paths: list[Path],
    *,
    tenant: str,
    check_uai_letter: bool,
    id_secret: bytes,
    report_path: Path | None = None,
    grace: timedelta = timedelta(days=30),
    progress: Callable[[str, int], None] | None = None,
    now: datetime | None = None,
) -> Summary:
    """Import the AAF delivery under `paths` into `tenant`'s directory; report lines to `report_path`."""
    importer = Importer(
        repository,
        events,
        tenant=tenant,
        check_uai_letter=check_uai_letter,
        id_secret=id_secret,
        grace=grace,
        progress=progress,
        now=now,
    )
    if report_path is None:
        return await importer.run(paths)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    with report_path.open("w", encoding="utf-8") as out:
        return await importer.run(paths, out)

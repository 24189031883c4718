"""Reader sync: the PMB readers of schools that ask for it (`syncReaders`) follow the directory — pupils, teachers
and staff created, changed and removed in each school's PMB, pupils with their class as reader group (a PMB group
named as the class). A reader's barcode and login are the ENT person id.

Idempotent: what was last written to each school's PMB for a person is remembered (a hash, in `readers_synced`),
so a person unchanged is not written again and a reader made already is updated, not made twice. Durable: a person
to sync is noted in `reader_sync_pending` before the event is acknowledged, and taken off once synced — a restart
syncs what was left. Batched: `concurrency` workers, each taking up to 64 waiting persons at once (their copies read,
what was synced written, in one command each). A new reader is written, and one gone removed, at once (a pupil who
arrives borrows on their first day); a reader's *change* is paced — at most `updates_per_second` a second to one
school's PMB by this replica: a night's delta that renames every pupil reaches the PMBs over a minute or two instead
of as fast as they can take it, leaving the machine to the import and the morning's first users meanwhile.
`reconcile` syncs every person the directory holds (and removes those it does not), unpaced (an operator asked for it
now) — after a PMB was restored, or a school was first connected.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any

from pymongo import DeleteOne, ReplaceOne
from pymongo.errors import BulkWriteError

from maille_kit.docstore import Docstore, by_ids, insert_missing
from maille_kit.pace import Pace
from maille_library.connections import Connections
from maille_library.directory import Directory, groups_in
from maille_library.pmb import PmbClient, PmbConnection, PmbError, PmbRefused

log = logging.getLogger("maille.library.sync")
PENDING, SYNCED = "reader_sync_pending", "readers_synced"
SYNC_BATCH = 64  # persons a worker takes at once
Doc = dict[str, Any]


class ReaderSync:
    """Keeps schools' PMB readers in step with the directory."""

    def __init__(
        self,
        client: PmbClient,
        connections: Connections,
        directory: Directory,
        docstore: Docstore,
        *,
        concurrency: int = 8,
        group_seconds: float = 300,
        updates_per_second: float = 0,
    ) -> None:
        self.client = client
        self.connections = connections
        self.directory = directory
        self.docstore = docstore
        self.pending = docstore.db[PENDING]
        self.synced = docstore.db[SYNCED]
        self.concurrency = concurrency
        self.group_seconds = group_seconds
        self.updates_per_second = updates_per_second
        self._paces: dict[tuple[str, str | None], Pace] = {}  # per school's PMB (its server and database)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._groups: dict[str, tuple[float, dict[str, int]]] = {}
        self.errors: list[str] = []  # the last failures, for operators (also logged)

    # the queue
    async def changed(self, persons: dict[str, list[str]]) -> None:
        """Persons changed or gone from the directory (each with their schools now): noted durably, then synced —
        those of a school that syncs its readers, or whom some PMB holds as a reader (nothing is written for anyone
        else; who is held found with one read)."""
        synced = set((await by_ids(self.synced, list(persons), {"_id": 1})).keys())
        concerned = [person for person, schools in persons.items() if person in synced or await self._syncing(schools)]
        if not concerned:
            return
        async with self.docstore.writing():
            await insert_missing(self.pending, [{"_id": person} for person in concerned])
        for person in concerned:
            self._enqueue(person)

    async def school_joined(self, uai: str) -> int:
        """A school syncs its readers from now on: every person of it is noted and synced, not only those who change
        later; how many."""
        persons = [
            doc["_id"] async for doc in self.directory.readers.find({f"ecoles.{uai}": {"$exists": True}}, {"_id": 1})
        ]
        for start in range(0, len(persons), 500):
            try:
                async with self.docstore.writing():
                    await self.pending.insert_many([{"_id": p} for p in persons[start : start + 500]], ordered=False)
            except BulkWriteError:
                pass  # some were noted already
        for person_id in persons:
            self._enqueue(person_id)
        return len(persons)

    async def _syncing(self, schools: list[str]) -> bool:
        """Whether one of these schools keeps its PMB readers in step with the directory."""
        for uai in schools:
            conn = await self.connections.get(uai)
            if conn is not None and conn.sync_readers:
                return True
        return False

    def _enqueue(self, person_id: str) -> None:
        if person_id not in self._queued and not self._stopping:
            self._queued.add(person_id)
            self._queue.put_nowait(person_id)

    async def start(self) -> None:
        for doc in await self.pending.find({}).to_list():  # what a previous run left
            self._enqueue(doc["_id"])
        self._workers = [asyncio.create_task(self._work(), name=f"reader-sync-{n}") for n in range(self.concurrency)]

    async def stop(self, timeout: float = 10) -> None:
        """Let each worker finish the person in hand (what is left stays noted for the next start), then stop."""
        self._stopping = True
        for _ in self._workers:
            self._queue.put_nowait("")
        if self._workers:
            _, late = await asyncio.wait(self._workers, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._workers = []

    async def _work(self) -> None:
        while True:
            first = await self._queue.get()
            if not first or self._stopping:
                return
            batch = [first]  # with whatever else is waiting: read and written together (an import queues thousands)
            while len(batch) < SYNC_BATCH and not self._queue.empty():
                person_id = self._queue.get_nowait()
                if not person_id:  # another worker's signal to stop: left for it
                    self._queue.put_nowait(person_id)
                    break
                batch.append(person_id)
            self._queued.difference_update(batch)
            try:
                outcomes = await self.sync_persons(batch)
            except Exception as exc:  # the docstore away: every one stays pending
                outcomes = dict.fromkeys(batch, exc)
            done = [p for p, outcome in outcomes.items() if not isinstance(outcome, Exception)]
            try:
                if done:
                    async with self.docstore.writing():
                        await self.pending.delete_many({"_id": {"$in": done}})
            except Exception as error:  # still noted: synced again (unchanged) at the next start
                self._note(f"{len(done)} persons synced, not yet taken off the pending list: {error}")
            failed = {p: outcome for p, outcome in outcomes.items() if isinstance(outcome, Exception)}
            if failed:  # PMB away: those persons stay pending, tried again later (or at the next start)
                for person_id, reason in failed.items():
                    self._note(f"{person_id}: {reason}")
                if not self._stopping:
                    await asyncio.sleep(5)
                    for person_id in failed:
                        self._enqueue(person_id)

    def _note(self, error: str) -> None:
        log.warning("reader sync: %s", error)
        self.errors = [*self.errors[-49:], error]

    # one person
    async def sync_person(self, person_id: str, *, force: bool = False) -> dict[str, str]:
        """Write the person's reader to each school's PMB as the directory has them now (unless what was last written
        is the same, and not `force`); what was done, per school."""
        outcome = (await self.sync_persons([person_id], force=force))[person_id]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def sync_persons(
        self, person_ids: list[str], *, force: bool = False
    ) -> dict[str, dict[str, str] | Exception]:
        """`sync_person` for several persons, their copies read and what was synced written in one command each; per
        person, what was done per school, or why it failed (that person's note is then left as it was)."""
        readers = await by_ids(self.directory.readers, person_ids)
        synced = await by_ids(self.synced, person_ids)
        outcomes: dict[str, dict[str, str] | Exception] = {}
        writes: list[Any] = []
        for person_id in person_ids:
            before = synced.get(person_id, {}).get("schools", {})
            after = dict(before)
            try:
                outcomes[person_id] = await self._sync(person_id, readers.get(person_id), before, after, force)
            except PmbError as exc:
                outcomes[person_id] = exc
                continue
            if after != before:
                writes.append(
                    ReplaceOne({"_id": person_id}, {"_id": person_id, "schools": after}, upsert=True)
                    if after
                    else DeleteOne({"_id": person_id})
                )
        if writes:
            async with self.docstore.writing():
                await self.synced.bulk_write(writes, ordered=False)
        return outcomes

    async def _sync(
        self, person_id: str, reader: Doc | None, before: dict[str, str], after: dict[str, str], force: bool
    ) -> dict[str, str]:
        """One person's reader written to (or removed from) each school's PMB, `after` changed to what was written."""
        now = (reader or {}).get("ecoles", {})
        done: dict[str, str] = {}
        for uai in sorted(set(now) | set(before)):
            conn = await self.connections.get(uai)
            if conn is None or not conn.sync_readers:
                continue
            if uai in now and reader is not None:
                data = await self._data(reader, uai, conn)
                digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
                if before.get(uai) == digest and not force:
                    done[uai] = "unchanged"
                    continue
                done[uai] = await self._write(conn, person_id, data, known=uai in before, paced=not force)
                after[uai] = digest
            else:
                done[uai] = await self._remove(conn, person_id)
                after.pop(uai, None)
        return done

    async def _data(self, reader: Doc, uai: str, conn: PmbConnection) -> Doc:
        groups = await self._pmb_groups(uai, conn)
        wanted = [groups[code] for code in groups_in(reader, uai) if code in groups]
        categ, statut, cstat = conn.reader_fields
        return {
            "nom": reader.get("nom") or reader["_id"],
            "prenom": reader.get("prenom", ""),
            "login": reader["_id"],
            "categ": categ,
            "statut": statut,
            "cstat": cstat,
            "groupe_list": [{"id": gid} for gid in sorted(set(wanted))],
        }

    async def _pmb_groups(self, uai: str, conn: PmbConnection) -> dict[str, int]:
        """The school's PMB reader groups by name, read every `group_seconds`."""
        known = self._groups.get(uai)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        listed = await self.client.call(conn, "pmbesEmpr_groupe_list", [])
        groups = {
            str(g.get("libelle", "")).strip(): int(g["id"]) for g in listed or [] if isinstance(g, dict) and "id" in g
        }
        self._groups[uai] = (time.monotonic() + self.group_seconds, groups)
        return groups

    async def _write(self, conn: PmbConnection, person_id: str, data: Doc, *, known: bool, paced: bool) -> str:
        if known and paced:  # a change: paced, per school's PMB
            key = (conn.url, conn.database)
            pace = self._paces.get(key) or self._paces.setdefault(key, Pace(self.updates_per_second, burst=1))
            await pace.spent()
        first, second = ("update_empr", "create_empr") if known else ("create_empr", "update_empr")
        try:
            await self.client.call(conn, f"pmbesEmpr_{first}", [person_id, data], read=False)
            return "updated" if known else "created"
        except PmbRefused as exc:  # made already (a sync lost its note), or gone from PMB meanwhile: the other way
            if not any(word in exc.detail for word in ("déjà utilisé", "inconnu")):
                raise
        await self.client.call(conn, f"pmbesEmpr_{second}", [person_id, data], read=False)
        return "created" if known else "updated"

    async def _remove(self, conn: PmbConnection, person_id: str) -> str:
        try:
            await self.client.call(conn, "pmbesEmpr_delete_empr", [person_id], read=False)
        except PmbRefused as exc:
            if "inconnu" in exc.detail:
                return "absent"
            self._note(f"{person_id} in {conn.database or conn.url}: {exc.detail}")
            return "kept"
        return "removed"

    # everyone
    async def reconcile(self) -> dict[str, int]:
        """Write every person of the directory to their schools' PMBs again (PMB may have lost or changed readers since:
        a restored backup, a librarian's edit) and remove those synced before who are gone."""
        persons = {doc["_id"] async for doc in self.directory.readers.find({}, {"_id": 1})}
        persons |= {doc["_id"] async for doc in self.synced.find({}, {"_id": 1})}
        counts: dict[str, int] = {}
        gate = asyncio.Semaphore(self.concurrency)

        async def one(person_id: str) -> None:
            async with gate:
                try:
                    for what in (await self.sync_person(person_id, force=True)).values():
                        counts[what] = counts.get(what, 0) + 1
                except PmbError as exc:
                    counts["failed"] = counts.get("failed", 0) + 1
                    self._note(f"{person_id}: {exc.detail}")

        await asyncio.gather(*(one(p) for p in sorted(persons)))
        return counts


def csv_line(values: list[str]) -> str:
    """One line of the semicolon CSV PMB's import screen reads (fields with ; or quotes quoted)."""
    out = []
    for value in values:
        text = str(value).replace("\r", " ").replace("\n", " ")
        out.append(f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ';"') else text)
    return ";".join(out) + "\r\n"


async def readers_csv(directory: Directory, uai: str) -> str:
    """The school's readers as PMB's import screen reads them: external id; last name; first name; address; zip; city;
    phone; birth year; class; email; login — what the directory holds of them (no address, phone or birth year)."""
    lines = [
        csv_line(
            ["id", "nom", "prenom", "adresse", "cp", "ville", "telephone", "annee_naissance", "classe", "mail", "login"]
        )
    ]
    async for reader in directory.readers_of_school(uai):
        lines.append(
            csv_line(
                [
                    reader["_id"],
                    reader.get("nom", ""),
                    reader.get("prenom", ""),
                    "",
                    "",
                    "",
                    "",
                    "",
                    ",".join(groups_in(reader, uai)),
                    "",
                    reader["_id"],
                ]
            )
        )
    return "".join(lines)

"""Help requests: opened by anyone signed in for one of their schools, taken first by the school's referents, sent up
to a desk when the school cannot settle them, answered, resolved, closed.

Statuses: new → open (someone took it or answered) → waiting (for the person; the clocks stop) → resolved → closed
(by the person, or by itself `reopen_days` after being resolved). A reply of the person reopens a resolved request;
a closed one stays closed (they open a new one). Who may do what:

- the person who opened it reads it (never the internal notes), answers, adds files, says it is resolved or closes it;
- its school's referents and the agents of each desk it went through read everything, answer, write internal notes,
  take it or give it to another, change its status, and send it up;
- anyone else is told it does not exist (404): an id guessed says nothing.

Each change is one unit of work (`maille_kit.work`): the request's new state under its version (two people answering
at once never lose one another's change: the second is applied again on the state the first left), its message, and
the events the timeline tells and the observatory counts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from maille.support.v1 import requests_pb2 as pb
from maille_contracts import (
    REQUEST_ANSWERED,
    REQUEST_ESCALATED,
    REQUEST_OPENED,
    REQUEST_OVERDUE,
    REQUEST_REPLIED,
    REQUEST_STATUS_CHANGED,
)
from maille_kit.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from maille_kit.files import DocstoreFiles, Scanner
from maille_kit.usage import Kind, Uses
from maille_kit.work import Conflict as Overtaken
from maille_kit.work import Work, Works
from maille_support.categories import ACTIVE, CATEGORIES, STATUSES
from maille_support.desks import SCHOOL, Desks, overdue
from maille_support.queue import Queue
from maille_support.repository import MESSAGES, REQUESTS, SupportRepository

Doc = dict[str, Any]
FILES_PER_REQUEST = 10
TRIES = 5
HANDLER_STATUSES = ("open", "waiting", "resolved", "closed")
PERSON_STATUSES = ("resolved", "closed")


def stamp(at: datetime) -> str:
    """A time to the millisecond, in UTC (what the docstore keeps of it: the same before and after it is read back)."""
    at = at.astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}"


def new_id(prefix: str) -> str:
    """Ids that sort by creation time (milliseconds), then 64 random bits: nobody guesses one."""
    return f"{prefix}{int(datetime.now(UTC).timestamp() * 1000):013d}{os.urandom(8).hex()}"


@dataclass
class Change:
    """What one action does to a request: fields set, messages added, events told."""

    set: Doc = field(default_factory=dict)
    add: Doc = field(default_factory=dict)
    pull: Doc = field(default_factory=dict)
    messages: list[Doc] = field(default_factory=list)
    events: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class Seen:
    """A request as one person may see it."""

    doc: Doc
    messages: list[Doc]
    role: str  # author, referent, agent
    handles: bool


class Requests:
    def __init__(
        self,
        repository: SupportRepository,
        works: Works,
        queue: Queue,
        desks: Desks,
        files: DocstoreFiles,
        *,
        tenant: str,
        reopen_days: int,
        file_max_bytes: int,
        scanner: Scanner | None = None,
        escalated: Callable[[Doc, Doc], Awaitable[None]] | None = None,
        uses: Uses | None = None,
    ) -> None:
        self.repository = repository
        self.works = works
        self.queue = queue
        self.desks = desks
        self.files = files
        self.tenant = tenant
        self.reopen_days = reopen_days
        self.file_max_bytes = file_max_bytes
        self.scanner = scanner
        self.escalated = escalated  # told when a request reaches a desk connected to a tracker
        self.uses = uses  # what the observatory counts: requests opened, first answers and their wait

    # reading

    async def _person(self, person_id: str) -> Doc:
        person = await self.repository.person(person_id)
        if person is None:
            raise Forbidden("the directory does not know you yet: ask your school's office")
        return person

    async def role(self, person_id: str, doc: Doc) -> str | None:
        if doc["author"] == person_id:
            return "author"
        if any(self.desks.is_agent(person_id, d) for d in doc.get("desks", [])):
            return "agent"
        if await self.desks.is_referent(await self.repository.person(person_id), doc["uai"]):
            return "referent"
        return None

    async def _visible(self, person_id: str, request_id: str) -> tuple[Doc, str]:
        doc = await self.repository.request(request_id)
        role = None if doc is None else await self.role(person_id, doc)
        if doc is None or role is None:
            raise NotFound(f"no request {request_id}")
        return doc, role

    async def read(self, person_id: str, request_id: str) -> Seen:
        doc, role = await self._visible(person_id, request_id)
        handles = role != "author"
        found = await self.repository.messages(doc.get("messages", []))
        messages = sorted(
            (m for m in found.values() if handles or not m.get("internal")), key=lambda m: (m["at"], m["_id"])
        )
        return Seen(doc, messages, role, handles)

    async def mine(self, person_id: str, *, before: str | None, size: int) -> Any:
        return self.queue.page([f"author:{person_id}"], lambda d: True, before=before, size=size)

    # opening

    async def open(self, person_id: str, given: Doc) -> Doc:
        person = await self._person(person_id)
        category, uai = given["category"], given["uai"]
        if category not in CATEGORIES:
            raise Invalid(f"unknown category {category!r}: one of {', '.join(CATEGORIES)}", field="category")
        profiles = person.get("schools", {}).get(uai)
        if profiles is None:
            raise Invalid(f"the school {uai} is not one of yours", field="uai")
        now = datetime.now(UTC)
        school = (await self.repository.schools_by_id([uai])).get(uai) or {}
        doc = {
            "_id": new_id("r"),
            "version": 1,
            "author": person_id,
            "author_name": person.get("name", ""),
            "profile": profiles[0] if profiles else "",
            "uai": uai,
            "school_name": school.get("name", ""),
            "category": category,
            "subject": given["subject"].strip(),
            "description": given["description"].strip(),
            "context": given.get("context") or {},
            "status": "new",
            "desk": SCHOOL,
            "desks": [SCHOOL],
            "assignee": None,
            "assignee_name": None,
            "opened_at": now,
            "updated_at": now,
            "level_since": now,
            "level_answered": False,
            "first_answer_at": None,
            "waiting_since": None,
            "paused": 0.0,
            "level_paused": 0.0,
            "resolved_at": None,
            "closed_at": None,
            "overdue_told": [],
            "messages": [],
            "files": [],
            "tracker": None,
            "tracker_out": [],
        }
        referents = await self.desks.referents(uai)
        work = self.works.new().insert(REQUESTS, doc)
        self._event(work, REQUEST_OPENED, pb.RequestOpened(request=self._about(doc), tell=referents))
        await self.works.commit(work)
        await self.queue.changed(doc)
        self._use(Kind.KIND_SUPPORT_OPENED, doc)
        return doc

    def _use(self, kind: int, doc: Doc, seconds: int = 0) -> None:
        if self.uses is not None:
            self.uses.record(
                kind,
                doc["author"],
                school=doc["uai"],
                profile=doc.get("profile", ""),
                service="aide",
                detail=doc["category"],
                seconds=seconds,
            )

    # changing

    async def _change(
        self, person_id: str | None, request_id: str, act: Callable[[Doc, str], Awaitable[Change] | Change]
    ) -> Doc:
        """`act` applied to the request as it is now and written under its version; applied again on the newer
        state when another change came first."""
        for _ in range(TRIES):
            if person_id is None:
                doc, role = await self.repository.request(request_id), "system"
                if doc is None:
                    raise NotFound(f"no request {request_id}")
            else:
                doc, role = await self._visible(person_id, request_id)
            change = act(doc, role)
            if not isinstance(change, Change):
                change = await change
            if not change.set and not change.add and not change.pull and not change.messages:
                return doc
            now = datetime.now(UTC)
            sets = {**change.set, "updated_at": now, "version": doc["version"] + 1}
            update: Doc = {"$set": sets}
            adds = dict(change.add)
            if change.messages:
                adds["messages"] = [m["_id"] for m in change.messages]
            if adds:
                update["$addToSet"] = {k: {"$each": v} for k, v in adds.items()}
            if change.pull:
                update["$pull"] = {k: {"$in": v} for k, v in change.pull.items()}
            work = self.works.new()
            work.update(REQUESTS, {"_id": request_id, "version": doc["version"]}, update, guard=True)
            if change.messages:
                work.insert(MESSAGES, *change.messages)
            after = {**doc, **sets}
            for key, values in adds.items():
                after[key] = [*(after.get(key) or []), *(v for v in values if v not in (after.get(key) or []))]
            for key, values in change.pull.items():
                after[key] = [v for v in after.get(key) or [] if v not in values]
            for event_type, message in change.events:
                self._event(work, event_type, message)
            try:
                await self.works.commit(work)
            except Overtaken:
                continue
            await self.queue.changed(after)
            for event_type, message in change.events:
                if event_type == REQUEST_ANSWERED:
                    self._use(Kind.KIND_SUPPORT_ANSWERED, after, message.seconds)
            return after
        raise Conflict("the request changes too often right now: try again")

    def _event(self, work: Work, event_type: str, message: Any) -> None:
        work.event(type=event_type, tenant=self.tenant, payload=message)

    def _about(self, doc: Doc) -> pb.Request:
        return pb.Request(
            id=doc["_id"],
            subject=doc["subject"],
            category=doc["category"],
            uai=doc["uai"],
            desk=doc["desk"],
            profile=doc.get("profile", ""),
        )

    def _message(self, doc: Doc, author: Doc | None, role: str, text: str, *, internal: bool = False) -> Doc:
        by = "" if role == "author" else self.desks.name(doc["desk"])
        return {
            "_id": new_id("m"),
            "request": doc["_id"],
            "at": datetime.now(UTC),
            "author": (author or {}).get("_id", ""),
            "author_name": (author or {}).get("name", ""),
            "role": role,
            "by": by,
            "text": text,
            "internal": internal,
        }

    def _status(self, doc: Doc, status: str, now: datetime) -> Doc:
        """The fields a status change sets: the waiting clock stopped or started, the resolution's time."""
        sets: Doc = {"status": status}
        if doc["status"] == "waiting" and status != "waiting" and doc.get("waiting_since"):
            sets["paused"] = doc.get("paused", 0.0) + (now - doc["waiting_since"]).total_seconds()
            sets["waiting_since"] = None
        if status == "waiting":
            sets["waiting_since"] = now
        if status == "resolved":
            sets["resolved_at"] = now
        if status == "closed":
            sets["closed_at"] = now
        if status in ACTIVE:
            sets["resolved_at"] = None
        return sets

    async def reply(
        self, person_id: str, request_id: str, text: str, *, internal: bool = False, status: str | None = None
    ) -> Doc:
        author = await self._person(person_id)

        def act(doc: Doc, role: str) -> Change:
            now = datetime.now(UTC)
            change = Change()
            if doc["status"] == "closed":
                raise Conflict("this request is closed: open a new one, and say which one it follows")
            if role == "author":
                if internal or status not in (None, "resolved", "closed"):
                    raise Forbidden("only those who handle the request write internal notes or change its status so")
                if doc["status"] == "resolved" and doc["resolved_at"] < now - timedelta(days=self.reopen_days):
                    raise Conflict("this request was resolved too long ago to be reopened: open a new one")
                message = self._message(doc, author, "author", text)
                change.messages.append(message)
                if doc.get("tracker"):
                    change.add["tracker_out"] = [message["_id"]]
                target = status or ("open" if doc["status"] in ("waiting", "resolved") else doc["status"])
                if target != doc["status"]:
                    change.set.update(self._status(doc, target, now))
                    change.events.append(
                        (REQUEST_STATUS_CHANGED, pb.RequestStatusChanged(request=self._about(doc), status=target))
                    )
                return change
            if status is not None and status not in HANDLER_STATUSES:
                raise Invalid(f"a status is one of {', '.join(HANDLER_STATUSES)}", field="status")
            message = self._message(doc, author, role, text, internal=internal)
            change.messages.append(message)
            if internal:
                return change
            self._answered(doc, change, now)
            change.events.append(
                (
                    REQUEST_REPLIED,
                    pb.RequestReplied(request=self._about(doc), person_id=doc["author"], by=message["by"]),
                )
            )
            target = status or ("open" if doc["status"] == "new" else doc["status"])
            if target != doc["status"]:
                change.set.update(self._status(doc, target, now))
                change.events.append(self._status_event(doc, target))
            if doc.get("tracker"):
                change.add["tracker_out"] = [message["_id"]]
            return change

        return await self._change(person_id, request_id, act)

    def _answered(self, doc: Doc, change: Change, now: datetime) -> None:
        """A first answer at this level stops its first clock; the request's very first is counted."""
        if not doc.get("level_answered"):
            change.set["level_answered"] = True
        if doc.get("first_answer_at") is None:
            change.set["first_answer_at"] = now
            seconds = int((now - doc["opened_at"]).total_seconds() - doc.get("paused", 0.0))
            change.events.append((REQUEST_ANSWERED, pb.RequestAnswered(request=self._about(doc), seconds=seconds)))

    def _status_event(self, doc: Doc, status: str) -> tuple[str, Any]:
        return (
            REQUEST_STATUS_CHANGED,
            pb.RequestStatusChanged(request=self._about(doc), person_id=doc["author"], status=status),
        )

    async def set_status(self, person_id: str, request_id: str, status: str) -> Doc:
        def act(doc: Doc, role: str) -> Change:
            allowed = PERSON_STATUSES if role == "author" else HANDLER_STATUSES
            if status not in allowed:
                raise Invalid(f"you may set the status to {', '.join(allowed)}", field="status")
            if doc["status"] == "closed":
                raise Conflict("this request is closed: open a new one")
            change = Change()
            if status != doc["status"]:
                change.set.update(self._status(doc, status, datetime.now(UTC)))
                told = "" if role == "author" else doc["author"]
                change.events.append(
                    (
                        REQUEST_STATUS_CHANGED,
                        pb.RequestStatusChanged(request=self._about(doc), person_id=told, status=status),
                    )
                )
            return change

        return await self._change(person_id, request_id, act)

    async def assign(self, person_id: str, request_ids: list[str], assignee: str | None) -> dict[str, str]:
        """Requests given to a person who handles them (or to nobody); what was refused, by request id."""
        refused: dict[str, str] = {}
        target = await self.repository.person(assignee) if assignee else None
        if assignee and target is None:
            raise Invalid(f"no person {assignee} in the directory", field="assignee")
        for request_id in dict.fromkeys(request_ids):

            async def act(doc: Doc, role: str) -> Change:
                if role == "author":
                    raise NotFound(f"no request {request_id}")
                if target is not None and await self.role(target["_id"], doc) in (None, "author"):
                    raise Forbidden(f"{target.get('name') or assignee} does not handle this request")
                change = Change()
                if doc.get("assignee") != assignee:
                    change.set = {"assignee": assignee, "assignee_name": (target or {}).get("name")}
                    if doc["status"] == "new" and assignee:
                        change.set.update(self._status(doc, "open", datetime.now(UTC)))
                return change

            try:
                await self._change(person_id, request_id, act)
            except (NotFound, Forbidden, Conflict) as exc:
                refused[request_id] = exc.detail
        return refused

    async def escalate(self, person_id: str, request_id: str, to: str | None, note: str) -> Doc:
        author = await self._person(person_id)
        reached: dict[str, Doc] = {}

        def act(doc: Doc, role: str) -> Change:
            if role == "author":
                raise Forbidden("the referents and desks send a request up, not the person who asked")
            if doc["status"] not in ACTIVE:
                raise Conflict(f"this request is {STATUSES[doc['status']].lower()}: reopen it before sending it up")
            if role == "agent" and not self.desks.is_agent(person_id, doc["desk"]):
                raise Forbidden("only those who hold it now send the request further")
            desk = self.desks.escalation(doc["category"], doc["uai"], to)
            if desk["_id"] == doc["desk"]:
                raise Conflict(f"the request is already with {desk['name']}")
            reached["desk"] = desk
            now = datetime.now(UTC)
            change = Change()
            change.set = {
                "desk": desk["_id"],
                "assignee": None,
                "assignee_name": None,
                "level_since": now,
                "level_answered": False,
                "level_paused": doc.get("paused", 0.0),
            }
            if doc["status"] == "waiting":
                change.set.update(self._status(doc, "open", now))
                change.set["level_paused"] = change.set["paused"]
            if desk.get("redmine"):
                change.set["tracker"] = {"desk": desk["_id"], "issue": None}
            change.add = {"desks": [desk["_id"]]}
            words = f"Demande transmise à : {desk['name']}." + (f"\n\n{note}" if note else "")
            change.messages.append(self._message(doc, author, role, words, internal=True))
            moved = {**doc, "desk": desk["_id"]}
            change.events.append(
                (REQUEST_ESCALATED, pb.RequestEscalated(request=self._about(moved), tell=desk.get("agents", [])))
            )
            return change

        doc = await self._change(person_id, request_id, act)
        if self.escalated is not None and doc.get("tracker"):
            await self.escalated(doc, reached["desk"])
        return doc

    # what a tracker says (redmine.py)

    async def from_tracker(
        self,
        request_id: str,
        replies: list[Doc],
        *,
        issue: int | None = None,
        status: tuple[int, str | None] | None = None,
    ) -> tuple[Doc, int]:
        """What the desk's tracker says: its issue's number, its public comments (each once: their ids are the
        tracker's), and its status (`(status id, what it means here)`, applied only when it changed there: a request
        the person reopened is not resolved again by an issue left as it was). The request, and how many comments
        were new."""
        fresh_count = 0

        def act(doc: Doc, role: str) -> Change:
            nonlocal fresh_count
            now = datetime.now(UTC)
            change = Change()
            tracker = dict(doc.get("tracker") or {})
            known = set(doc.get("messages", []))
            fresh = [m for m in replies if m["_id"] not in known]
            fresh_count = len(fresh)
            if issue is not None and tracker.get("issue") != issue:
                tracker["issue"] = issue
            for message in fresh:
                change.messages.append({**message, "request": doc["_id"], "by": self.desks.name(doc["desk"])})
            if fresh and doc["status"] != "closed":
                self._answered(doc, change, now)
                change.events.append(
                    (
                        REQUEST_REPLIED,
                        pb.RequestReplied(
                            request=self._about(doc), person_id=doc["author"], by=self.desks.name(doc["desk"])
                        ),
                    )
                )
                if doc["status"] == "new":
                    change.set.update(self._status(doc, "open", now))
            if status is not None and tracker.get("status_id") != status[0]:
                tracker["status_id"] = status[0]
                target = status[1]
                if target is not None and target != doc["status"] and doc["status"] != "closed":
                    change.set.update(self._status(doc, target, now))
                    change.events.append(self._status_event(doc, target))
            if tracker != (doc.get("tracker") or {}):
                change.set["tracker"] = tracker
            return change

        return await self._change(None, request_id, act), fresh_count

    async def tracker_pushed(self, request_id: str, message_ids: list[str]) -> None:
        """These messages are in the tracker now: no more to push."""

        def act(doc: Doc, role: str) -> Change:
            done = [m for m in message_ids if m in (doc.get("tracker_out") or [])]
            return Change(pull={"tracker_out": done}) if done else Change()

        await self._change(None, request_id, act)

    # files

    async def attach(self, person_id: str, request_id: str, *, name: str, body: AsyncIterator[bytes]) -> Doc:
        doc, _ = await self._visible(person_id, request_id)
        if doc["status"] == "closed":
            raise Conflict("this request is closed: open a new one")
        if len(doc.get("files", [])) >= FILES_PER_REQUEST:
            raise TooLarge(f"a request carries {FILES_PER_REQUEST} files at most")
        kept = await self.files.keep(
            body, name=name, limit=self.file_max_bytes, scanner=self.scanner, request=request_id
        )
        described = {**kept, "by": person_id, "at": datetime.now(UTC)}

        def act(current: Doc, role: str) -> Change:
            if len(current.get("files", [])) >= FILES_PER_REQUEST:
                raise TooLarge(f"a request carries {FILES_PER_REQUEST} files at most")
            return Change(add={"files": [described]})

        try:
            await self._change(person_id, request_id, act)
        except Exception:
            await self.files.forget(described)
            raise
        return described

    async def file(self, person_id: str, request_id: str, file_id: str) -> tuple[Doc, AsyncIterator[bytes]]:
        doc, _ = await self._visible(person_id, request_id)
        meta = next((f for f in doc.get("files", []) if f["id"] == file_id), None)
        if meta is None:
            raise NotFound(f"no file {file_id} in this request")
        return meta, self.files.read({"_id": file_id, "chunks": meta["chunks"]})

    # the clocks (housekeeping)

    async def look_overdue(self, *, at_most: int = 100) -> int:
        """Requests past their level's service level, told once per level and clock to who takes them — `at_most` a
        round (a minute): a morning when hundreds pass their level at once is told over a few minutes, not in one
        burst of writes that would slow the queues being read."""
        now = datetime.now(UTC)
        told = 0
        for summary in list(self.queue.active()):
            if told >= at_most:
                break
            clock = overdue(summary, self.desks.level(summary["desk"]), now)
            key = f"{summary['desk']}:{stamp(summary['level_since'])}:{clock}"
            if clock is None or key in summary.get("overdue_told", []):
                continue
            tell = (
                [summary["assignee"]]
                if summary.get("assignee")
                else (
                    await self.desks.referents(summary["uai"])
                    if summary["desk"] == SCHOOL
                    else list((self.desks.by_id.get(summary["desk"]) or {}).get("agents", []))
                )
            )

            def act(doc: Doc, role: str, key: str = key, clock: str = clock, tell: list[str] = tell) -> Change:
                if key in doc.get("overdue_told", []):
                    return Change()
                return Change(
                    add={"overdue_told": [key]},
                    events=[(REQUEST_OVERDUE, pb.RequestOverdue(request=self._about(doc), clock=clock, tell=tell))],
                )

            await self._change(None, summary["_id"], act)
            told += 1
        return told

    async def close_resolved(self) -> int:
        """Resolved requests nobody reopened within `reopen_days`, closed."""
        limit = datetime.now(UTC) - timedelta(days=self.reopen_days)
        closed = 0
        for summary in list(self.queue.resolved()):
            if summary.get("resolved_at") and summary["resolved_at"] < limit:

                def act(doc: Doc, role: str) -> Change:
                    if doc["status"] != "resolved":
                        return Change()
                    return Change(set=self._status(doc, "closed", datetime.now(UTC)))

                await self._change(None, summary["_id"], act)
                closed += 1
        return closed

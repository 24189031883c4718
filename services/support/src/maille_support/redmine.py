"""A desk's own tracker: Redmine, through its REST API.

A request sent up to a desk connected to Redmine becomes an issue of the desk's project (its tracker, the school's UAI
in a custom field, the request's id in another); what the person and the referents write after goes to the issue as
notes; the issue's public comments and its resolution come back to the request. Redmine calls nobody, so each desk's
project is asked what changed since the last `updated_on` seen (the cursor, kept per desk; issues updated in the same
second as the cursor are read again and their comments dropped by id).

Nothing is made twice when a call fails half way: before creating an issue the project is searched for one carrying
the request's id (a crash after Redmine made it and before it was noted here finds it); a note carries the message's
id (`[maille:<id>]`) and is not added when the issue's journal already holds it; a comment comes back once, its id
being the journal's."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import datetime
from typing import Any

import httpx

from maille_support.desks import Desks
from maille_support.queue import Queue
from maille_support.repository import SupportRepository
from maille_support.requests import Requests

log = logging.getLogger("maille.support.redmine")
Doc = dict[str, Any]
PAGE = 100
RESOLVED_WORDS = ("résolu", "resolu", "resolved")


class RedmineError(RuntimeError):
    """Redmine refused or did not answer: the work is left for the next round."""


class Redmine:
    """One Redmine, as one user of it (the desk's API key)."""

    def __init__(self, url: str, key: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None):
        self.client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"X-Redmine-API-Key": key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RedmineError(f"{method} {path}: {type(exc).__name__}") from exc
        if answer.status_code >= 400:
            raise RedmineError(f"{method} {path}: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json() if answer.content.strip() else None

    async def find(self, project: str, field_id: int, reference: str) -> int | None:
        found = await self._call(
            "GET",
            "/issues.json",
            params={"project_id": project, "status_id": "*", f"cf_{field_id}": reference, "limit": 2},
        )
        issues = found.get("issues", [])
        return int(issues[0]["id"]) if issues else None

    async def create(self, issue: Doc) -> int:
        made = await self._call("POST", "/issues.json", json={"issue": issue})
        return int(made["issue"]["id"])

    async def issue(self, issue_id: int) -> Doc:
        return dict((await self._call("GET", f"/issues/{issue_id}.json", params={"include": "journals"}))["issue"])

    async def note(self, issue_id: int, notes: str) -> None:
        await self._call("PUT", f"/issues/{issue_id}.json", json={"issue": {"notes": notes}})

    async def updated(self, project: str, since: str | None) -> list[Doc]:
        """The project's issues updated at or after `since`, oldest first."""
        params: dict[str, Any] = {"project_id": project, "status_id": "*", "sort": "updated_on", "limit": PAGE}
        if since:
            params["updated_on"] = f">={since}"
        issues: list[Doc] = []
        offset = 0
        while True:
            page = await self._call("GET", "/issues.json", params={**params, "offset": offset})
            issues += page.get("issues", [])
            offset += PAGE
            if offset >= int(page.get("total_count", 0)) or not page.get("issues"):
                return issues

    async def statuses(self) -> dict[int, Doc]:
        return {int(s["id"]): s for s in (await self._call("GET", "/issue_statuses.json"))["issue_statuses"]}


class _Turn:
    """The pushes of one request, one after the other."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting = 0


class Trackers:
    """The requests' trip to the desks' Redmine and back."""

    def __init__(
        self,
        repository: SupportRepository,
        requests: Requests,
        queue: Queue,
        desks: Desks,
        *,
        public_url: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.repository = repository
        self.requests = requests
        self.queue = queue
        self.desks = desks
        self.public_url = public_url.rstrip("/")
        self.timeout = timeout
        self.transport = transport
        # One push of a request at a time: two at once (the escalation's and the periodic one, or two replicas')
        # would both read the issue before either noted a message, and note it twice. In this process they take
        # turns; across replicas, one holds a lease on the request in the docstore (`pushes`) while it pushes.
        self._pushing: dict[str, _Turn] = {}
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = max(60.0, timeout * 8)  # past any push's calls, each with its deadline

    def _client(self, desk: Doc) -> Redmine:
        return Redmine(
            desk["redmine"]["url"], self.desks.redmine_key(desk), timeout=self.timeout, transport=self.transport
        )

    async def escalated(self, doc: Doc, desk: Doc) -> None:
        """At once when a request reaches the desk (what fails is done again by `push`)."""
        try:
            await self._push_one(doc["_id"], desk)
        except RedmineError as exc:
            log.warning("request %s not yet in %s's Redmine: %s", doc["_id"], desk["_id"], exc)

    async def push(self) -> int:
        """Each request waiting for its issue, or with messages not yet in it."""
        done = 0
        await self.desks.fresh()
        for summary in list(self.queue.items.values()):
            tracker = summary.get("tracker")
            if not tracker or (tracker.get("issue") and not summary.get("tracker_out")):
                continue
            desk = self.desks.by_id.get(tracker["desk"])
            if desk is None or not desk.get("redmine"):
                continue
            try:
                await self._push_one(summary["_id"], desk)
                done += 1
            except RedmineError as exc:
                log.warning("request %s not yet in %s's Redmine: %s", summary["_id"], desk["_id"], exc)
        return done

    async def _push_one(self, request_id: str, desk: Doc) -> None:
        turn = self._pushing.setdefault(request_id, _Turn())
        turn.waiting += 1
        try:
            async with turn.lock:
                if not await self.repository.take_push(request_id, self.holder, self.lease_seconds):
                    log.info("request %s is being taken to its tracker by another replica", request_id)
                    return  # what it leaves out, the next periodic push takes
                try:
                    await self._push_locked(request_id, desk)
                finally:
                    await self.repository.drop_push(request_id, self.holder)
        finally:
            turn.waiting -= 1
            if not turn.waiting:  # nobody else wants it: forgotten (the map holds only pushes under way)
                del self._pushing[request_id]

    async def _push_locked(self, request_id: str, desk: Doc) -> None:
        doc = await self.repository.request(request_id)
        if doc is None or not doc.get("tracker"):
            return
        config = desk["redmine"]
        redmine = self._client(desk)
        try:
            issue = doc["tracker"].get("issue")
            if not issue:
                issue = await redmine.find(config["project"], int(config["reference_field"]), request_id)
                if issue is None:
                    issue = await redmine.create(self._issue(doc, config))
                    log.info("request %s is issue %s of %s's Redmine", request_id, issue, desk["_id"])
                await self.repository.track(desk["_id"], issue, request_id)
                doc, _ = await self.requests.from_tracker(request_id, [], issue=issue)
            waiting = doc.get("tracker_out") or []
            if waiting:
                journals = (await redmine.issue(issue)).get("journals", [])
                there = "\n".join(j.get("notes") or "" for j in journals)
                messages = await self.repository.messages(waiting)
                for message_id in waiting:
                    message = messages.get(message_id)
                    if message is not None and f"[maille:{message_id}]" not in there:
                        who = message.get("author_name") or "?"
                        said = "la personne" if message.get("role") == "author" else "le référent"
                        await redmine.note(issue, f"{message['text']}\n\n— {who} ({said}) [maille:{message_id}]")
                await self.requests.tracker_pushed(request_id, waiting)
        finally:
            await redmine.close()

    def _issue(self, doc: Doc, config: Doc) -> Doc:
        context = doc.get("context") or {}
        lines = [
            doc["description"],
            "",
            f"Établissement : {doc.get('school_name') or ''} ({doc['uai']})",
            f"Demandeur : {doc.get('author_name') or ''} — {doc.get('profile') or ''}",
            f"Demande Maille : {self.public_url}/aide/demandes/{doc['_id']}",
        ]
        if context.get("page"):
            lines.append(f"Page : {context['page']}")
        if context.get("browser"):
            lines.append(f"Navigateur : {context['browser']}")
        if context.get("failed_requests"):
            lines.append(f"Appels en échec : {', '.join(context['failed_requests'])}")
        issue: Doc = {
            "project_id": config["project"],
            "subject": f"[ENT] {doc['subject']}"[:255],
            "description": "\n".join(lines),
            "custom_fields": [
                {"id": int(config["reference_field"]), "value": doc["_id"]},
                *([{"id": int(config["uai_field"]), "value": doc["uai"]}] if config.get("uai_field") else []),
            ],
        }
        if config.get("tracker_id"):
            issue["tracker_id"] = int(config["tracker_id"])
        return issue

    async def pull(self) -> int:
        """What each desk's Redmine says changed: public comments and resolutions, back to the requests."""
        told = 0
        for desk in list((await self.desks.fresh()).values()):
            if not desk.get("redmine"):
                continue
            try:
                told += await self._pull_desk(desk)
            except RedmineError as exc:
                log.warning("%s's Redmine not read: %s", desk["_id"], exc)
        return told

    async def _pull_desk(self, desk: Doc) -> int:
        redmine = self._client(desk)
        told = 0
        try:
            cursor = await self.repository.cursor(desk["_id"])
            issues = await redmine.updated(desk["redmine"]["project"], cursor.get("updated_on"))
            if not issues:
                return 0
            known = await self.repository.tracked(desk["_id"], [int(i["id"]) for i in issues])
            statuses: dict[int, Doc] | None = None
            for summary in issues:
                request_id = known.get(int(summary["id"]))
                if request_id is None:
                    continue
                issue = await redmine.issue(int(summary["id"]))
                replies = [
                    {
                        "_id": f"rm-{desk['_id']}-{journal['id']}",
                        "at": _time(journal["created_on"]),
                        "author": "",
                        "author_name": (journal.get("user") or {}).get("name", ""),
                        "role": "tracker",
                        "text": journal["notes"],
                        "internal": False,
                    }
                    for journal in issue.get("journals", [])
                    if (journal.get("notes") or "").strip()
                    and not journal.get("private_notes")
                    and "[maille:" not in journal["notes"]
                ]
                if statuses is None:
                    statuses = await redmine.statuses()
                state: Doc = statuses.get(int(issue["status"]["id"])) or issue["status"]
                name = str(state.get("name", "")).lower()
                meaning = "resolved" if state.get("is_closed") or any(w in name for w in RESOLVED_WORDS) else None
                _, fresh = await self.requests.from_tracker(
                    request_id, replies, status=(int(issue["status"]["id"]), meaning)
                )
                told += fresh
            await self.repository.set_cursor(desk["_id"], {"updated_on": max(i["updated_on"] for i in issues)})
        finally:
            await redmine.close()
        return told


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))

"""News (actualités): items a school, a class or group, or a circonscription publishes to its people.

Who may publish where is read from the directory at each step (the timeline's copy, kept by identity's events): the
direction (National_DIR) and the "compte école" accounts an operator named for their school; a teacher or
documentalist for the classes and groups they teach; a circonscription's advisors for its schools. A person who left
the school in the night's import may no longer publish there the next morning.

An item is a draft, then published at once or at a time (`scheduled`), until it expires (hidden from then on) or its
publisher withdraws it. Published, it reaches the persons of its audience — narrowed to some profiles when the
publisher says so (a class's parents only) — each told by a notification (their feed, and e-mail as they chose), and
it is pinned on its audience's news page. Who it reached is kept by profile, so that the publisher reads how many of
each have read it ("lue par 87 % des parents de la 6e A"). Comments, when the publisher opens them, are shown once
the publisher approves them. Images and documents are kept as every service keeps files (`maille_kit.files`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from maille_kit.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from maille_kit.files import DocstoreFiles, Scanner
from maille_timeline.directory import profiles_of
from maille_timeline.notifications import Notifications
from maille_timeline.repository import FILE_CHUNKS, FILES, TimelineRepository

Doc = dict[str, Any]
PUPIL, PARENT, TEACHER, DOCUMENTALIST, DIRECTION = (
    "National_ELV",
    "National_TUT",
    "National_ENS",
    "National_DOC",
    "National_DIR",
)
SCOPES = ("school", "group", "circonscription")
EDITABLE = ("draft", "scheduled")
FILES_PER_ITEM = 10


def new_id(prefix: str) -> str:
    """Ids that sort by creation time: milliseconds, then randomness."""
    return f"{prefix}{int(datetime.now(UTC).timestamp() * 1000):013d}{os.urandom(5).hex()}"


def board_of(audience: Doc) -> str:
    return f"{audience['scope']}:{audience['id']}"


def directs(person: Doc, uai: str) -> bool:
    """Whether the person heads the school: its direction profile there, or its principal's function (DIR)."""
    if DIRECTION in person.get("schools", {}).get(uai, []):
        return True
    structures = [sid for sid, of in (person.get("structures") or {}).items() if of == uai]
    return any(f"{sid}$DIR" in person.get("functions", []) for sid in structures)


def group_uai(person: Doc, group_id: str) -> str | None:
    """The UAI of a group's school, as the person's profiles say (group ids begin with their structure's id)."""
    return (person.get("structures") or {}).get(group_id.split("$", 1)[0])


class News:
    def __init__(
        self,
        repository: TimelineRepository,
        notifications: Notifications,
        *,
        file_max_bytes: int,
        scanner: Scanner | None = None,
    ) -> None:
        self.repository = repository
        self.notifications = notifications
        self.files = DocstoreFiles(repository.docstore, files=FILES, chunks=FILE_CHUNKS)
        self.file_max_bytes = file_max_bytes
        self.scanner = scanner

    # who may publish where

    async def _person(self, person_id: str) -> Doc:
        person = await self.repository.person(person_id)
        if person is None:
            raise Forbidden("the directory does not know you (yet): only its persons publish news")
        return person

    async def _school_of(self, person: Doc, audience: Doc) -> str | None:
        """The UAI of the school an audience of one school belongs to (a group's: from its structure)."""
        if audience["scope"] == "school":
            return str(audience["id"])
        return group_uai(person, audience["id"]) or await self.repository.uai_of_structure(
            audience["id"].split("$", 1)[0]
        )

    async def _may_publish(self, person: Doc, audience: Doc) -> bool:
        scope, target = audience["scope"], audience["id"]
        if scope == "circonscription":
            circo = await self.repository.circonscription(target)
            return circo is not None and person["_id"] in circo.get("advisors", [])
        uai = await self._school_of(person, audience)
        if uai is None:
            return False
        if person["_id"] in (await self.repository.school_accounts([uai]))[uai]:
            return True  # the school's "compte école": the whole school, its classes and groups
        codes = set(person.get("schools", {}).get(uai, []))
        if directs(person, uai):
            return True
        return scope == "group" and target in person.get("groups", []) and bool(codes & {TEACHER, DOCUMENTALIST})

    async def targets(self, person_id: str) -> list[Doc]:
        """Where the person may publish: their schools (direction, compte école), their classes and groups (teaching),
        their circonscriptions (advisors) — each with its name."""
        person = await self._person(person_id)
        names = await self.repository.school_names()
        found: list[Doc] = []
        schools = person.get("schools", {})
        speaks_for = set(await self.repository.accounts_of(person_id))
        for uai in sorted(set(schools) | speaks_for):
            if directs(person, uai) or uai in speaks_for:
                found.append({"scope": "school", "id": uai, "name": names.get(uai, uai)})
        for group in sorted(person.get("groups", [])):
            if await self._may_publish(person, {"scope": "group", "id": group}):
                uai = group_uai(person, group) or ""
                found.append({"scope": "group", "id": group, "name": group.split("$", 1)[-1], "school": uai})
        for circo in await self.repository.circonscriptions():
            if person_id in circo.get("advisors", []):
                found.append({"scope": "circonscription", "id": circo["_id"], "name": circo["name"]})
        return found

    async def _check_audience(self, person: Doc, audience: Doc) -> None:
        if audience.get("scope") not in SCOPES:
            raise Invalid(
                f"an audience is a school, a group or a circonscription, not {audience.get('scope')!r}",
                field="audience.scope",
            )
        if not await self._may_publish(person, audience):
            raise Forbidden(
                f"you may not publish to {audience['scope']} {audience['id']} (the directory says who may: the "
                "direction or the school's account for a school, its teachers for a class or group, its advisors for a "
                "circonscription)"
            )

    # drafts

    async def create(self, author: str, fields: Doc) -> Doc:
        person = await self._person(author)
        await self._check_audience(person, fields["audience"])
        now = datetime.now(UTC)
        doc = {
            "_id": new_id("n"),
            "tenant": person.get("tenant", ""),
            "author": author,
            "author_name": f"{person.get('first_name', '')} {person.get('last_name', '')}".strip(),
            "state": "draft",
            "created": now,
            "updated": now,
            "files": [],
            **fields,
        }
        _check_times(doc)
        await self.repository.put_news(doc)
        return doc

    async def _own(self, author: str, news_id: str) -> Doc:
        doc = await self.repository.news(news_id)
        if doc is None or doc["author"] != author:
            raise NotFound(f"no news item {news_id} of yours")
        return doc

    async def update(self, author: str, news_id: str, fields: Doc) -> Doc:
        doc = await self._own(author, news_id)
        if doc["state"] not in EDITABLE:
            raise Conflict("a published news item is not changed: withdraw it and publish another")
        if "audience" in fields:
            await self._check_audience(await self._person(author), fields["audience"])
        changed = {**doc, **fields, "updated": datetime.now(UTC)}
        _check_times(changed)
        if not await self.repository.set_news(news_id, {**fields, "updated": changed["updated"]}, state=doc["state"]):
            raise Conflict("the news item changed meanwhile (published?): read it again")
        return changed

    async def remove(self, author: str, news_id: str) -> str:
        """A draft deleted; a published item withdrawn (off its page, its notifications lead nowhere)."""
        doc = await self._own(author, news_id)
        if doc["state"] in EDITABLE:
            for meta in doc.get("files", []):
                await self.files.delete({"_id": meta["id"], "chunks": meta.get("chunks", 0)})
            await self.repository.delete_news(news_id)
            return "deleted"
        await self.repository.set_news(news_id, {"state": "withdrawn", "withdrawn": datetime.now(UTC)})
        await self.repository.unpin([board_of(doc["audience"])], news_id)
        return "withdrawn"

    async def mine(self, author: str) -> list[Doc]:
        return sorted(await self.repository.drafts_of(author), key=lambda d: d["_id"], reverse=True)

    # files

    async def attach(self, author: str, news_id: str, *, name: str, body: AsyncIterator[bytes]) -> Doc:
        doc = await self._own(author, news_id)
        if doc["state"] not in EDITABLE:
            raise Conflict("files are added before the news item is published")
        if len(doc.get("files", [])) >= FILES_PER_ITEM:
            raise TooLarge(f"a news item carries {FILES_PER_ITEM} files at most")
        described = await self.files.keep(
            body, name=name, limit=self.file_max_bytes, scanner=self.scanner, news=news_id
        )
        files = [*doc.get("files", []), described]
        if not await self.repository.set_news(news_id, {"files": files}, state=doc["state"]):
            await self.files.forget(described)
            raise Conflict("the news item changed meanwhile (published?): read it again")
        return described

    async def file(self, person_id: str, news_id: str, file_id: str) -> tuple[Doc, AsyncIterator[bytes]]:
        doc = await self._visible(person_id, news_id)
        meta = next((f for f in doc.get("files", []) if f["id"] == file_id), None)
        if meta is None:
            raise NotFound(f"no file {file_id} in this news item")
        return meta, self.files.read({"_id": file_id, "chunks": meta["chunks"]})

    # publishing

    async def publish(self, author: str, news_id: str, at: datetime | None) -> Doc:
        """Now (`at` None or past), or at `at`: the publisher's right checked now, and again when the time comes."""
        doc = await self._own(author, news_id)
        if doc["state"] not in EDITABLE:
            raise Conflict(f"this news item is {doc['state']}")
        await self._check_audience(await self._person(author), doc["audience"])
        now = datetime.now(UTC)
        if at is not None and at > now:
            if doc.get("expires_at") and doc["expires_at"] <= at:
                raise Invalid("the news item would expire before it is published", field="at")
            await self.repository.set_news(news_id, {"state": "scheduled", "publish_at": at}, state=doc["state"])
            return {**doc, "state": "scheduled", "publish_at": at}
        return await self._publish(doc, now)

    async def publish_due(self) -> int:
        """The scheduled items whose time has come, published (their publisher's right checked again)."""
        done = 0
        for doc in await self.repository.due_news(datetime.now(UTC)):
            person = await self.repository.person(doc["author"])
            if person is None or not await self._may_publish(person, doc["audience"]):
                await self.repository.set_news(doc["_id"], {"state": "draft", "refused": "no longer allowed"})
                continue
            await self._publish(doc, doc["publish_at"])
            done += 1
        return done

    async def _publish(self, doc: Doc, at: datetime) -> Doc:
        known: dict[str, Doc] = {}
        reached = await self.audience_of(doc["audience"], known)
        everyone = sorted({p for ids in reached.values() for p in ids})
        changes = {"state": "published", "published_at": at, "reached": reached}
        if not await self.repository.set_news(doc["_id"], changes, state=doc["state"]):
            raise Conflict("the news item changed meanwhile: read it again")
        await self.repository.pin([board_of(doc["audience"])], doc["_id"])
        body = " ".join(doc.get("body", "").split())
        await self.notifications.notify(
            source=f"news:{doc['_id']}",
            at=at,
            kind="news",
            data={"id": doc["_id"], "title": doc["title"], "summary": body},
            persons=[p for p in everyone if p != doc["author"]],
            tenant=doc.get("tenant", ""),
            known=known,
        )
        return {**doc, **changes}

    async def audience_of(self, audience: Doc, known: dict[str, Doc] | None = None) -> dict[str, list[str]]:
        """Who an audience is now, by profile: {profile code: person ids} (narrowed to its `profiles` when given);
        the persons' documents read are left in `known`."""
        known = {} if known is None else known
        scope, target = audience["scope"], audience["id"]
        wanted = set(audience.get("profiles") or [])
        if scope == "circonscription":
            circo = await self.repository.circonscription(target)
            if circo is None:
                raise NotFound(f"no circonscription {target}")
            keys = {f"school:{uai}": uai for uai in circo.get("schools", [])}
        elif scope == "school":
            keys = {f"school:{target}": target}
        else:
            keys = {f"group:{target}": ""}
        members = await self.repository.members(list(keys))
        reached: dict[str, set[str]] = {}
        pupils: list[Doc] = []
        for key, ids in members.items():
            people = await self.repository.persons_by_id(ids)
            known.update(people)
            for person in people.values():
                uai = keys[key] or group_uai(person, target) or ""
                for code in person.get("schools", {}).get(uai, []):
                    reached.setdefault(code, set()).add(person["_id"])
                    if code == PUPIL and scope == "group":
                        pupils.append(person)
        if scope == "group":  # a class's parents: its pupils' own
            parents = await self.repository.persons_by_id(
                sorted({p for pupil in pupils for p in pupil.get("parents", [])})
            )
            known.update(parents)
            for parent in parents.values():
                if PARENT in profiles_of(parent):
                    reached.setdefault(PARENT, set()).add(parent["_id"])
        return {code: sorted(ids) for code, ids in sorted(reached.items()) if not wanted or code in wanted}

    # reading

    async def _visible(self, person_id: str, news_id: str) -> Doc:
        doc = await self.repository.news(news_id)
        if doc is None:
            raise NotFound(f"no news item {news_id}")
        if doc["author"] == person_id:
            return doc
        reached = {p for ids in (doc.get("reached") or {}).values() for p in ids}
        if doc["state"] != "published" or person_id not in reached:
            raise NotFound(f"no news item {news_id} for you")
        if doc.get("expires_at") and doc["expires_at"] <= datetime.now(UTC):
            raise NotFound("this news item is no longer online (it has expired)")
        return doc

    async def read(self, person_id: str, news_id: str) -> Doc:
        """A news item as its reader sees it (read from now on; its notification too), with the approved comments —
        and, for its publisher, the comments waiting and the read counts."""
        doc = await self._visible(person_id, news_id)
        if doc["author"] != person_id:
            await self.repository.mark_news_read(news_id, person_id)
        comments = await self.repository.comments(news_id) if doc.get("comments") else []
        shown = [{**c, "id": c["_id"]} for c in comments if c.get("approved") or doc["author"] == person_id]
        out = {**doc, "comments_list": shown}
        if doc["author"] == person_id:
            out["stats"] = await self.stats(person_id, news_id)
        return out

    async def board(self, person_id: str, key: str, *, before: str | None, size: int) -> tuple[list[Doc], str | None]:
        """A news page (`school:<UAI>`, `group:<id>`, `circonscription:<code>`): its items the person may read, newest
        first."""
        ids = sorted(await self.repository.board(key), reverse=True)
        if before:
            ids = [i for i in ids if i < before]
        found: list[Doc] = []
        now = datetime.now(UTC)
        readers_cache: dict[str, set[str]] = {}
        for start in range(0, len(ids), 100):
            docs = await self.repository.news_by_id(ids[start : start + 100])
            for i in ids[start : start + 100]:
                doc = docs.get(i)
                if doc is None or doc["state"] != "published" or (doc.get("expires_at") and doc["expires_at"] <= now):
                    continue
                reached = {p for p in (doc.get("reached") or {}).values() for p in p}
                if person_id != doc["author"] and person_id not in reached:
                    continue
                readers_cache[i] = await self.repository.news_readers(i)
                found.append({**doc, "read": person_id in readers_cache[i] or person_id == doc["author"]})
                if len(found) > size:
                    break
            if len(found) > size:
                break
        page = found[:size]
        return page, (page[-1]["_id"] if len(found) > size else None)

    async def boards_of(self, person_id: str) -> list[Doc]:
        """The news pages a person reads: their schools, their classes and groups (a parent: their children's), their
        schools' circonscriptions."""
        person = await self._person(person_id)
        names = await self.repository.school_names()
        schools = sorted(person.get("schools", {}))
        found = [{"key": f"school:{uai}", "scope": "school", "id": uai, "name": names.get(uai, uai)} for uai in schools]
        children = await self.repository.persons_by_id(person.get("children", []))
        groups = {g: group_uai(person, g) for g in person.get("groups", [])}
        for child in children.values():  # a parent reads their children's classes' pages
            groups |= {g: group_uai(child, g) for g in child.get("groups", []) if g not in groups}
        found += [
            {"key": f"group:{g}", "scope": "group", "id": g, "name": g.split("$", 1)[-1], "school": uai}
            for g, uai in sorted(groups.items())
        ]
        for circo in await self.repository.circonscriptions():
            if set(circo.get("schools", [])) & set(schools) or person_id in circo.get("advisors", []):
                found.append(
                    {
                        "key": f"circonscription:{circo['_id']}",
                        "scope": "circonscription",
                        "id": circo["_id"],
                        "name": circo["name"],
                    }
                )
        return found

    async def stats(self, person_id: str, news_id: str) -> list[Doc]:
        """For its publisher: by profile of its audience, how many it reached and how many have read it."""
        doc = await self._own(person_id, news_id)
        readers = await self.repository.news_readers(news_id)
        return [
            {"profile": code, "reached": len(ids), "read": len(readers & set(ids))}
            for code, ids in (doc.get("reached") or {}).items()
        ]

    # comments

    async def comment(self, person_id: str, news_id: str, text: str) -> Doc:
        doc = await self._visible(person_id, news_id)
        if not doc.get("comments"):
            raise Forbidden("comments are closed on this news item")
        person = await self._person(person_id)
        comment = {
            "_id": new_id("c"),
            "news": news_id,
            "author": person_id,
            "author_name": f"{person.get('first_name', '')} {person.get('last_name', '')}".strip(),
            "text": text,
            "at": datetime.now(UTC),
            "approved": person_id == doc["author"],
        }
        await self.repository.add_comment(comment)
        return comment

    async def moderate(self, person_id: str, news_id: str, comment_id: str, approve: bool) -> None:
        await self._own(person_id, news_id)
        done = (
            await self.repository.set_comment(comment_id, news_id, {"approved": True})
            if approve
            else await self.repository.delete_comment(comment_id, news_id)
        )
        if not done:
            raise NotFound(f"no comment {comment_id} on this news item")

    # what operators declare

    async def declare_circonscription(
        self, code: str, name: str, schools: Sequence[str], advisors: Sequence[str]
    ) -> Doc:
        doc = {"_id": code, "name": name, "schools": sorted(set(schools)), "advisors": sorted(set(advisors))}
        await self.repository.put_circonscription(doc)
        return doc


def _check_times(doc: Doc) -> None:
    expires = doc.get("expires_at")
    if expires is not None and expires <= datetime.now(UTC):
        raise Invalid("the expiry is in the past", field="expires_at")

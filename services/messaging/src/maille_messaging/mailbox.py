"""A person's mailbox: folders and their unread counts, pages of a folder, read marks, moves, the trash,
conversations, search, the RGPD export and erasure, and the trash's retention sweep."""

from __future__ import annotations

import asyncio
import json
import os
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from maille_kit.errors import Conflict, Invalid, NotFound
from maille_kit.text import folded
from maille_messaging.attachments import AttachmentStore
from maille_messaging.bodies import query_words, sanitise
from maille_messaging.repository import Doc, MailRepository, is_month, month_of
from maille_messaging.schemas import (
    FOLDER_NAMES,
    SYSTEM_FOLDERS,
    Attachment,
    Changed,
    Correspondent,
    Entry,
    Folder,
    Message,
    Page,
    Recipient,
    message_time,
)

MAX_DEPTH, MAX_PER_LEVEL = 3, 50
MAX_LISTS = 50
SCAN_CHUNK = 100


def message_of(copy: Doc, message: Doc, *, reader: str) -> Message:
    own = message["sender"]["id"] == reader
    return Message(
        id=message["_id"],
        thread=message["thread"],
        state=message["state"],
        folder=copy["folder"],
        unread=copy["unread"],
        sender=Correspondent(**message["sender"]),
        to=[Recipient(**r) for r in message.get("to", [])],
        cc=[Recipient(**r) for r in message.get("cc", [])],
        bcc=[Recipient(**r) for r in message.get("bcc", [])] if own else [],
        subject=message.get("subject", ""),
        body=sanitise(message.get("body", "")),  # kept before today's rules too
        attachments=[Attachment(**a) for a in message.get("attachments", [])],
        in_reply_to=message.get("parent"),
        at=message.get("sent_at") or message_time(message["_id"]),
        send_at=message.get("send_at"),
        version=message.get("version", 1) if message["state"] == "draft" and own else None,
    )


class Mailbox:
    """The mailboxes of one service replica's persons (everything read and written by key, see repository.py)."""

    def __init__(self, repository: MailRepository, store: AttachmentStore, *, summaries: int = 100_000) -> None:
        self.repo = repository
        self.store = store
        # What listings show of sent messages, by message id: it never changes once sent, so a replica keeps the
        # most recent ones and a page is then its month indexes alone (holders, folders and read marks come from them).
        self.summaries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.summaries_max = summaries
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, person: str) -> asyncio.Lock:
        """One change at a time to a person's copies in this replica (a change reads the copy, then writes it)."""
        found = self._locks.get(person)
        if found is None:
            found = self._locks[person] = asyncio.Lock()
        return found

    # folders
    async def folders(self, person: str) -> list[Folder]:
        mailbox = await self.repo.mailbox(person) or {}
        totals, unread = await self._counts(person, mailbox)
        found = [
            Folder(id=f, name=FOLDER_NAMES[f], system=True, total=totals.get(f, 0), unread=unread.get(f, 0))
            for f in SYSTEM_FOLDERS
        ]
        user = mailbox.get("folders", {})
        for fid, folder in sorted(user.items(), key=lambda item: (folded(item[1]["name"]), item[0])):
            found.append(
                Folder(
                    id=fid,
                    name=folder["name"],
                    parent=folder.get("parent"),
                    system=False,
                    total=totals.get(fid, 0),
                    unread=unread.get(fid, 0),
                )
            )
        return found

    async def segments(self, person: str, mailbox: Doc) -> list[str]:
        """Every index segment of the person's: those noted in their mailbox, and the months' own segments made
        since the last one noted (a delivery does not note them) — looked for by key, then noted."""
        noted = list(mailbox.get("months", []))
        months = [s for s in noted if is_month(s)]
        start = max(months) if months else await self.repo.epoch()
        wanted = [m for m in months_between(start, datetime.now(UTC).strftime("%Y%m")) if m not in noted]
        if not wanted:
            return noted
        found = await self.repo.months(person, wanted)
        if found:
            await self.repo.note_months(
                [f"{person}:{m}" for m in found], tenants={person: next(iter(found.values()))["tenant"]}
            )
        return noted + sorted(found)

    async def _counts(self, person: str, mailbox: Doc) -> tuple[dict[str, int], dict[str, int]]:
        months = await self.repo.months(person, await self.segments(person, mailbox))
        totals: dict[str, int] = {}
        unread: dict[str, int] = {}
        for doc in months.values():
            for folder, ids in doc.get("folders", {}).items():
                totals[folder] = totals.get(folder, 0) + len(ids)
            for folder, ids in doc.get("unread", {}).items():
                unread[folder] = unread.get(folder, 0) + len(ids)
        return totals, unread

    async def create_folder(self, person: str, *, tenant: str, name: str, parent: str | None) -> Folder:
        async with self.lock(person):
            user = (await self.repo.mailbox(person) or {}).get("folders", {})
            if parent is not None:
                if parent not in user:
                    raise NotFound(f"you have no folder {parent}", field="parent")
                if _depth(user, parent) >= MAX_DEPTH:
                    raise Invalid(f"folders nest {MAX_DEPTH} deep at most", field="parent")
            siblings = [f for f in user.values() if f.get("parent") == parent]
            if len(siblings) >= MAX_PER_LEVEL:
                raise Invalid(f"a folder holds {MAX_PER_LEVEL} folders at most", field="parent")
            if any(folded(f["name"]) == folded(name) for f in siblings):
                raise Conflict(f"a folder named {name!r} is already there", field="name")
            fid = "f" + os.urandom(4).hex()
            await self.repo.update_mailbox(
                person, {"$set": {f"folders.{fid}": {"name": name, "parent": parent}}}, tenant=tenant
            )
        return Folder(id=fid, name=name, parent=parent, system=False, total=0, unread=0)

    async def rename_folder(self, person: str, fid: str, *, tenant: str, name: str) -> Folder:
        async with self.lock(person):
            user = await self._user_folders(person, fid)
            parent = user[fid].get("parent")
            if any(
                folded(f["name"]) == folded(name) and other != fid
                for other, f in user.items()
                if f.get("parent") == parent
            ):
                raise Conflict(f"a folder named {name!r} is already there", field="name")
            await self.repo.update_mailbox(person, {"$set": {f"folders.{fid}.name": name}}, tenant=tenant)
        return next(f for f in await self.folders(person) if f.id == fid)

    async def delete_folder(self, person: str, fid: str, *, tenant: str) -> None:
        async with self.lock(person):
            user = await self._user_folders(person, fid)
            if any(f.get("parent") == fid for f in user.values()):
                raise Conflict("the folder holds folders: delete or move them first")
            totals, _ = await self._counts(person, await self.repo.mailbox(person) or {})
            if totals.get(fid):
                raise Conflict(f"the folder holds {totals[fid]} messages: move them or put them in the trash first")
            await self.repo.update_mailbox(person, {"$unset": {f"folders.{fid}": ""}}, tenant=tenant)

    async def _user_folders(self, person: str, fid: str) -> dict[str, Doc]:
        user = (await self.repo.mailbox(person) or {}).get("folders", {})
        if fid not in user:
            raise NotFound(
                f"you have no folder {fid}" if fid not in SYSTEM_FOLDERS else f"{fid} is a system folder: it stays"
            )
        return user

    async def _check_folder(self, person: str, folder: str) -> None:
        if folder not in SYSTEM_FOLDERS and folder not in (await self.repo.mailbox(person) or {}).get("folders", {}):
            raise NotFound(f"you have no folder {folder}")

    # lists (a person's own groups of correspondents, checked against the rules at each send)
    async def lists(self, person: str) -> dict[str, Doc]:
        return (await self.repo.mailbox(person) or {}).get("lists", {})

    async def put_list(
        self, person: str, *, tenant: str, name: str, members: list[str], list_id: str | None = None
    ) -> tuple[str, Doc]:
        """Make a list (`list_id` None) or change one; 404 for a list one does not have, 422 past MAX_LISTS."""
        async with self.lock(person):
            lists = await self.lists(person)
            if list_id is None:
                if len(lists) >= MAX_LISTS:
                    raise Invalid(f"you may keep {MAX_LISTS} lists at most")
                list_id = "l" + os.urandom(4).hex()
            elif list_id not in lists:
                raise NotFound(f"you have no list {list_id}")
            item = {"name": " ".join(name.split()), "members": sorted(set(members))}
            await self.repo.update_mailbox(person, {"$set": {f"lists.{list_id}": item}}, tenant=tenant)
        return list_id, item

    async def delete_list(self, person: str, list_id: str, *, tenant: str) -> None:
        async with self.lock(person):
            if list_id not in await self.lists(person):
                raise NotFound(f"you have no list {list_id}")
            await self.repo.update_mailbox(person, {"$unset": {f"lists.{list_id}": ""}}, tenant=tenant)

    # pages
    async def page(self, person: str, folder: str, *, cursor: str | None, limit: int) -> Page:
        """A folder's messages, newest first, `limit` at a time; `cursor` (a message id) continues after it."""
        mailbox = await self.repo.mailbox(person) or {}
        if folder not in SYSTEM_FOLDERS and folder not in mailbox.get("folders", {}):
            raise NotFound(f"you have no folder {folder}")
        unread: set[str] = set()
        ids, more = await self._ids(
            person,
            mailbox,
            lambda doc: doc.get("folders", {}).get(folder, []),
            cursor=cursor,
            want=limit,
            seen=lambda doc: unread.update(doc.get("unread", {}).get(folder, [])),
        )
        lines = await self.lines(
            ids, keep=folder not in ("drafts", "scheduled")
        )  # a draft's line changes as it is written
        entries = [Entry(id=m, folder=folder, unread=m in unread, **lines[m]) for m in ids if m in lines]
        return Page(entries=entries, next=ids[-1] if more and ids else None)

    async def lines(self, ids: list[str], *, keep: bool = True) -> dict[str, dict[str, Any]]:
        """What listings show of these messages: from memory, else from the messages (then kept, once sent)."""
        found = {m: self.summaries[m] for m in ids if m in self.summaries} if keep else {}
        missing = [m for m in ids if m not in found]
        if missing:
            for m, message in (await self.repo.messages(missing, {"line": 1})).items():
                if "line" in message:
                    found[m] = message["line"]
                    if keep:
                        self.remember(m, message["line"])
        return found

    def remember(self, message_id: str, summary: dict[str, Any]) -> None:
        self.summaries[message_id] = summary
        self.summaries.move_to_end(message_id)
        while len(self.summaries) > self.summaries_max:
            self.summaries.popitem(last=False)

    async def _ids(
        self,
        person: str,
        mailbox: Doc,
        pick: Callable[[Doc], list[str]],
        *,
        cursor: str | None,
        want: int,
        seen: Callable[[Doc], None] | None = None,
    ) -> tuple[list[str], bool]:
        """The next `want` message ids newest first (and whether more follow), month by month (each month's index
        segments read together)."""
        segments: dict[str, list[str]] = {}
        for segment in await self.segments(person, mailbox):
            segments.setdefault(segment[:6], []).append(segment)
        months = sorted((m for m in segments if cursor is None or m <= month_of(cursor)), reverse=True)
        found: list[str] = []
        for start in range(0, len(months), 2):  # two months at a time: one is often not enough for a page
            docs = await self.repo.months(person, [s for m in months[start : start + 2] for s in segments[m]])
            for month in months[start : start + 2]:
                ids: list[str] = []
                for segment in segments[month]:
                    doc = docs.get(segment, {})
                    if seen is not None:
                        seen(doc)
                    ids.extend(pick(doc))
                found.extend(m for m in sorted(ids, reverse=True) if cursor is None or m < cursor)
            if len(found) > want:
                return found[:want], True
        return found, False

    # marks, moves, trash
    async def mark(self, person: str, ids: list[str], *, unread: bool) -> Changed:
        async with self.lock(person):
            copies = await self.repo.copies(person, ids)
            changed = 0
            for copy in copies.values():
                if copy["unread"] != unread:
                    await self.repo.change_copy(copy, unread=unread)
                    changed += 1
        return Changed(changed=changed, missing=[m for m in ids if m not in copies])

    async def move(self, person: str, ids: list[str], *, folder: str, tenant: str) -> Changed:
        if folder == "trash":
            return await self.trash(person, ids)
        if folder in ("sent", "drafts", "scheduled"):
            raise Invalid(f"messages cannot be moved into {folder}: it holds what you wrote", field="folder")
        await self._check_folder(person, folder)
        async with self.lock(person):
            copies = await self.repo.copies(person, ids)
            changed, missing = 0, [m for m in ids if m not in copies]
            for copy in copies.values():
                if copy["folder"] in ("drafts", "scheduled"):
                    missing.append(copy["message"])  # a draft or a message waiting to go is not filed
                elif copy["folder"] != folder:
                    await self.repo.change_copy(copy, folder=folder, unset=("folder_before_trash", "trashed_at"))
                    changed += 1
        return Changed(changed=changed, missing=missing)

    async def trash(
        self, person: str, ids: list[str], *, cancel_schedule: Callable[[str], Awaitable[object]] | None = None
    ) -> Changed:
        now = datetime.now(UTC)
        async with self.lock(person):
            copies = await self.repo.copies(person, ids)
            changed, trashed = 0, []
            for copy in copies.values():
                if copy["folder"] == "trash":
                    continue
                if copy["folder"] == "scheduled" and cancel_schedule is not None:
                    await cancel_schedule(copy["message"])
                await self.repo.change_copy(
                    copy, folder="trash", set_={"folder_before_trash": copy["folder"], "trashed_at": now}
                )
                trashed.append(f"{person}|{copy['message']}")
                changed += 1
            if trashed:
                await self.repo.trashed(now.strftime("d%Y%m%d"), trashed)
        return Changed(changed=changed, missing=[m for m in ids if m not in copies])

    async def restore(self, person: str, ids: list[str]) -> Changed:
        """Put back where they were what is in the trash (a folder gone since: the inbox)."""

        async def put_back(copy: Doc, user: Doc) -> None:
            back = copy.get("folder_before_trash") or "inbox"
            if back == "scheduled" or (back not in SYSTEM_FOLDERS and back not in user):
                back = "drafts" if back == "scheduled" else "inbox"  # a cancelled send comes back as a draft
            await self.repo.change_copy(copy, folder=back, unset=("folder_before_trash", "trashed_at"))

        return await self._from_trash(person, ids, put_back)

    async def delete(self, person: str, ids: list[str]) -> Changed:
        """Delete for good what is in the trash."""

        async def remove(copy: Doc, _: Doc) -> None:
            await self.repo.remove_copy(copy)
            await self.release(copy["message"])

        return await self._from_trash(person, ids, remove)

    async def _from_trash(self, person: str, ids: list[str], act: Callable[[Doc, Doc], Awaitable[None]]) -> Changed:
        """`act` on each of these copies in the trash (given the person's own folders); those not there, missing."""
        async with self.lock(person):
            user = (await self.repo.mailbox(person) or {}).get("folders", {})
            copies = await self.repo.copies(person, ids)
            changed, missing = 0, [m for m in ids if m not in copies]
            for copy in copies.values():
                if copy["folder"] != "trash":
                    missing.append(copy["message"])
                    continue
                await act(copy, user)
                changed += 1
        return Changed(changed=changed, missing=missing)

    async def release(self, message_id: str, holders: int = 1) -> None:
        """Copies of a message gone: once nobody holds it, the message and its attachments go too."""
        message = await self.repo.let_go(message_id, holders)
        if message is not None and message.get("holders", 0) <= 0:
            await self.drop_message(message)

    async def drop_message(self, message: Doc) -> None:
        freed = 0
        for attachment in message.get("attachments", []):
            meta = await self.repo.attachment(attachment["id"])
            if meta is not None:
                await self.store.delete(meta)
                freed += meta["size"]
        if freed:
            await self.repo.give_quota(message["sender"]["id"], freed)
        await self.repo.delete_message(message["_id"])

    # reading
    async def held(self, person: str, message_id: str) -> tuple[Doc, Doc]:
        """The person's copy of a message and the message; 404 when they hold none."""
        copy = await self.repo.copy(person, message_id)
        message = await self.repo.message(message_id) if copy is not None else None
        if copy is None or message is None:
            raise NotFound(f"there is no message {message_id} in your mailbox")
        return copy, message

    async def read(self, person: str, message_id: str) -> Message:
        copy, message = await self.held(person, message_id)
        return message_of(copy, message, reader=person)

    async def thread(self, person: str, thread: str) -> list[Message]:
        ids = await self.repo.thread(thread)
        copies = await self.repo.copies(person, ids)
        if not copies:
            raise NotFound(f"there is no conversation {thread} in your mailbox")
        messages = await self.repo.messages(list(copies))
        return [
            message_of(copies[m], messages[m], reader=person)
            for m in sorted(copies)
            if m in messages and copies[m]["folder"] != "trash"
        ]

    # search
    async def search(self, person: str, query: str, *, cursor: str | None, limit: int) -> Page:
        """Messages whose subject, body or correspondents hold every word (case and accents ignored), newest first."""
        wanted = query_words(query)
        if not wanted:
            raise Invalid("a search needs at least one word", field="q")
        mailbox = await self.repo.mailbox(person) or {}
        where: dict[str, str] = {}
        unread: set[str] = set()

        def note(doc: Doc) -> None:
            for folder, ids in doc.get("folders", {}).items():
                where.update(dict.fromkeys(ids, folder))
            for ids in doc.get("unread", {}).values():
                unread.update(ids)

        ids, _ = await self._ids(
            person,
            mailbox,
            lambda doc: [m for ids in doc.get("folders", {}).values() for m in ids],
            cursor=cursor,
            want=10**9,
            seen=note,
        )
        hits: list[Entry] = []
        for start in range(0, len(ids), SCAN_CHUNK):
            chunk = ids[start : start + SCAN_CHUNK]
            messages = await self.repo.messages(chunk, {"line": 1, "search_key": 1, "words": 1, "subject": 1})
            for m in chunk:
                message = messages.get(m)
                if message is None or "line" not in message:
                    continue
                key = message.get("search_key") or folded(message.get("subject", ""))
                left = [w for w in wanted if w not in key]
                words = message.get("words", [])
                if left and not all(any(b.startswith(w) for b in words) for w in left):
                    continue
                hits.append(Entry(id=m, folder=where[m], unread=m in unread, **message["line"]))
                if len(hits) == limit:
                    more = m != ids[-1]
                    return Page(entries=hits, next=m if more else None)
        return Page(entries=hits, next=None)

    # RGPD
    async def all_ids(self, person: str) -> tuple[Doc, list[str]]:
        mailbox = await self.repo.mailbox(person) or {}
        ids, _ = await self._ids(
            person,
            mailbox,
            lambda doc: [m for ids in doc.get("folders", {}).values() for m in ids],
            cursor=None,
            want=10**9,
        )
        return mailbox, ids

    async def export(self, person: str) -> AsyncIterator[bytes]:
        """The person's whole mailbox as one JSON document, written as it is read."""
        folders = await self.folders(person)
        mailbox, ids = await self.all_ids(person)
        head = {
            "person": person,
            "exported_at": datetime.now(UTC).isoformat(),
            "folders": [f.model_dump(mode="json") for f in folders],
            "lists": [{"id": k, **v} for k, v in mailbox.get("lists", {}).items()],
        }
        yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "messages": ['
        first = True
        for start in range(0, len(ids), SCAN_CHUNK):
            chunk = ids[start : start + SCAN_CHUNK]
            copies = await self.repo.copies(person, chunk)
            messages = await self.repo.messages(list(copies))
            for m in chunk:
                if m in copies and m in messages:
                    item = message_of(copies[m], messages[m], reader=person).model_dump_json()
                    yield (b"" if first else b",") + item.encode()
                    first = False
        yield b"]}"

    async def purge(self, person: str) -> int:
        """Erase a person's mailbox: their copies, drafts, folders and lists (messages others hold stay theirs)."""
        async with self.lock(person):
            mailbox, ids = await self.all_ids(person)
            for start in range(0, len(ids), SCAN_CHUNK):
                chunk = ids[start : start + SCAN_CHUNK]
                await self.repo.delete_copies(person, chunk)
                for message_id in chunk:
                    await self.release(message_id)
            await self.repo.drop_mailbox(person, await self.segments(person, mailbox))
        return len(ids)

    async def sweep_trash(self, *, retention_days: int, now: datetime | None = None) -> int:
        """Delete for good what has stayed in the trash longer than the retention."""
        now = now or datetime.now(UTC)
        cutoff = now - timedelta(days=retention_days)
        deleted = 0
        for day in await self.repo.trash_days():
            if day["_id"] >= cutoff.strftime("d%Y%m%d"):
                continue
            for item in day.get("items", []):
                person, _, message_id = item.partition("|")
                async with self.lock(person):
                    copy = await self.repo.copy(person, message_id)
                    if (
                        copy is None
                        or copy["folder"] != "trash"
                        or copy.get("trashed_at") is None
                        or copy["trashed_at"] > cutoff
                    ):
                        continue  # restored, deleted already, or trashed again later
                    await self.repo.remove_copy(copy)
                    await self.release(message_id)
                    deleted += 1
            await self.repo.drop_trash_day(day["_id"])
        return deleted


def months_between(first: str, last: str) -> list[str]:
    """The months from `first` to `last` (`YYYYMM`), both included."""
    year, month = int(first[:4]), int(first[4:])
    found = []
    while f"{year:04d}{month:02d}" <= last:
        found.append(f"{year:04d}{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _depth(folders: dict[str, Doc], fid: str | None) -> int:
    depth = 0
    while fid is not None and depth <= MAX_DEPTH:
        depth += 1
        fid = folders.get(fid, {}).get("parent")
    return depth

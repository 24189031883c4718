"""Writing and sending: drafts saved as one types, attachments, replies, sending now or later, delivery to
every recipient's inbox (groups expanded at send time, every recipient checked by identity's rules), and
recall of the copies still unread."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from maille.identity.v1.rules_pb2 import ResolveResponse
from maille.messaging.v1 import messages_pb2 as pb
from maille_contracts import MESSAGE_DELIVERED, MESSAGE_RECALLED
from maille_kit.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from maille_kit.events import event_id_for, make_envelope
from maille_kit.files import receive
from maille_kit.problems import Problem
from maille_kit.text import folded
from maille_kit.versions import check
from maille_kit.work import Works
from maille_messaging.attachments import AttachmentStore, Scanner, new_attachment
from maille_messaging.bodies import sanitise, snippet, text_of, words
from maille_messaging.mailbox import Mailbox
from maille_messaging.repository import MESSAGES, Doc, MailRepository
from maille_messaging.rules import Rules, person_name
from maille_messaging.schemas import Draft, Outgoing, Quota, Recall, Recipient, Sent, new_message_id
from maille_messaging.settings import MessagingSettings

log = logging.getLogger("maille.messaging")
EVENT_RECIPIENTS = 500  # recipients named by one delivered event
FILE_STEP, RECALL_STEP = "messaging.file", "messaging.recall"
SCHEDULE_LEASE = timedelta(minutes=2)  # a scheduled send's replica has it this long before another may try
SCHEDULE_TRIES = 5


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def listing_line(message: Doc) -> dict[str, Any]:
    """What a folder listing shows of a message (kept in the message: the same for every holder)."""
    return {
        "thread": message["thread"],
        "at": message.get("sent_at") or message.get("updated") or datetime.now(UTC),
        "sender": message["sender"],
        "to": _line(message["to"]),
        "subject": message["subject"],
        "snippet": snippet(text_of(message["body"])),
        "attachments": len(message["attachments"]),
    }


def search_key(message: Doc) -> str:
    return folded(
        " ".join(
            [message["subject"], message["sender"]["name"], _line(message["to"], 10_000), _line(message["cc"], 10_000)]
        )
    )


def _line(recipients: list[dict[str, Any]], size: int = 200) -> str:
    line = ", ".join(r.get("name") or r["id"] for r in recipients)
    return line if len(line) <= size else line[: size - 1] + "…"


class Sending:
    """Drafts, sends and recalls for the persons of one tenant or more."""

    def __init__(
        self,
        repository: MailRepository,
        mailbox: Mailbox,
        rules: Rules,
        works: Works,
        store: AttachmentStore,
        settings: MessagingSettings,
        scanner: Scanner | None = None,
    ) -> None:
        self.repo = repository
        self.mailbox = mailbox
        self.rules = rules
        self.works = works
        self.store = store
        self.settings = settings
        self.scanner = scanner
        works.register(FILE_STEP, self._file)
        works.register(RECALL_STEP, self._take_back)

    # drafts
    async def save_draft(
        self,
        person: str,
        draft: Draft,
        *,
        tenant: str,
        draft_id: str | None = None,
        expected_version: int | None = None,
    ) -> tuple[str, int]:
        """Create a draft, or save it again (as the sender types): its recipients are checked only when it is sent.
        Its id and new version; with `expected_version`, saved only over that version (PreconditionFailed: the
        draft was saved meanwhile, from another device)."""
        self._check_body(draft.body)
        parent = await self._parent(person, draft.in_reply_to)
        body = sanitise(draft.body)
        async with self.mailbox.lock(person):
            if draft_id is None:
                draft_id = new_message_id()
                message: Doc = {
                    "_id": draft_id,
                    "tenant": tenant,
                    "state": "draft",
                    "sender": {"id": person, "name": ""},
                    "thread": parent["thread"] if parent else draft_id,
                    "attachments": [],
                    "holders": 1,
                    "created": datetime.now(UTC),
                }
            else:
                message = await self._own_draft(person, draft_id)
                check(expected_version, message.get("version", 1), f"draft {draft_id}")
            message["version"] = message.get("version", 0) + 1
            message.update(
                {
                    "to": _plain(draft.to),
                    "cc": _plain(draft.cc),
                    "bcc": _plain(draft.bcc),
                    "subject": draft.subject,
                    "body": body,
                    "parent": draft.in_reply_to,
                    "updated": datetime.now(UTC),
                }
            )
            message["line"] = listing_line(message)
            await self.repo.put_message(message)
            if await self.repo.copy(person, draft_id) is None:
                await self.repo.file([self._copy(person, message, folder="drafts", unread=False)], tenant=tenant)
        return draft_id, message["version"]

    async def _own_draft(self, person: str, draft_id: str) -> Doc:
        message = await self.repo.message(draft_id)
        if message is None or message["sender"]["id"] != person or message["state"] != "draft":
            raise NotFound(f"you have no draft {draft_id}")
        copy = await self.repo.copy(person, draft_id)
        if copy is None or copy["folder"] not in ("drafts", "trash"):
            raise NotFound(f"you have no draft {draft_id}")
        return message

    async def delete_draft(self, person: str, draft_id: str) -> None:
        async with self.mailbox.lock(person):
            message = await self._own_draft(person, draft_id)
            copy = await self.repo.copy(person, draft_id)
            if copy is not None:
                await self.repo.remove_copy(copy)
            await self.mailbox.drop_message(message)

    # attachments
    async def quota(self, person: str) -> Quota:
        """The space the person's files take, and how much they may take."""
        return Quota(used=await self.repo.quota_used(person), limit=self.settings.quota_bytes)

    async def attach(
        self, person: str, draft_id: str, *, name: str, body: AsyncIterator[bytes], tenant: str
    ) -> dict[str, Any]:
        """Add a file to a draft: size limit, type from the content, quota, virus scan — all before anything is kept."""
        await self._own_draft(person, draft_id)
        # size, type from the content (Refused: a kind of file a message may not carry), virus scan
        data, mime = await receive(body, limit=self.settings.attachment_max_bytes, scanner=self.scanner)
        if not await self.repo.take_quota(person, len(data), limit=self.settings.quota_bytes, tenant=tenant):
            raise TooLarge(
                f"your attachments would go over your quota of {self.settings.quota_bytes} bytes: delete messages "
                "with attachments you sent, or empty your trash",
                quota=self.settings.quota_bytes,
            )
        meta = new_attachment(tenant=tenant, owner=person, message=draft_id, name=name, mime=mime, size=len(data))
        try:
            await self.store.put(meta, bytes(data))
            async with self.mailbox.lock(person):
                message = await self._own_draft(person, draft_id)
                attachments = [
                    *message["attachments"],
                    {"id": meta["_id"], "name": name, "type": mime, "size": len(data)},
                ]
                await self.repo.update_message(
                    draft_id, {"$set": {"attachments": attachments, "line.attachments": len(attachments)}}
                )
        except BaseException:
            await self.repo.give_quota(person, len(data))
            raise
        return {"id": meta["_id"], "name": name, "type": mime, "size": len(data)}

    async def detach(self, person: str, draft_id: str, attachment_id: str) -> None:
        async with self.mailbox.lock(person):
            message = await self._own_draft(person, draft_id)
            kept = [a for a in message["attachments"] if a["id"] != attachment_id]
            if len(kept) == len(message["attachments"]):
                raise NotFound(f"the draft has no attachment {attachment_id}")
            await self.repo.update_message(draft_id, {"$set": {"attachments": kept, "line.attachments": len(kept)}})
        meta = await self.repo.attachment(attachment_id)
        if meta is not None:
            await self.store.delete(meta)
            await self.repo.give_quota(person, meta["size"])

    async def download(self, person: str, message_id: str, attachment_id: str) -> tuple[Doc, AsyncIterator[bytes]]:
        """An attachment of a message the person holds."""
        _, message = await self.mailbox.held(person, message_id)
        if attachment_id not in {a["id"] for a in message.get("attachments", [])}:
            raise NotFound(f"message {message_id} has no attachment {attachment_id}")
        meta = await self.repo.attachment(attachment_id)
        if meta is None:
            raise NotFound(f"attachment {attachment_id} is gone")
        return meta, self.store.read(meta)

    # sending
    async def send(self, person: str, outgoing: Outgoing, *, tenant: str, draft_id: str | None = None) -> Sent:
        """Check the recipients and send now, or keep it to send at `send_at`."""
        return await self._send(
            person, outgoing, tenant=tenant, draft=await self._own_draft(person, draft_id) if draft_id else None
        )

    async def _send(
        self, person: str, outgoing: Outgoing, *, tenant: str, draft: Doc | None, message_id: str | None = None
    ) -> Sent:
        self._check_body(outgoing.body)
        if not outgoing.recipients():
            raise Invalid("a message needs at least one recipient", field="to")
        parent = await self._parent(person, outgoing.in_reply_to)
        resolved, recipients, named = await self._resolve(person, outgoing, tenant=tenant)
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as the docstore keeps it (milliseconds)
        body = sanitise(outgoing.body)
        thread = parent["thread"] if parent else None
        content = {
            "tenant": tenant,
            "sender": {"id": person, "name": person_name(resolved.sender)},
            "to": named(outgoing.to),
            "cc": named(outgoing.cc),
            "bcc": named(outgoing.bcc),
            "subject": outgoing.subject,
            "body": body,
            "parent": outgoing.in_reply_to,
            "attachments": draft["attachments"] if draft else [],
        }
        if outgoing.send_at is not None and outgoing.send_at > now + timedelta(seconds=30):
            return await self._schedule(
                person, content, outgoing, thread=thread, draft=draft, recipients=len(recipients)
            )
        message_id = message_id or new_message_id()
        message = {
            **content,
            "_id": message_id,
            "thread": thread or message_id,
            "state": "sent",
            "sent_at": now,
            "recipients": sorted(recipients),
            "holders": len(recipients) + 1,
            "words": words(outgoing.subject, text_of(body)),
        }
        await self._deliver(person, message, recipients, tenant=tenant)
        if draft is not None:
            await self._drop_draft(person, draft)
        return Sent(id=message_id, thread=message["thread"], state="sent", recipients=len(recipients))

    async def send_draft(self, person: str, draft_id: str, *, tenant: str, send_at: datetime | None = None) -> Sent:
        """Send a draft as it was last saved."""
        draft = await self._own_draft(person, draft_id)
        outgoing = _outgoing(draft, send_at=send_at)
        return await self._send(person, outgoing, tenant=tenant, draft=draft)

    async def _resolve(
        self, person: str, outgoing: Outgoing, *, tenant: str
    ) -> tuple[ResolveResponse, set[str], Callable[[list[Recipient]], list[dict[str, Any]]]]:
        """Who the recipients are, now: refusals name who may not be written to."""
        lists = (
            (await self.repo.mailbox(person) or {}).get("lists", {})
            if any(r.type == "list" for r in outgoing.recipients())
            else {}
        )
        persons = [r.id for r in outgoing.recipients() if r.type == "person"]
        groups = [r.id for r in outgoing.recipients() if r.type == "group"]
        unknown_lists = [r.id for r in outgoing.recipients() if r.type == "list" and r.id not in lists]
        if unknown_lists:
            raise Invalid(f"you have no list {', '.join(unknown_lists)}", unknown=unknown_lists)
        for r in outgoing.recipients():
            if r.type == "list":
                persons.extend(lists[r.id]["members"])
        resolved = await self.rules.resolve(tenant=tenant, sender=person, persons=persons, groups=groups)
        if resolved.unknown_ids or resolved.unknown_group_ids:
            unknown = [*resolved.unknown_ids, *resolved.unknown_group_ids]
            raise Invalid(f"no such recipient: {', '.join(unknown)}", unknown=unknown)
        if resolved.refused_ids or resolved.refused_group_ids:
            refused = [*resolved.refused_ids, *resolved.refused_group_ids]
            raise Forbidden(f"you may not write to {', '.join(refused)} (communication rules)", refused=refused)
        recipients = {p.id for p in resolved.persons}
        for group in resolved.groups:
            recipients.update(group.member_ids)
        recipients.discard(person)  # a sender in a group they write to keeps their copy in "sent"
        if not recipients:
            raise Invalid("the recipients are empty groups: nobody would receive it")
        if len(recipients) > self.settings.recipients_max:
            raise Invalid(
                f"a message may reach {self.settings.recipients_max} persons at most; these are {len(recipients)}"
            )
        names = {p.id: person_name(p) for p in resolved.persons} | {g.id: g.name for g in resolved.groups}
        names |= {lid: lists[lid]["name"] for lid in lists}

        def named(written: list[Recipient]) -> list[dict[str, Any]]:
            return [{"type": r.type, "id": r.id, "name": names.get(r.id, r.id)} for r in written]

        return resolved, recipients, named

    async def _deliver(self, person: str, message: Doc, recipients: set[str], *, tenant: str) -> None:
        message["line"], message["search_key"] = listing_line(message), search_key(message)
        self.mailbox.remember(message["_id"], message["line"])
        copies = [self._copy(person, message, folder="sent", unread=False)]
        copies += [self._copy(r, message, folder="inbox", unread=True) for r in sorted(recipients)]
        ordered = sorted(recipients)
        envelopes = [
            make_envelope(
                type=MESSAGE_DELIVERED,
                tenant=tenant,
                source="messaging",
                id=event_id_for(message["_id"], start, ms=int(message["_id"][:12], 16)),
                payload=pb.MessageDelivered(
                    message_id=message["_id"],
                    thread_id=message["thread"],
                    sender_id=person,
                    sender_name=message["sender"]["name"],
                    subject=message["subject"],
                    recipient_ids=ordered[start : start + EVENT_RECIPIENTS],
                    has_attachments=bool(message["attachments"]),
                ),
            )
            for start in range(0, len(ordered), EVENT_RECIPIENTS)
        ]
        # One unit of work: filed in every mailbox and told, or (the replica gone half-way) finished by another.
        work = (
            self.works.new()
            .step(FILE_STEP, {"copies": copies, "message": message, "tenant": tenant})
            .add_events(envelopes)
        )
        await self.works.commit(work)

    async def _file(self, input: Doc) -> None:
        """A message and its copies filed (again: nothing changes), and the message in its conversation."""
        message = input["message"]
        await self.repo.file(input["copies"], tenant=input["tenant"], message=message)
        if message["thread"] != message["_id"]:
            await self.repo.add_to_thread(message["thread"], message["_id"], tenant=input["tenant"])

    def _copy(self, owner: str, message: Doc, *, folder: str, unread: bool) -> Doc:
        """One holder's copy: where it is and whether it is read (what it shows is the message's `line`)."""
        return {
            "_id": f"{owner}:{message['_id']}",
            "tenant": message["tenant"],
            "person": owner,
            "message": message["_id"],
            "folder": folder,
            "unread": unread,
        }

    async def _drop_draft(self, person: str, draft: Doc) -> None:
        copy = await self.repo.copy(person, draft["_id"])
        if copy is not None:
            await self.repo.remove_copy(copy)
        await self.repo.delete_message(draft["_id"])  # its attachments now belong to the message sent

    async def _schedule(
        self, person: str, content: Doc, outgoing: Outgoing, *, thread: str | None, draft: Doc | None, recipients: int
    ) -> Sent:
        message_id = new_message_id()
        message = {
            **content,
            "_id": message_id,
            "thread": thread or message_id,
            "state": "scheduled",
            "send_at": outgoing.send_at,
            "to": content["to"],
            "holders": 1,
        }
        message["line"] = listing_line(message)
        await self.repo.put_message(message)
        await self.repo.file([self._copy(person, message, folder="scheduled", unread=False)], tenant=content["tenant"])
        await self.repo.schedule(
            {
                "_id": message_id,
                "tenant": content["tenant"],
                "person": person,
                "at": outgoing.send_at,
                "lease": outgoing.send_at,
                "tries": 0,
            }
        )
        if draft is not None:
            await self._drop_draft(person, draft)
        return Sent(
            id=message_id, thread=message["thread"], state="scheduled", recipients=recipients, send_at=outgoing.send_at
        )

    async def cancel_schedule(self, message_id: str) -> None:
        await self.repo.unschedule(message_id)

    async def send_due(self, now: datetime | None = None) -> int:
        """Send the scheduled messages whose time has come, each by the one replica that leases it. A send that fails
        (the docstore or NATS away, the replica gone) keeps its entry: it is leased and sent again once the lease has
        passed — as the same message with the same events, so nobody gets it twice — and after `SCHEDULE_TRIES` tries
        it comes back to its writer as a draft saying so."""
        now = now or datetime.now(UTC)
        sent = 0
        for due in await self.repo.scheduled():
            at = _aware(due["at"])
            if at > now:
                continue
            if "lease" not in due:  # scheduled before leases
                await self.repo.schedule({**due, "lease": due["at"], "tries": 0})
            entry = await self.repo.lease(due["_id"], now=now, until=now + SCHEDULE_LEASE)
            if entry is None:
                continue  # another replica sends it
            try:
                await self._send_scheduled(entry)
                sent += 1
            except Problem as exc:  # the rules changed since: it stays a draft, saying why
                await self._give_back(entry, exc.detail or "not sent")
            except Exception as exc:
                if entry["tries"] >= SCHEDULE_TRIES:
                    await self._give_back(entry, "the message could not be sent at the time set; send it again")
                log.warning(
                    "scheduled message not sent (try %d), tried again later: %s",
                    entry["tries"],
                    exc,
                    extra={"message_id": entry["_id"]},
                )
        return sent

    async def _send_scheduled(self, entry: Doc) -> None:
        message = await self.repo.message(entry["_id"])
        if message is None or message["state"] not in ("scheduled", "draft"):  # cancelled, or sent already
            await self.repo.unschedule(entry["_id"])
            return
        person, tenant = entry["person"], entry["tenant"]
        outgoing = _outgoing(message)
        async with self.mailbox.lock(person):
            if message["state"] == "scheduled":
                await self.repo.update_message(message["_id"], {"$set": {"state": "draft"}})
            copy = await self.repo.copy(person, message["_id"])
            if copy is not None and copy["folder"] == "scheduled":
                await self.repo.change_copy(copy, folder="drafts")
        # Sent as a message whose id (and so whose events' ids) the schedule fixes: a try again after a failure
        # files the same message again, which changes nothing, and its events are dropped as copies.
        millis = int(_aware(entry["at"]).timestamp() * 1000)
        sent_id = f"{millis:012x}{hashlib.sha256(entry['_id'].encode()).hexdigest()[:10]}"
        await self._send(
            person, outgoing, tenant=tenant, draft=await self._own_draft(person, message["_id"]), message_id=sent_id
        )
        await self.repo.unschedule(entry["_id"])

    async def _give_back(self, entry: Doc, why: str) -> None:
        await self.repo.update_message(entry["_id"], {"$set": {"error": why}})
        await self.repo.unschedule(entry["_id"])
        log.info("scheduled message not sent", extra={"message_id": entry["_id"], "reason": why})

    # recall
    async def recall(self, person: str, message_id: str) -> Recall:
        """Take back the copies still unread, within the recall window."""
        message = await self.repo.message(message_id)
        if message is None or message["sender"]["id"] != person or message["state"] != "sent":
            raise NotFound(f"you sent no message {message_id}")
        window = timedelta(minutes=self.settings.recall_minutes)
        sent_at = message["sent_at"] if message["sent_at"].tzinfo else message["sent_at"].replace(tzinfo=UTC)
        if datetime.now(UTC) - sent_at > window:
            raise Conflict(f"a message may be recalled within {self.settings.recall_minutes} minutes of sending")
        recipients = message.get("recipients", [])
        unread: list[str] = []
        for recipient in recipients:
            copy = await self.repo.copy(recipient, message_id)
            if copy is not None and copy["unread"]:
                unread.append(recipient)
        if not unread:
            return Recall(recalled=0, kept=len(recipients))
        work = self.works.new().step(RECALL_STEP, {"message": message_id, "recipients": unread})
        work.update(MESSAGES, {"_id": message_id}, {"$set": {"recalled": len(unread)}})
        for s in range(0, len(unread), EVENT_RECIPIENTS):
            work.event(
                type=MESSAGE_RECALLED,
                tenant=message["tenant"],
                payload=pb.MessageRecalled(
                    message_id=message_id, sender_id=person, recipient_ids=unread[s : s + EVENT_RECIPIENTS]
                ),
            )
        await self.works.commit(work)
        return Recall(recalled=len(unread), kept=len(recipients) - len(unread))

    async def _take_back(self, input: Doc) -> None:
        """The copies of a recall still unread taken back (a copy read meanwhile stays; done again, nothing more
        goes)."""
        message_id, gone = input["message"], 0
        for recipient in input["recipients"]:
            async with self.mailbox.lock(recipient):
                copy = await self.repo.copy(recipient, message_id)
                if copy is not None and copy["unread"]:
                    await self.repo.remove_copy(copy)
                    gone += 1
        if gone:  # only the copies taken back now let go of the message: done again, it is not let go twice
            await self.mailbox.release(message_id, holders=gone)

    # helpers
    def _check_body(self, body: str) -> None:
        if len(body.encode()) > self.settings.body_max_bytes:
            raise TooLarge(f"a message body may be {self.settings.body_max_bytes} bytes at most", field="body")

    async def _parent(self, person: str, parent_id: str | None) -> Doc | None:
        if parent_id is None:
            return None
        copy = await self.repo.copy(person, parent_id)
        parent = await self.repo.message(parent_id, {"thread": 1}) if copy is not None else None
        if parent is None:
            raise NotFound(
                f"you can only reply to a message you hold: there is no message {parent_id} in your mailbox",
                field="in_reply_to",
            )
        return parent


def _plain(recipients: list[Recipient]) -> list[dict[str, Any]]:
    return [{"type": r.type, "id": r.id, "name": r.id} for r in recipients]  # named when sent


def _outgoing(stored: Doc, *, send_at: datetime | None = None) -> Outgoing:
    """A stored draft (or a message waiting for its time) as what is sent."""
    return Outgoing(
        to=_written(stored["to"]),
        cc=_written(stored["cc"]),
        bcc=_written(stored["bcc"]),
        subject=stored["subject"],
        body=stored["body"],
        in_reply_to=stored.get("parent"),
        send_at=send_at,
    )


def _written(recipients: list[dict[str, Any]]) -> list[Recipient]:
    return [Recipient(type=r["type"], id=r["id"]) for r in recipients]

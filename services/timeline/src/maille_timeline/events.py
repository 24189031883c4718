"""What the timeline makes of the other services' events: a mail delivered, a licence of a resource assigned (its
label learnt from the subscription's events), the directory's persons. The timeline owns no stream yet: what it
publishes are live signals (`live.py`), which are not kept."""

from __future__ import annotations

from typing import Any

from maille.catalog.v1 import subscriptions_pb2
from maille.identity.v1 import operations_pb2
from maille.library.v1 import loans_pb2
from maille.messaging.v1 import messages_pb2
from maille.support.v1 import requests_pb2
from maille_contracts import (
    ASSIGNMENT_CHANGED,
    EXPORT_FAILED,
    IMPORT_REPORTED,
    LOAN_DUE,
    LOAN_LATE,
    MESSAGE_DELIVERED,
    MESSAGE_RECALLED,
    REQUEST_ESCALATED,
    REQUEST_OPENED,
    REQUEST_OVERDUE,
    REQUEST_REPLIED,
    REQUEST_STATUS_CHANGED,
    RESERVATION_READY,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
)
from maille_kit.bus import Stream
from maille_kit.events import Event
from maille_timeline.notifications import Notifications
from maille_timeline.repository import TimelineRepository

STREAMS: tuple[Stream, ...] = ()
MESSAGING_SUBJECTS = (MESSAGE_DELIVERED,)
RECALL_SUBJECTS = (MESSAGE_RECALLED,)
CATALOG_SUBJECTS = (ASSIGNMENT_CHANGED, SUBSCRIPTION_CREATED, SUBSCRIPTION_UPDATED)
ADMIN_SUBJECTS = (IMPORT_REPORTED, EXPORT_FAILED)
LIBRARY_SUBJECTS = (LOAN_DUE, LOAN_LATE, RESERVATION_READY)
SUPPORT_SUBJECTS = (REQUEST_OPENED, REQUEST_REPLIED, REQUEST_STATUS_CHANGED, REQUEST_ESCALATED, REQUEST_OVERDUE)
# A subscription's target public (the GAR's words) -> the directory's profiles.
PUBLICS = {
    "ELEVE": ("National_ELV",),
    "ENSEIGNANT": ("National_ENS",),
    "DOCUMENTALISTE": ("National_DOC",),
    "AUTRE PERSONNEL": ("National_DIR", "National_EVS", "National_ETA"),
}
LABELS = "labels"  # resource id -> its label, from the subscriptions' events


class Told:
    """Turns the services' events into notifications."""

    def __init__(
        self, notifications: Notifications, repository: TimelineRepository, *, admins: list[str] | None = None
    ) -> None:
        self.notifications = notifications
        self.repository = repository
        self.admins = list(admins or [])
        self.labels = repository.docstore.db[LABELS]
        self.docstore = repository.docstore

    async def mail(self, event: Event) -> None:
        delivered = event.unpack(messages_pb2.MessageDelivered)
        note_id = await self.notifications.notify(
            source=event.id,
            at=event.time,
            kind="mail",
            data={
                "sender": delivered.sender_name,
                "subject": delivered.subject,
                "message": delivered.message_id,
                "attachments": delivered.has_attachments,
            },
            persons=list(delivered.recipient_ids),
            tenant=event.tenant,
        )
        if note_id is not None:
            await self.repository.remember_mail(delivered.message_id, note_id)

    async def recall(self, event: Event) -> None:
        """A mail recalled: its notification withdrawn from those whose copy was taken back (their feed, their
        digest, an e-mail not yet sent), and their unread count told to their open pages."""
        recalled = event.unpack(messages_pb2.MessageRecalled)
        note_id = await self.repository.mail_note(recalled.message_id)
        if note_id is None or not recalled.recipient_ids:
            return
        await self.notifications.withdraw(note_id, list(recalled.recipient_ids))

    async def catalog(self, event: Event) -> None:
        if event.type in (SUBSCRIPTION_CREATED, SUBSCRIPTION_UPDATED):
            subscription = (
                event.unpack(subscriptions_pb2.SubscriptionCreated)
                if event.type == SUBSCRIPTION_CREATED
                else event.unpack(subscriptions_pb2.SubscriptionUpdated)
            ).subscription
            if subscription.resource_id and subscription.resource_label:
                async with self.docstore.writing():
                    await self.labels.update_one(
                        {"_id": subscription.resource_id},
                        {"$set": {"label": subscription.resource_label}},
                        upsert=True,
                    )
            if event.type == SUBSCRIPTION_CREATED and subscription.assignment_type == "ETABL":
                await self._whole_schools(event, subscription)
            return
        changed = event.unpack(subscriptions_pb2.AssignmentChanged)
        if not changed.assigned_ids:
            return
        found: dict[str, Any] | None = await self.labels.find_one({"_id": changed.resource_id})
        await self.notifications.notify(
            source=event.id,
            at=event.time,
            kind="mediacentre",
            data={"label": (found or {}).get("label") or "Une ressource numérique"},
            persons=list(changed.assigned_ids),
            tenant=event.tenant,
        )

    async def _whole_schools(self, event: Event, subscription: Any) -> None:
        """A subscription for whole schools: the resource appears in the médiacentre of each person of those schools
        whose profile its target public names (no public named: everyone)."""
        profiles = {code for public in subscription.publics for code in PUBLICS.get(public, ())}
        keys = [f"school:{uai}" for uai in subscription.uais]
        members = await self.repository.members(keys)
        persons: list[str] = []
        known: dict[str, dict[str, Any]] = {}
        for key, ids in members.items():
            uai = key.removeprefix("school:")
            people = await self.repository.persons_by_id(ids)
            known.update(people)
            persons += [
                p for p, doc in people.items() if not profiles or profiles & set(doc.get("schools", {}).get(uai, []))
            ]
        if persons:
            await self.notifications.notify(
                source=event.id,
                at=event.time,
                kind="mediacentre",
                data={"label": subscription.resource_label or "Une ressource numérique"},
                persons=persons,
                tenant=event.tenant,
                known=known,
            )

    async def admin(self, event: Event) -> None:
        """An AAF import's report, a failed GAR export: the platform's admins told (and who started the import)."""
        if event.type == EXPORT_FAILED:
            failed = event.unpack(operations_pb2.ExportFailed)
            data: dict[str, Any] = {"what": "gar-failed", "night": failed.night, "reason": failed.reason}
            persons = self.admins
        else:
            report = event.unpack(operations_pb2.ImportReported)
            persons = [*self.admins, *([report.requested_by] if report.requested_by else [])]
            if report.state == "failed":
                data = {"what": "import-failed", "reason": f"{report.file} : {report.error}"}
            else:
                data = {
                    "what": "import-done",
                    "summary": f"{report.file} : {report.records} fiches lues, {report.created} créées, "
                    f"{report.updated} modifiées, {report.deleted} supprimées ; {report.rejected} rejetées, "
                    f"{report.warnings} avertissements",
                }
        if persons:
            await self.notifications.notify(
                source=event.id, at=event.time, kind="admin", data=data, persons=persons, tenant=event.tenant
            )

    async def library(self, event: Event) -> None:
        """A CDI loan due in two days or late, a reservation waiting: the reader told, and a pupil's parents."""
        if event.type == RESERVATION_READY:
            ready = event.unpack(loans_pb2.ReservationReady)
            person = ready.person_id
            data: dict[str, Any] = {"what": "ready", "until": _french(ready.until)}
        else:
            loan = (
                event.unpack(loans_pb2.LoanDue).loan
                if event.type == LOAN_DUE
                else event.unpack(loans_pb2.LoanLate).loan
            )
            person = loan.person_id
            data = {"what": "due" if event.type == LOAN_DUE else "late", "title": loan.title, "due": _french(loan.due)}
        reader = await self.repository.person(person)
        await self.notifications.notify(
            source=event.id,
            at=event.time,
            kind="library",
            data=data,
            persons=[person, *((reader or {}).get("parents") or [])],
            tenant=event.tenant,
        )

    async def support(self, event: Event) -> None:
        """A help request answered or changed (its person told), opened, sent up or overdue (who takes it told)."""
        data: dict[str, Any]
        if event.type in (REQUEST_REPLIED, REQUEST_STATUS_CHANGED):
            message: Any = event.unpack(
                requests_pb2.RequestReplied if event.type == REQUEST_REPLIED else requests_pb2.RequestStatusChanged
            )
            if not message.person_id:
                return  # the person changed it themselves
            kind, persons = "support", [message.person_id]
            data = (
                {"what": "reply", "by": message.by}
                if event.type == REQUEST_REPLIED
                else {"what": "status", "status": message.status}
            )
        else:
            queued: dict[str, Any] = {
                REQUEST_OPENED: ("opened", requests_pb2.RequestOpened),
                REQUEST_ESCALATED: ("escalated", requests_pb2.RequestEscalated),
                REQUEST_OVERDUE: ("overdue", requests_pb2.RequestOverdue),
            }
            what, shape = queued[event.type]
            message = event.unpack(shape)
            kind, persons = "support_queue", list(message.tell)
            data = {"what": what}
            if event.type == REQUEST_OVERDUE:
                data["clock"] = message.clock
        if persons:
            await self.notifications.notify(
                source=event.id,
                at=event.time,
                kind=kind,
                data={**data, "id": message.request.id, "subject": message.request.subject},
                persons=persons,
                tenant=event.tenant,
            )


def _french(day: str) -> str:
    """2026-12-08 → 08/12/2026."""
    parts = day.split("-")
    return "/".join(reversed(parts)) if len(parts) == 3 else day

"""Folders, pages of a folder, read marks, moves, the trash, conversations and search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from maille_kit.app import Told
from maille_kit.idempotency import Idempotent
from maille_kit.usage import Kind
from maille_kit.versions import tag
from maille_messaging.api import FolderPath, MailboxPart, Me, MessagePath, SendingPart
from maille_messaging.schemas import (
    MESSAGE_ID,
    Changed,
    Folder,
    FolderIn,
    FolderRename,
    Marks,
    Message,
    Move,
    Page,
    Selection,
)

router = APIRouter(prefix="/api/messaging/v1", tags=["mailbox"])
Cursor = Annotated[str | None, Query(pattern=MESSAGE_ID, description="`next` of the page before")]
Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/folders", summary="Your folders with their message and unread counts")
async def folders(me: Me, mailbox: MailboxPart) -> list[Folder]:
    return await mailbox.folders(me.person)


@router.post("/folders", status_code=201, summary="Make a folder (3 deep at most, 50 per level)")
async def create_folder(me: Me, _: Idempotent, body: FolderIn, mailbox: MailboxPart) -> Folder:
    return await mailbox.create_folder(me.person, tenant=me.tenant, name=body.name, parent=body.parent)


@router.patch("/folders/{folder}", summary="Rename a folder of yours")
async def rename_folder(me: Me, folder: FolderPath, body: FolderRename, mailbox: MailboxPart) -> Folder:
    return await mailbox.rename_folder(me.person, folder, tenant=me.tenant, name=" ".join(body.name.split()))


@router.delete("/folders/{folder}", status_code=204, summary="Delete an empty folder of yours")
async def delete_folder(me: Me, folder: FolderPath, mailbox: MailboxPart) -> Response:
    await mailbox.delete_folder(me.person, folder, tenant=me.tenant)
    return Response(status_code=204)


@router.get("/folders/{folder}/messages", summary="A page of a folder, newest first")
async def page(me: Me, folder: FolderPath, mailbox: MailboxPart, cursor: Cursor = None, limit: Limit = 25) -> Page:
    return await mailbox.page(me.person, folder, cursor=cursor, limit=limit)


@router.get("/search", summary="Search your mailbox: subject, body and correspondents, case and accents ignored")
async def search(
    me: Me,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    mailbox: MailboxPart,
    cursor: Cursor = None,
    limit: Limit = 25,
) -> Page:
    return await mailbox.search(me.person, q, cursor=cursor, limit=limit)


@router.get("/messages/{message}", summary="A message you hold")
async def read(me: Me, message: MessagePath, mailbox: MailboxPart, response: Response, uses: Told) -> Message:
    found = await mailbox.read(me.person, message)
    if found.version is None:  # a message received or sent, not a draft being written
        uses.of(Kind.KIND_MAIL_READ, me.principal, service="messagerie")
    if found.version is not None:  # a draft of the reader's: saved with If-Match from another device
        tag(response, found.version)
    return found


@router.get("/threads/{thread}", summary="The messages of a conversation that you hold, oldest first")
async def thread(me: Me, thread: MessagePath, mailbox: MailboxPart) -> list[Message]:
    return await mailbox.thread(me.person, thread)


@router.post("/messages/read", summary="Mark messages read (or unread with `unread: true`)")
async def mark(me: Me, body: Marks, mailbox: MailboxPart) -> Changed:
    return await mailbox.mark(me.person, body.ids, unread=body.unread)


@router.post("/messages/move", summary="Move messages to a folder (the trash included)")
async def move(me: Me, body: Move, mailbox: MailboxPart, sending: SendingPart) -> Changed:
    if body.folder == "trash":
        return await mailbox.trash(me.person, body.ids, cancel_schedule=sending.cancel_schedule)
    return await mailbox.move(me.person, body.ids, folder=body.folder, tenant=me.tenant)


@router.post("/messages/trash", summary="Put messages in the trash (a message waiting to be sent is not sent)")
async def trash(me: Me, body: Selection, mailbox: MailboxPart, sending: SendingPart) -> Changed:
    return await mailbox.trash(me.person, body.ids, cancel_schedule=sending.cancel_schedule)


@router.post("/messages/restore", summary="Take messages out of the trash, back where they were")
async def restore(me: Me, body: Selection, mailbox: MailboxPart) -> Changed:
    return await mailbox.restore(me.person, body.ids)


@router.post("/messages/delete", summary="Delete messages in the trash for good")
async def delete(me: Me, body: Selection, mailbox: MailboxPart) -> Changed:
    return await mailbox.delete(me.person, body.ids)

"""Writing: sending, drafts, attachments, recall."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from maille_kit.app import Told
from maille_kit.files import file_answer
from maille_kit.idempotency import Idempotent
from maille_kit.usage import Kind
from maille_kit.versions import IfMatch, tag
from maille_messaging.api import AttachmentPath, Me, MessagePath, SendingPart
from maille_messaging.schemas import Attachment, Draft, Outgoing, Quota, Recall, SendLater, Sent

router = APIRouter(prefix="/api/messaging/v1", tags=["sending"])


@router.post("/messages", status_code=201, summary="Send a message now (or at `send_at`)")
async def send(me: Me, _: Idempotent, body: Outgoing, response: Response, sending: SendingPart, uses: Told) -> Sent:
    sent = await sending.send(me.person, body, tenant=me.tenant)
    uses.of(Kind.KIND_MAIL_SENT, me.principal, service="messagerie")
    if sent.state == "scheduled":
        response.status_code = 202
    return sent


@router.post("/messages/{message}/recall", summary="Take back the copies still unread (within the recall window)")
async def recall(me: Me, message: MessagePath, sending: SendingPart) -> Recall:
    return await sending.recall(me.person, message)


@router.get("/messages/{message}/attachments/{attachment}", summary="An attachment of a message you hold")
async def download(me: Me, message: MessagePath, attachment: AttachmentPath, sending: SendingPart) -> StreamingResponse:
    meta, chunks = await sending.download(me.person, message, attachment)
    return file_answer(meta, chunks)


@router.get("/quota", summary="The space your files take, and how much you have")
async def quota(me: Me, sending: SendingPart) -> Quota:
    return await sending.quota(me.person)


@router.post("/drafts", status_code=201, summary="Start a draft")
async def create_draft(me: Me, _: Idempotent, body: Draft, sending: SendingPart, response: Response) -> dict[str, str]:
    draft_id, version = await sending.save_draft(me.person, body, tenant=me.tenant)
    tag(response, version)
    return {"id": draft_id}


@router.put("/drafts/{message}", summary="Save a draft again (as you type)")
async def save_draft(
    me: Me, message: MessagePath, body: Draft, sending: SendingPart, read_version: IfMatch, response: Response
) -> dict[str, str]:
    draft_id, version = await sending.save_draft(
        me.person, body, tenant=me.tenant, draft_id=message, expected_version=read_version
    )
    tag(response, version)
    return {"id": draft_id}


@router.delete("/drafts/{message}", status_code=204, summary="Throw a draft away")
async def delete_draft(me: Me, message: MessagePath, sending: SendingPart) -> Response:
    await sending.delete_draft(me.person, message)
    return Response(status_code=204)


@router.post("/drafts/{message}/send", status_code=201, summary="Send a draft now (or at `send_at`)")
async def send_draft(
    me: Me,
    _: Idempotent,
    message: MessagePath,
    response: Response,
    sending: SendingPart,
    uses: Told,
    body: SendLater | None = None,
) -> Sent:
    sent = await sending.send_draft(me.person, message, tenant=me.tenant, send_at=body.send_at if body else None)
    uses.of(Kind.KIND_MAIL_SENT, me.principal, service="messagerie")
    if sent.state == "scheduled":
        response.status_code = 202
    return sent


@router.post(
    "/drafts/{message}/attachments",
    status_code=201,
    summary="Attach a file to a draft: the request body is the file, `name` its name",
)
async def attach(
    request: Request,
    me: Me,
    message: MessagePath,
    name: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")],
    sending: SendingPart,
) -> Attachment:
    found = await sending.attach(me.person, message, name=name, body=request.stream(), tenant=me.tenant)
    return Attachment(**found)


@router.delete("/drafts/{message}/attachments/{attachment}", status_code=204, summary="Take a file off a draft")
async def detach(me: Me, message: MessagePath, attachment: AttachmentPath, sending: SendingPart) -> Response:
    await sending.detach(me.person, message, attachment)
    return Response(status_code=204)

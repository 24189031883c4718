"""The messaging service's HTTP API (thin: each route is one call of the mailbox or of sending)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request

from maille_kit.app import part
from maille_kit.auth import Principal, require
from maille_kit.problems import Problem
from maille_messaging.mailbox import Mailbox
from maille_messaging.schemas import FOLDER_ID, MESSAGE_ID
from maille_messaging.sending import Sending


@dataclass(frozen=True)
class Caller:
    """The signed-in person and their tenant."""

    person: str
    tenant: str
    principal: Principal


async def caller(request: Request, principal: Annotated[Principal, Depends(require())]) -> Caller:
    if principal.person_id is None:
        raise Problem(403, "the mailbox is a signed-in person's: this token speaks for no person of the directory")
    tenant = principal.claims.get("tenant")
    return Caller(
        person=principal.person_id,
        tenant=tenant if isinstance(tenant, str) and tenant else request.app.state.runtime.settings.tenant,
        principal=principal,
    )


Me = Annotated[Caller, Depends(caller)]
MessagePath = Annotated[str, Path(pattern=MESSAGE_ID, description="a message id (22 hex digits)")]
FolderPath = Annotated[
    str,
    Path(
        pattern=FOLDER_ID, description="inbox, sent, drafts, scheduled, trash, or a folder of yours (f + 8 hex digits)"
    ),
]
AttachmentPath = Annotated[str, Path(pattern=r"^a[0-9a-f]{20}$", description="an attachment id")]

# The service's parts a route asks for (made at start: maille_messaging.main.parts).
MailboxPart = Annotated[Mailbox, part(Mailbox)]
SendingPart = Annotated[Sending, part(Sending)]

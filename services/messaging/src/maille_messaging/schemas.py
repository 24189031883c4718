"""The messaging service's shapes: ids, recipients, messages, folders and pages, as the API speaks them.

A message id is time-ordered (12 hex digits of milliseconds since the epoch, then 10 random ones), so that
a mailbox sorts by it, and it names the month a copy is indexed under (see repository.py).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

MESSAGE_ID = r"^[0-9a-f]{22}$"
PERSON_ID = r"^[A-Za-z0-9_-]{1,64}$"
GROUP_ID = r"^[A-Za-z0-9$_-]{1,80}/(ELV|ENS|TUT|PERS|DIR|HT)$"
FOLDER_ID = r"^(inbox|sent|drafts|trash|scheduled|f[0-9a-f]{8})$"
LIST_ID = r"^l[0-9a-f]{8}$"
SYSTEM_FOLDERS = ("inbox", "sent", "drafts", "scheduled", "trash")
FOLDER_NAMES = {
    "inbox": "Boîte de réception",
    "sent": "Envoyés",
    "drafts": "Brouillons",
    "scheduled": "Envois programmés",
    "trash": "Corbeille",
}

MessageId = Annotated[str, StringConstraints(pattern=MESSAGE_ID)]
FolderId = Annotated[str, StringConstraints(pattern=FOLDER_ID)]


def new_message_id(at: float | None = None) -> str:
    """A new message id, ordered by time."""
    ms = int((time.time() if at is None else at) * 1000)
    return f"{ms:012x}{os.urandom(5).hex()}"


def message_time(message_id: str) -> datetime:
    """When a message id was made."""
    return datetime.fromtimestamp(int(message_id[:12], 16) / 1000, UTC)


class Recipient(BaseModel):
    """Someone a message goes to: a person, a group of the communication rules, or one of the sender's lists."""

    model_config = {"extra": "forbid"}
    type: Literal["person", "group", "list"]
    id: str = Field(min_length=1, max_length=80)
    name: str | None = Field(None, description="set by the service: the person's or group's name")

    @model_validator(mode="after")
    def _id_shape(self) -> Recipient:
        import re

        pattern = {"person": PERSON_ID, "group": GROUP_ID, "list": LIST_ID}[self.type]
        if not re.match(pattern, self.id):
            raise ValueError(f"{self.id!r} is not a {self.type} id")
        return self


Recipients = Annotated[list[Recipient], Field(max_length=500)]


class Draft(BaseModel):
    """What a sender writes: recipients, subject, body (HTML, sanitised when stored)."""

    model_config = {"extra": "forbid"}
    to: Recipients = []
    cc: Recipients = []
    bcc: Recipients = []
    subject: str = Field("", max_length=255)
    body: str = Field("", description="HTML; scripts, event handlers and unsafe links are removed when stored")
    in_reply_to: MessageId | None = Field(None, description="the message this answers (one the sender holds)")

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return " ".join(value.split())

    def recipients(self) -> list[Recipient]:
        return [*self.to, *self.cc, *self.bcc]


class Outgoing(Draft):
    """A message to send now or later."""

    send_at: datetime | None = Field(None, description="send later, at this time (with a time zone); absent: now")

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("send_at needs a time zone (e.g. 2026-12-03T08:00:00+01:00)")
        return value


class SendLater(BaseModel):
    model_config = {"extra": "forbid"}
    send_at: datetime | None = None

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return Outgoing._aware(value)


class Sent(BaseModel):
    id: str
    thread: str
    state: Literal["sent", "scheduled"]
    recipients: int = Field(description="persons it reached (or will reach), groups expanded")
    send_at: datetime | None = None


class Attachment(BaseModel):
    id: str
    name: str
    type: str = Field(description="the type found in the content (not the name's extension)")
    size: int


class Correspondent(BaseModel):
    id: str
    name: str


class Entry(BaseModel):
    """A message as a folder lists it."""

    id: str
    thread: str
    folder: str
    unread: bool
    at: datetime
    sender: Correspondent
    to: str = Field(description="the recipients as one line")
    subject: str
    snippet: str
    attachments: int


class Page(BaseModel):
    entries: list[Entry]
    next: str | None = Field(None, description="cursor of the next page; absent on the last")


class Message(BaseModel):
    """A message as its holder reads it."""

    id: str
    thread: str
    state: Literal["draft", "scheduled", "sent"]
    folder: str
    unread: bool
    sender: Correspondent
    to: list[Recipient]
    cc: list[Recipient]
    bcc: list[Recipient] = Field(description="only the sender sees them")
    subject: str
    body: str
    attachments: list[Attachment]
    in_reply_to: str | None = None
    at: datetime
    send_at: datetime | None = None
    version: int | None = Field(None, description="a draft's version, also its ETag (to save it with If-Match)")


class Quota(BaseModel):
    """The space a person's files take in the mail, and how much they may take."""

    used: int = Field(description="bytes of files in the person's drafts and sent messages")
    limit: int = Field(description="bytes they may take in all")


class Folder(BaseModel):
    id: str
    name: str
    parent: str | None = None
    system: bool
    total: int
    unread: int


class FolderIn(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=100)
    parent: str | None = Field(None, pattern=r"^f[0-9a-f]{8}$")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("a folder needs a name")
        return value


class FolderRename(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=100)


Ids = Annotated[list[MessageId], Field(min_length=1, max_length=500)]


class Marks(BaseModel):
    model_config = {"extra": "forbid"}
    ids: Ids
    unread: bool = False


class Move(BaseModel):
    model_config = {"extra": "forbid"}
    ids: Ids
    folder: FolderId


class Selection(BaseModel):
    model_config = {"extra": "forbid"}
    ids: Ids


class Changed(BaseModel):
    changed: int = Field(description="messages whose state changed")
    missing: list[str] = Field(description="ids not in your mailbox (or not where the action applies)")


class Recall(BaseModel):
    recalled: int = Field(description="copies taken back, still unread")
    kept: int = Field(description="copies already read (or deleted), left where they are")


class Visible(BaseModel):
    type: Literal["person", "group", "list"]
    id: str
    name: str
    profiles: list[str] = []
    size: int | None = None


class ListIn(BaseModel):
    """A person's own list of correspondents (a manual group), checked against the rules at each send."""

    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=100)
    members: list[Annotated[str, StringConstraints(pattern=PERSON_ID)]] = Field(min_length=1, max_length=1000)


class PersonList(ListIn):
    id: str

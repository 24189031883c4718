"""What the timeline's routes take and give."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from maille_timeline.kinds import Channel

NOTE_ID = r"^[0-9]{16}[0-9a-f]{12}$"


class Notification(BaseModel):
    id: str = Field(description="the notification's id (its time and a digest)")
    kind: str = Field(description="mail, mediacentre, library, news or admin")
    title: str
    text: str
    link: str = Field(description="where it leads in the portal")
    at: datetime
    read: bool


class FeedPage(BaseModel):
    items: list[Notification]
    unread: int = Field(description="notifications not read yet, in the whole feed")
    next: str | None = Field(description="`before` for the next page; none on the last")


class Unread(BaseModel):
    unread: int


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] | None = Field(
        None, max_length=500, description="the notifications read; none: every notification of the feed"
    )


class Preference(BaseModel):
    kind: str
    label: str = Field(description="what it is about, in French")
    channel: Channel = Field(description="how the person is told now")
    default: Channel = Field(description="how their profile is told when they choose nothing")
    chosen: bool = Field(description="whether the person chose it")


class ChannelWords(BaseModel):
    channel: Channel
    label: str


class Preferences(BaseModel):
    kinds: list[Preference]
    channels: list[ChannelWords] = Field(description="the ways of telling, in French")
    email: str | None = Field(description="where e-mails go (the directory's address); none: no e-mail can be sent")


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kinds: dict[str, str] = Field(
        max_length=20, description="kind -> portal, immediate, digest or off (the kinds not named stay as they are)"
    )


class Unsubscribed(BaseModel):
    kinds: list[str] = Field(description="the kinds no longer sent by e-mail")
    message: str = Field(description="what was done, in French")

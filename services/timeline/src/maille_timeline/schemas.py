"""What the timeline's routes take and give."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

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


PROFILE = r"^National_[A-Z]{3}$"


class Audience(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["school", "group", "circonscription"]
    id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9$_.-]+$", description="UAI, group id or code")
    profiles: list[str] = Field(
        [], max_length=9, description="only these profiles of it (e.g. National_TUT: the parents); none: everyone"
    )

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: list[str]) -> list[str]:
        wrong = [p for p in value if not re.match(PROFILE, p)]
        if wrong:
            raise ValueError(f"{wrong[0]!r} is not a profile code (e.g. National_TUT)")
        return sorted(set(value))


class NewsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: Audience
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=20_000, description="plain text; blank lines make paragraphs")
    comments: bool = Field(False, description="readers may comment (shown once the publisher approves)")
    expires_at: AwareDatetime | None = Field(None, description="taken offline at this time")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("the title is empty")
        return value


class NewsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: Audience | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, max_length=20_000)
    comments: bool | None = None
    expires_at: AwareDatetime | None = None


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime | None = Field(None, description="publish at this time; none: now")


class NewsFile(BaseModel):
    id: str
    name: str
    type: str
    size: int


class Reach(BaseModel):
    profile: str
    reached: int = Field(description="persons of this profile it reached")
    read: int = Field(description="of them, those who have read it")


class Comment(BaseModel):
    id: str
    author_name: str
    text: str
    at: datetime
    approved: bool


class NewsItem(BaseModel):
    id: str
    audience: Audience
    title: str
    body: str
    author_name: str
    state: Literal["draft", "scheduled", "published", "withdrawn"]
    comments: bool
    files: list[NewsFile]
    publish_at: datetime | None = None
    published_at: datetime | None = None
    expires_at: datetime | None = None
    read: bool | None = Field(None, description="whether you have read it (on a news page)")
    comments_list: list[Comment] | None = Field(None, description="the comments shown to you")
    stats: list[Reach] | None = Field(None, description="for its publisher: who it reached, who read it")


class NewsPage(BaseModel):
    items: list[NewsItem]
    next: str | None


class Board(BaseModel):
    key: str = Field(description="`school:<UAI>`, `group:<id>` or `circonscription:<code>`")
    scope: str
    id: str
    name: str
    school: str | None = None


class Target(BaseModel):
    scope: str
    id: str
    name: str
    school: str | None = None


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)


class Moderation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approved: bool


class CirconscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    schools: list[str] = Field(max_length=500, description="UAIs")
    advisors: list[str] = Field([], max_length=100, description="person ids of its advisors (they publish)")

    @field_validator("schools")
    @classmethod
    def _uais(cls, value: list[str]) -> list[str]:
        wrong = [u for u in value if not re.fullmatch(r"[0-9]{7}[A-Z]", u)]
        if wrong:
            raise ValueError(f"{wrong[0]!r} is not a UAI (seven digits and a letter)")
        return value


class Circonscription(CirconscriptionIn):
    model_config = ConfigDict(extra="ignore")
    code: str


class SchoolAccountsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    persons: list[str] = Field(max_length=20, description="person ids that speak for the school")

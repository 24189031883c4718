"""What support's API takes and gives."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from maille_kit.uai import UAI_PATTERN as UAI

REQUEST_ID = r"^r[0-9]{13}[0-9a-f]{16}$"
ARTICLE_ID = r"^(a[0-9]{13}[0-9a-f]{8}|tuto-[a-z0-9-]{1,60})$"
DESK_ID = r"^[a-z0-9][a-z0-9-]{1,40}$"
FILE_ID = r"^f[0-9a-f]{20}$"
PERSON = Field(min_length=1, max_length=64)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextIn(Strict):
    """What the portal adds for the referent: the page the person was on, their browser, their last failed calls."""

    page: str = Field("", max_length=500)
    browser: str = Field("", max_length=300)
    failed_requests: list[str] = Field(default_factory=list, max_length=10)


class RequestIn(Strict):
    category: str = Field(min_length=1, max_length=40, description="account, resource, mail, library, equipment…")
    uai: str = Field(pattern=UAI, description="the school it concerns: one of the person's")
    subject: str = Field(min_length=3, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    context: ContextIn = Field(default_factory=ContextIn)


class FileOut(BaseModel):
    id: str
    name: str
    type: str
    size: int
    at: datetime | None = None


class MessageOut(BaseModel):
    id: str
    at: datetime
    author_name: str
    role: Literal["author", "referent", "agent", "tracker"]
    by: str = Field(description="the desk that answered, as the person reads it ('' for the person themselves)")
    text: str
    internal: bool


class RequestSummary(BaseModel):
    id: str
    subject: str
    category: str
    category_label: str
    status: str
    status_label: str
    uai: str
    school_name: str
    desk: str
    desk_name: str
    author_name: str
    profile: str
    assignee: str | None
    assignee_name: str | None
    opened_at: datetime
    updated_at: datetime
    overdue: Literal["first_answer", "resolution"] | None = None
    tracker_issue: int | None = None


class Can(BaseModel):
    reply: bool
    note: bool
    assign: bool
    escalate: bool
    statuses: list[str]


class RequestOut(RequestSummary):
    description: str
    context: ContextIn | None = Field(None, description="for those who handle it")
    files: list[FileOut]
    messages: list[MessageOut]
    can: Can


class RequestPage(BaseModel):
    items: list[RequestSummary]
    next: str | None
    counts: dict[str, int] = Field(
        default_factory=dict, description="by status, the requests to treat (new, open, waiting) the other filters keep"
    )


class ReplyIn(Strict):
    text: str = Field(min_length=1, max_length=20_000)
    internal: bool = Field(False, description="an internal note: never shown to the person")
    status: Literal["open", "waiting", "resolved", "closed"] | None = None


class StatusIn(Strict):
    status: Literal["open", "waiting", "resolved", "closed"]


class AssignIn(Strict):
    ids: list[str] = Field(min_length=1, max_length=200)
    assignee: str | None = Field(
        None, max_length=64, description="a person who handles them (`me`: oneself); none: nobody"
    )


class Assigned(BaseModel):
    assigned: int
    refused: dict[str, str]


class EscalateIn(Strict):
    to: str | None = Field(None, max_length=40, description="a desk's id, or academie, collectivite, platform")
    note: str = Field("", max_length=5000)


class ReferentsIn(Strict):
    persons: list[str] = Field(max_length=50)


class StaffMember(BaseModel):
    id: str
    name: str
    named: bool = Field(description="named a digital referent by the direction")


class RedmineIn(Strict):
    url: HttpUrl
    project: str = Field(min_length=1, max_length=100, description="the project's identifier")
    tracker_id: int | None = Field(None, ge=1, le=2**31 - 1)
    uai_field: int | None = Field(
        None, ge=1, le=2**31 - 1, description="the issue custom field holding the school's UAI"
    )
    reference_field: int = Field(
        ge=1, le=2**31 - 1, description="the issue custom field holding the request's id (searchable)"
    )
    api_key: str = Field("", max_length=200, description="the desk's Redmine user's API key; empty: keep the one kept")


class DeskIn(Strict):
    name: str = Field(min_length=2, max_length=120)
    kind: Literal["academie", "collectivite", "platform"]
    schools: list[str] = Field(default_factory=list, max_length=5000, description="UAIs; none: every school")
    agents: list[str] = Field(default_factory=list, max_length=500)
    first_answer_hours: float | None = Field(None, gt=0, le=720)
    resolution_hours: float | None = Field(None, gt=0, le=2160)
    redmine: RedmineIn | None = None


class RedmineOut(BaseModel):
    url: str
    project: str
    tracker_id: int | None
    uai_field: int | None
    reference_field: int


class DeskOut(BaseModel):
    id: str
    name: str
    kind: str
    schools: list[str]
    agents: list[str]
    first_answer_hours: float | None
    resolution_hours: float | None
    redmine: RedmineOut | None


class Choice(BaseModel):
    code: str
    label: str


class School(BaseModel):
    uai: str
    name: str


class DeskRef(BaseModel):
    id: str
    name: str
    kind: str


class Overview(BaseModel):
    """What the portal's help pages need to know of the person."""

    schools: list[School]
    categories: list[Choice]
    statuses: list[Choice]
    referent_of: list[School]
    directs: list[School] = Field(description="the schools whose referents the person names (their direction)")
    desks: list[DeskRef]
    writes: list[str] = Field(description="where the person writes articles: `academie` and/or UAIs")


class ArticleIn(Strict):
    title: str = Field(min_length=3, max_length=200)
    body: str = Field(min_length=1, max_length=50_000, description="Markdown")
    category: str = Field(min_length=1, max_length=40)
    profiles: list[str] = Field(default_factory=list, max_length=10, description="who it is for; none: everyone")
    scope: str = Field(pattern=r"^(academie|[0-9]{7}[A-Z])$", description="academie, or a school's UAI")
    tutorial: bool = False


class ArticleOut(BaseModel):
    id: str
    title: str
    category: str
    category_label: str
    profiles: list[str]
    scope: str
    author_name: str
    updated_at: datetime
    helped: int
    unhelped: int
    tutorial: bool
    body: str
    html: str


class ArticleHit(BaseModel):
    id: str
    title: str
    category: str
    category_label: str
    excerpt: str
    tutorial: bool
    helped: int


class VoteIn(Strict):
    helped: bool


class Figures(BaseModel):
    """What the observatory and the operators read: requests by category, school, desk and status, and the time to
    a first answer."""

    total: int
    by_category: dict[str, int]
    by_school: dict[str, int]
    by_desk: dict[str, int]
    by_status: dict[str, int]
    overdue: int
    first_answer_median_seconds: float | None

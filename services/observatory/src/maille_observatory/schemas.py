"""What the observatory's API takes and gives."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCOPE_ID = (
    r"^(academie|school:[0-9]{7}[A-Z]|type:[A-Z_]{2,20}"
    r"|district:[a-z0-9][a-z0-9-]{1,40}|collectivite:[a-z0-9][a-z0-9-]{1,40})$"
)
TERRITORY_ID = r"^[a-z0-9][a-z0-9-]{1,40}$"
SCHOOL_YEAR = r"^20[0-9]{2}-20[0-9]{2}$"
CHARTS = Literal["active", "hours", "services", "signins", "vendors", "support", "parents", "schools"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeOut(BaseModel):
    id: str
    label: str
    kind: str


class Dashboard(BaseModel):
    """A scope's charts over a school year; each figure behind fewer than five persons left out (`secret`)."""

    scope: dict[str, str]
    school_year: str
    month: str
    months: list[str]
    population: list[dict[str, Any]]
    merged_at: float | None
    charts: dict[str, dict[str, Any]]


class TerritoryIn(Strict):
    kind: Literal["academie", "collectivite", "district"]
    name: str = Field(min_length=2, max_length=120)
    schools: list[str] = Field(default_factory=list, max_length=2000)
    viewers: list[str] = Field(
        default_factory=list, max_length=500, description="person ids (directory) of those who view its figures"
    )


class TerritoryOut(TerritoryIn):
    id: str


class Technical(BaseModel):
    """What an operator watches: the ingest and the stream, no figure of use."""

    folded: int
    rejected: dict[str, int]
    last_seq: int
    flushed_seq: int
    held: int
    uptime_seconds: int
    stream_messages: int | None
    stream_bytes: int | None
    pending: int | None
    schools: int
    persons: int

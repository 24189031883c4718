"""The library API's models (what routes take and give besides the connections' own, in connections.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from maille_library.pmb import Record


class Missing(BaseModel):
    uai: str
    reason: str


class Result(Record):
    """A record found, and the school whose CDI holds it."""

    uai: str


class SearchPage(BaseModel):
    q: str
    total: int
    page: int
    size: int
    results: list[Result]
    missing: list[Missing]


class ReservationIn(BaseModel):
    model_config = {"extra": "forbid"}
    recordId: int = Field(ge=1, le=2**31 - 1, description="the record (notice) to reserve, as search gives it")

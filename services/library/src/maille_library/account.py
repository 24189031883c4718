"""A reader's account in their schools' CDIs: loans (late, current, past) and reservations, placing and cancelling
one — through PMB's server-side sign-on (`login_token`), never asking the person for a PMB password. A reader is
their ENT person id in PMB (the `login` reader sync writes), unless the connection says otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from maille_kit.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from maille_library.connections import Connections
from maille_library.directory import Directory
from maille_library.pmb import PmbClient, PmbConnection, PmbError, PmbRefused, PmbUnavailable

T = TypeVar("T")
NO_ACCOUNT = "you have no reader account in this school's CDI"


def loan_of(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "recordId": int(raw.get("notice_id") or 0),
        "title": raw.get("expl_libelle") or "",
        "barcode": raw.get("expl_cb") or "",
        "location": raw.get("expl_location_caption") or "",
        "start": raw.get("loan_startdate") or None,
        "due": raw.get("loan_returndate") or None,
    }


def reservation_of(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(raw.get("resa_id") or 0),
        "recordId": int(raw.get("notice_id") or 0),
        "rank": int(raw.get("resa_rank") or 0),
        "until": raw.get("resa_dateend") or None,
        "location": raw.get("resa_location") or "",
    }


def reason_of(exc: PmbError) -> str:
    return NO_ACCOUNT if isinstance(exc, PmbRefused) and "Unknown reader" in exc.detail else exc.detail


async def _answered(call: Awaitable[T]) -> T:
    """A write to PMB on a person's behalf, its failures as problems: 503 unavailable, 409 no reader account, 422
    refused."""
    try:
        return await call
    except PmbUnavailable as exc:
        raise Unavailable(exc.detail, headers={"Retry-After": "30"}) from None
    except PmbRefused as exc:
        raise (Conflict if reason_of(exc) == NO_ACCOUNT else Invalid)(reason_of(exc)) from None


class Accounts:
    """Readers' accounts across their schools' PMBs."""

    def __init__(self, client: PmbClient, connections: Connections, directory: Directory, *, timeout: float) -> None:
        self.client = client
        self.connections = connections
        self.directory = directory
        self.timeout = timeout

    async def child_account(self, parent_id: str, child_id: str) -> dict[str, Any]:
        """A pupil's account as their parent reads it (what a parent is told of: loans due, late, reservations
        waiting); another's child is answered as one that does not exist."""
        child = await self.directory.reader(child_id)
        if child is None or parent_id not in child.get("parents", []):
            raise NotFound(f"no child {child_id} of yours")
        return await self.account(child_id)

    async def account(self, person_id: str) -> dict[str, Any]:
        schools = await self.directory.schools_of(person_id)
        answers = await asyncio.gather(*(self._school(uai, person_id) for uai in schools))
        found = [a for a in answers if "reason" not in a]
        return {"schools": found, "missing": [a for a in answers if "reason" in a]}

    async def _school(self, uai: str, person_id: str) -> dict[str, Any]:
        conn = await self.connections.get(uai)
        if conn is None:
            return {"uai": uai, "reason": "no PMB connection is registered for this school"}
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self.client.account(conn, person_id)
        except TimeoutError:
            return {"uai": uai, "reason": f"the school's PMB did not answer within {self.timeout:g} s"}
        except PmbError as exc:
            return {"uai": uai, "reason": reason_of(exc)}
        return {
            "uai": uai,
            **({"opac": f"/api/library/v1/schools/{uai}/opac"} if conn.opac_url else {}),
            "loans": {kind: [loan_of(x) for x in raw[kind]] for kind in ("late", "current", "past")},
            "reservations": [reservation_of(x) for x in raw["reservations"]],
        }

    async def connection(self, person_id: str, uai: str) -> PmbConnection:
        """The connection of one of the person's schools (403 not theirs, 404 none registered)."""
        if uai not in await self.directory.schools_of(person_id):
            raise Forbidden(f"you are not a member of school {uai}")
        conn = await self.connections.get(uai)
        if conn is None:
            raise NotFound(f"no PMB connection is registered for school {uai}")
        return conn

    async def reserve(self, person_id: str, uai: str, record_id: int) -> dict[str, Any]:
        conn = await self.connection(person_id, uai)
        answer = await _answered(self.client.reserve(conn, person_id, record_id))
        if not answer.get("status"):
            raise Conflict(f"PMB did not take the reservation: {answer.get('message') or 'no reason given'}")
        return {"id": int(answer.get("resa_id") or 0), "recordId": record_id, "message": answer.get("message") or ""}

    async def cancel(self, person_id: str, uai: str, resa_id: int) -> None:
        conn = await self.connection(person_id, uai)
        if not await _answered(self.client.cancel(conn, person_id, resa_id)):
            raise NotFound(f"you have no reservation {resa_id} in this school's CDI")

"""Who takes a request: a school's referents first — named by its principal, the holders of the functions the
operator counts as referents (`referent_functions`), and always its direction — then the desks an operator declares:
the académie's support and the collectivités' desks, each with its schools, its agents and its service levels, and
the platform's operators for a fault of Maille itself. A desk may be connected to its own Redmine (`redmine.py`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from maille_kit.errors import Conflict, Forbidden, Invalid, NotFound
from maille_kit.secretbox import SecretBox
from maille_support.categories import CATEGORIES, DESK_KINDS
from maille_support.repository import SupportRepository

Doc = dict[str, Any]
SCHOOL = "school"  # where a request is first: its school's referents


@dataclass(frozen=True)
class Level:
    """A service level: hours to a first answer, and to resolution (clocks stopped while waiting for the person)."""

    first_answer_hours: float
    resolution_hours: float


class Desks:
    """The operator-declared desks (kept in memory, read again every 30 s and when one changes here), and the
    schools' referents."""

    def __init__(
        self, repository: SupportRepository, box: SecretBox, *, school: Level, referent_functions: list[str]
    ) -> None:
        self.repository = repository
        self.box = box
        self.school = school
        self.referent_functions = list(referent_functions)
        self.by_id: dict[str, Doc] = {}
        self.read_at = 0.0

    async def load(self) -> dict[str, Doc]:
        self.by_id = {doc["_id"]: doc for doc in await self.repository.desks()}
        self.read_at = time.monotonic()
        return self.by_id

    async def fresh(self) -> dict[str, Doc]:
        if time.monotonic() - self.read_at > 30:
            await self.load()
        return self.by_id

    # declared by an operator

    async def put(self, desk_id: str, given: Doc) -> Doc:
        if given["kind"] not in DESK_KINDS:
            raise Invalid(f"a desk is one of {', '.join(DESK_KINDS)}", field="kind")
        before = (await self.fresh()).get(desk_id) or {}
        doc = {"_id": desk_id, **{k: v for k, v in given.items() if k != "redmine"}}
        redmine = given.get("redmine")
        if redmine:
            key = redmine.get("api_key") or ""
            if not key:
                key = self.box.open((before.get("redmine") or {}).get("api_key", ""), context=f"desk:{desk_id}")
            if not key:
                raise Invalid("a Redmine connection needs the API key of the desk's Redmine user", field="redmine")
            doc["redmine"] = {**redmine, "api_key": self.box.seal(key, context=f"desk:{desk_id}")}
        await self.repository.put_desk(doc)
        await self.load()
        return doc

    async def seal_again(self) -> int:
        """Each desk's Redmine key sealed under the current key (after a rotation, at start); how many were."""
        done = 0
        for desk in (await self.load()).values():
            redmine = desk.get("redmine") or {}
            if redmine.get("api_key") and not self.box.is_current(redmine["api_key"]):
                key = self.box.open(redmine["api_key"], context=f"desk:{desk['_id']}")
                sealed = {**desk, "redmine": {**redmine, "api_key": self.box.seal(key, context=f"desk:{desk['_id']}")}}
                await self.repository.put_desk(sealed)
                done += 1
        if done:
            await self.load()
        return done

    async def delete(self, desk_id: str) -> None:
        if not await self.repository.delete_desk(desk_id):
            raise NotFound(f"no desk {desk_id}")
        await self.load()

    def redmine_key(self, desk: Doc) -> str:
        return self.box.open((desk.get("redmine") or {}).get("api_key", ""), context=f"desk:{desk['_id']}")

    # who takes what

    def level(self, desk_id: str) -> Level:
        desk = self.by_id.get(desk_id)
        if desk is None:
            return self.school
        return Level(
            desk.get("first_answer_hours") or self.school.first_answer_hours,
            desk.get("resolution_hours") or self.school.resolution_hours,
        )

    def name(self, desk_id: str) -> str:
        if desk_id == SCHOOL:
            return "Référents numériques de l'établissement"
        desk = self.by_id.get(desk_id)
        return desk["name"] if desk else "Un support qui n'existe plus"

    def agent_of(self, person_id: str) -> list[Doc]:
        return [d for d in self.by_id.values() if person_id in d.get("agents", [])]

    def is_agent(self, person_id: str, desk_id: str) -> bool:
        return person_id in (self.by_id.get(desk_id) or {}).get("agents", [])

    def for_school(self, uai: str, kind: str) -> Doc:
        """The desk of that kind covering the school (a desk with no schools listed covers them all)."""
        found = [
            d
            for d in self.by_id.values()
            if d["kind"] == kind and (uai in d.get("schools", []) or not d.get("schools"))
        ]
        if not found:
            words: dict[str, str] = {str(k): v for k, v in DESK_KINDS.items()}
            raise Conflict(f"no desk ({words.get(kind, kind)}) is declared for the school {uai}")
        found.sort(key=lambda d: (not d.get("schools"), d["_id"]))  # the one naming the school first
        return found[0]

    def escalation(self, category: str, uai: str, to: str | None) -> Doc:
        """Where a request goes up: the desk named (`to`: a desk id or a kind), else its category's."""
        if to and to in self.by_id:
            desk = self.by_id[to]
            if desk.get("schools") and uai not in desk["schools"]:
                raise Forbidden(f"the desk {desk['name']} does not take the requests of the school {uai}")
            return desk
        return self.for_school(uai, to or CATEGORIES[category].escalates_to)

    async def referents(self, uai: str) -> list[str]:
        """Who takes a school's requests first and is told of them: the persons named by the principal; else the
        holders of a referent function; else the direction."""
        doc = await self.repository.referents(uai)
        if doc.get("named"):
            return list(doc["named"])
        by_function = [p for code in self.referent_functions for p in doc.get(f"function:{code}", [])]
        return list(dict.fromkeys(by_function)) or list(doc.get("direction", []))

    async def is_referent(self, person: Doc | None, uai: str) -> bool:
        if person is None or uai not in person.get("schools", {}):
            return False
        if directs(person, uai) or set(person.get("functions", {}).get(uai, [])) & set(self.referent_functions):
            return True
        return person["_id"] in (await self.repository.referents(uai)).get("named", [])

    async def staff(self, principal: Doc | None, uai: str) -> list[Doc]:
        """The school's staff, whom its direction may name referents (the direction only), by name."""
        if principal is None or not directs(principal, uai):
            raise Forbidden("only the school's direction names its digital referents")
        doc = await self.repository.referents(uai)
        known = await self.repository.persons_by_id(doc.get("staff", []))
        named = set(doc.get("named", []))
        return sorted(
            ({"id": p, "name": d.get("name") or p, "named": p in named} for p, d in known.items()),
            key=lambda s: str(s["name"]),
        )

    async def name_referents(self, principal: Doc | None, uai: str, persons: list[str]) -> list[str]:
        if principal is None or not directs(principal, uai):
            raise Forbidden("only the school's direction names its digital referents")
        staff = set((await self.repository.referents(uai)).get("staff", []))
        strangers = [p for p in persons if p not in staff]
        if strangers:
            raise Invalid(f"{strangers[0]} is not on the staff of the school {uai}", field="persons")
        await self.repository.name_referents(uai, list(dict.fromkeys(persons)))
        return persons


def directs(person: Doc, uai: str) -> bool:
    return "National_DIR" in person.get("schools", {}).get(uai, []) or "DIR" in person.get("functions", {}).get(uai, [])


def active_seconds(doc: Doc, now: datetime) -> float:
    """Seconds the request has spent at its current level, the clock stopped while it waited for the person."""
    since: datetime = doc["level_since"]
    spent = (now - since).total_seconds() - (doc.get("paused", 0.0) - doc.get("level_paused", 0.0))
    if doc.get("status") == "waiting" and doc.get("waiting_since"):
        spent -= (now - doc["waiting_since"]).total_seconds()
    return max(spent, 0.0)


def overdue(doc: Doc, level: Level, now: datetime) -> str | None:
    """Which clock a request has passed at its level: `first_answer`, `resolution`, or None."""
    if doc.get("status") not in ("new", "open", "waiting"):
        return None
    spent = active_seconds(doc, now)
    if not doc.get("level_answered") and spent > level.first_answer_hours * 3600:
        return "first_answer"
    if spent > level.resolution_hours * 3600:
        return "resolution"
    return None

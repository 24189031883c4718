"""A school's administrators: its principal (function DIR in the directory) and the persons of the school the
principal delegates to (a deputy, the digital referent). They manage their own school — its communication
rules, its imports — and no other; the platform's operators (role `operator`) manage every school."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from maille_identity.directory.repository import DirectoryRepository
from maille_kit.auth import Principal

Doc = dict[str, Any]


class NotAdministrator(PermissionError):
    """The caller may not administer this school."""


class NotOfTheSchool(ValueError):
    """A delegate must be a person of the school."""


def _of_school(person: Doc | None, uai: str) -> bool:
    return (
        person is not None
        and "detached_at" not in person
        and any(p["structure"] == uai for p in person.get("profiles", []))
    )


def heads(person: Doc | None, uai: str) -> bool:
    """Whether the person is the school's principal (the function DIR there in the directory)."""
    return (
        person is not None
        and _of_school(person, uai)
        and any(f["structure"] == uai and f["code"] == "DIR" for f in person.get("functions", []))
    )


class SchoolAdmins:
    """Who administers which school."""

    def __init__(self, directory: DirectoryRepository, *, tenant: str) -> None:
        self.directory = directory
        self.tenant = tenant

    async def check(self, caller: Principal, uai: str, *, delegating: bool = False) -> None:
        """NotAdministrator unless the caller is an operator, the school's principal, or (unless `delegating`:
        only a principal delegates) one of their delegates."""
        if "operator" in caller.roles:
            return
        person_id = caller.person_id  # written by identity alone on the account (see docs/security.md)
        person = await self.directory.person(person_id) if person_id else None
        if heads(person, uai):
            return
        if (
            not delegating
            and _of_school(person, uai)
            and await self.directory.is_delegate(self.tenant, uai, person_id or "")
        ):
            return
        raise NotAdministrator(
            f"only the principal of {uai}" + ("" if delegating else ", their delegates") + " or an operator may do this"
        )

    async def listed(self, uai: str) -> Doc:
        """The school's principals and delegates, by name."""
        principals = [p for p in await self.directory.principals(self.tenant, uai) if heads(p, uai)]
        delegates = await self.directory.delegates(self.tenant, uai)
        persons = {p["_id"]: p for p in await self.directory.persons_by_id([d["person"] for d in delegates])}
        return {
            "uai": uai,
            "principals": [_named(p) for p in principals],
            "delegates": [
                {**_named(persons[d["person"]]), "by": d["by"], "at": d["at"]}
                for d in delegates
                if _of_school(persons.get(d["person"]), uai)
            ],
        }

    async def delegate(self, uai: str, person_id: str, *, by: Principal) -> None:
        if not _of_school(await self.directory.person(person_id), uai):
            raise NotOfTheSchool(f"{person_id} is not a person of {uai}")
        await self.directory.put_delegate(
            self.tenant, uai, person_id, by=by.person_id or by.client_id or by.subject, at=datetime.now(UTC)
        )

    async def withdraw(self, uai: str, person_id: str) -> bool:
        return await self.directory.remove_delegate(self.tenant, uai, person_id)


def _named(person: Doc) -> Doc:
    return {"id": person["_id"], "first_name": person.get("first_name", ""), "last_name": person.get("last_name", "")}

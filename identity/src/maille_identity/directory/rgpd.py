"""RGPD: what identity holds on one person, exported whole; and erasure, told to every service.

Erasure removes the person from the directory at once (not after a grace period), drops them from
their parents' and children's links, and publishes `identity.person.deleted.v1` with `erased` set, so
that every service erases what it holds too. The import state is marked stale: the next import
rebuilds it from the directory, and the person comes back only if a later feed brings them again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_DELETED, PERSON_UPDATED
from maille_identity.directory.importer import person_message
from maille_identity.directory.repository import PERSONS, DirectoryRepository
from maille_identity.events import EventBatch

Doc = dict[str, Any]


class NoSuchPerson(LookupError):
    """No person with that id in the tenant's directory."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


async def export_person(repository: DirectoryRepository, *, tenant: str, person_id: str) -> Doc:
    """Everything identity holds on one person, as JSON-ready data (internal digests left out)."""
    person = await repository.person(person_id)
    if person is None or person.get("tenant") != tenant:
        raise NoSuchPerson(person_id)
    related = await repository.persons_by_id(
        [*person.get("children", []), *(r["person"] for r in person.get("relatives", []))]
    )
    names = {doc["_id"]: f"{doc.get('first_name', '')} {doc.get('last_name', '')}".strip() for doc in related}
    held = {k: v for k, v in person.items() if k not in ("h",)}
    return {
        "service": "identity",
        "exported_at": datetime.now(UTC).isoformat(),
        "person": _jsonable(held),
        "related_persons": names,
    }


async def erase_person(repository: DirectoryRepository, events: EventBatch, *, tenant: str, person_id: str) -> None:
    """Erase one person now and tell every service (one unit of work: the erasure and its events together)."""
    person = await repository.person(person_id)
    if person is None or person.get("tenant") != tenant:
        raise NoSuchPerson(person_id)
    await repository.invalidate_snapshot(tenant)
    linked = [*person.get("children", []), *(r["person"] for r in person.get("relatives", []))]
    updates: list[Doc] = []
    for other in await repository.persons_by_id(linked):
        other["children"] = [c for c in other.get("children", []) if c != person_id]
        other["relatives"] = [r for r in other.get("relatives", []) if r["person"] != person_id]
        other["h"] = "erasure:" + person_id
        other["updated_at"] = datetime.now(UTC)
        updates.append(other)
        events.add(PERSON_UPDATED, pb.PersonUpdated(person=person_message(other)))
    events.add(PERSON_DELETED, pb.PersonDeleted(id=person_id, erased=True))
    work = events.work()
    for other in updates:
        work.put(PERSONS, other)
    await events.commit(work.delete(PERSONS, {"_id": person_id}))

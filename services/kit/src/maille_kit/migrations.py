"""A service's data changes between versions, as numbered steps: each applied once, in order, when the service
declares what it owns — by the bootstrap Job before an upgrade rolls the pods (`python -m maille_kit.bootstrap`),
and by any replica that starts on data older than its code (`make run`'s own data). A step interrupted half-way
runs again from the start: each must be idempotent (a `$rename` of fields already renamed does nothing)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pymongo
from pymongo.errors import DuplicateKeyError

from maille_kit.docstore import Docstore

log = logging.getLogger("maille.migrations")
COLLECTION = "migrations"  # _id: a step's version; when it was applied
STEP_SECONDS = 1800.0  # a step may read a whole collection: not the deadline of a request


@dataclass(frozen=True)
class Migration:
    """One step: its number (1, 2, …, never reused), what it does, and how."""

    version: int
    name: str
    apply: Callable[[Docstore], Awaitable[None]]


async def migrate(docstore: Docstore, steps: Sequence[Migration], *, seconds: float = STEP_SECONDS) -> list[int]:
    """Apply the steps not yet applied, in order, each within `seconds`; the versions applied now."""
    versions = [step.version for step in steps]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version: {sorted(versions)}")
    done = {doc["_id"] async for doc in docstore.db[COLLECTION].find({}, {"_id": 1})}
    applied = []
    for step in sorted(steps, key=lambda s: s.version):
        if step.version in done:
            continue
        log.info("migration %d (%s): applying", step.version, step.name)
        with pymongo.timeout(seconds):
            await step.apply(docstore)
        try:
            await docstore.db[COLLECTION].insert_one({"_id": step.version, "name": step.name, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass  # another replica finished it too (the step is idempotent)
        applied.append(step.version)
    return applied

"""The docstore client: one `AsyncMongoClient` per process, one database per service, indexes made at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import pymongo
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from maille_kit.settings import ServiceSettings, redact_url
from maille_kit.telemetry import CALL_SECONDS, meter

log = logging.getLogger("maille.docstore")

DEFAULT_TIMEOUT = 10.0
BATCH_CALL_SECONDS = 120.0  # an operator command's call: a feed's bulk writes, an export's reads
PROBE = "readiness"  # one document, read by `ping`

# collection name -> the indexes it needs
Indexes = Mapping[str, Sequence[IndexModel]]


async def insert_missing(collection: Any, docs: Sequence[Mapping[str, Any]]) -> None:
    """Insert `docs`, leaving as it is each one whose `_id` is there already (a write done again after a failure)."""
    try:
        await collection.insert_many(list(docs), ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
            raise


IDS_AT_ONCE = 1000  # the docstore narrows an `_id $in` of up to this many keys by its index (tools/docstore/patches)


async def by_ids(
    collection: Any, ids: Sequence[str], projection: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Documents by `_id`, up to a thousand keys a query. (FerretDB v1 as released read the whole collection for an
    `_id $in` — 6.7 s for 1,000 of 100,000 documents; the docstore's patch looks each key up in its index.)"""
    found: dict[str, dict[str, Any]] = {}
    keys = list(dict.fromkeys(ids))
    for start in range(0, len(keys), IDS_AT_ONCE):
        async for doc in collection.find({"_id": {"$in": keys[start : start + IDS_AT_ONCE]}}, projection):
            found[doc["_id"]] = doc
    return found


class _Timed(monitoring.CommandListener):
    """Each docstore command's duration, by command and outcome (`maille.docstore.duration`)."""

    def __init__(self) -> None:
        self._duration = meter().create_histogram(
            "maille.docstore.duration",
            unit="s",
            description="duration of docstore commands",
            explicit_bucket_boundaries_advisory=CALL_SECONDS,
        )
        # One set of labels per command name and outcome, made once (a dict per command would cost more).
        self._labels: dict[tuple[str, str], dict[str, str]] = {}

    def _record(self, command: str, outcome: str, micros: int) -> None:
        labels = self._labels.get((command, outcome))
        if labels is None:
            labels = self._labels.setdefault((command, outcome), {"command": command, "outcome": outcome})
        self._duration.record(micros / 1e6, labels)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._record(event.command_name, "ok", event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._record(event.command_name, "error", event.duration_micros)


_TIMED: _Timed | None = None


def _timed() -> _Timed:
    global _TIMED
    if _TIMED is None:
        _TIMED = _Timed()
    return _TIMED


class Docstore:
    """A service's own database on a MongoDB-wire server.

    Writes go through `writing()`. On FerretDB's SQLite backend (the developer's and CI's docstore)
    two writes at once to one database make SQLite's busy handler sleep for 1 to 100 ms, so there the
    service's writes take turns in the process instead; on MongoDB `writing()` does nothing.
    """

    def __init__(self, url: str, database: str, *, app_name: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = redact_url(url)
        # Every call has a deadline: `timeoutMS` bounds each operation on the client (connection checkout,
        # server selection, the round trip) and is sent to the server as its `maxTimeMS`; a cursor gets it for each
        # batch it fetches. Batch commands make their client with a longer `timeout`.
        self.timeout = timeout
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url,
            appname=app_name,
            tz_aware=True,
            uuidRepresentation="standard",
            serverSelectionTimeoutMS=5000,
            connectTimeoutMS=3000,
            timeoutMS=int(timeout * 1000),
            event_listeners=[_timed()],
        )
        self.db: AsyncDatabase[dict[str, Any]] = self.client[database]
        self._write_turns: asyncio.Lock | None = None

    @classmethod
    def for_command(cls, settings: ServiceSettings, command: str) -> Docstore:
        """The service's database for one of its operator commands (`maille-identity import-aaf`…): a batch job's
        calls may take longer than a request's (`BATCH_CALL_SECONDS`), never forever."""
        return cls(
            settings.mongodb_url.get_secret_value(),
            settings.database_name,
            app_name=f"maille-{settings.service_name}-{command}",
            timeout=max(settings.docstore_timeout, BATCH_CALL_SECONDS),
        )

    async def detect(self) -> None:
        """Learn whether writes must take turns (FerretDB on SQLite) from the server itself; leave the probe
        document that `ping` reads."""
        info = await self.client.admin.command("buildInfo")
        if "ferretdbVersion" in info:
            self._write_turns = asyncio.Lock()
        await self.db[PROBE].update_one({"_id": "probe"}, {"$setOnInsert": {"_id": "probe"}}, upsert=True)

    def writing(self) -> AbstractAsyncContextManager[object]:
        """Hold this around a write (see the class docstring)."""
        return self._write_turns if self._write_turns is not None else nullcontext()

    async def ping(self, timeout: float = 2) -> bool:
        """Whether the service's database answers a read within `timeout` seconds. A `ping` command would
        not do: a server whose storage is stuck still answers it (FerretDB answers without touching SQLite)."""
        try:
            with pymongo.timeout(timeout):
                await self.db[PROBE].find_one({"_id": "probe"})
        except Exception:
            return False
        return True

    async def server_version(self) -> str | None:
        """The server's version and, for FerretDB, its own version."""
        info = await self.client.admin.command("buildInfo")
        ferretdb = info.get("ferretdbVersion")
        return f"{info.get('version')} (FerretDB {ferretdb})" if ferretdb else info.get("version")

    async def ensure_indexes(self, indexes: Indexes) -> None:
        """Create the indexes each collection needs (creating the same index twice changes nothing)."""
        for collection, models in indexes.items():
            if not models:
                continue
            # Only the missing ones, one at a time: FerretDB v1 panics (and drops the connection) when asked to
            # create several indexes of which some exist already — every restart of a service would fail.
            existing = {index["name"] async for index in await self.db[collection].list_indexes()}
            for model in models:
                if model.document["name"] not in existing:
                    await self.db[collection].create_indexes([model])

    async def close(self) -> None:
        """Close the connections."""
        await self.client.close()

"""The visibles service over NATS request/reply: `rpc.identity.rules.can_write.v1`,
`rpc.identity.rules.visibles.v1` and `rpc.identity.rules.resolve.v1` (contracts in
proto/maille/identity/v1/rules.proto), answered by any
one replica of identity (queue group `identity`). Requests live under `rpc.`: a service's stream owns
`<service>.>` for its events and must not capture them.

Each tenant's directory is loaded from the docstore on the first request for it, then kept current
from identity's own person events (every replica hears them all). Those arrive on core NATS: a replica
cut off for a moment misses what was published meanwhile. So each replica reads its tenants again after
every reconnection and every `refresh_seconds`, in the background, a batch of persons at a time, and changes
in its copy only what differs (a person heard of meanwhile keeps what their event said). A tenant is read whole
the first time: at start, when its first import's events come, or on its first request.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError
from nats import micro
from nats.aio.msg import Msg
from nats.micro.request import Request
from nats.micro.service import Service
from opentelemetry import trace

from maille.identity.v1 import directory_pb2 as directory
from maille.identity.v1 import rules_pb2 as pb
from maille_contracts import (
    CAN_WRITE,
    GROUP_DELETED,
    PERSON_DELETED,
    RESOLVE,
    RULES_CHANGED,
    STRUCTURE_DELETED,
    VISIBLES,
)
from maille_identity import __version__
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.rules.model import DEFAULT_RULES, Member, Rules
from maille_identity.rules.repository import RulesStore
from maille_identity.rules.visibles import UnknownPerson, Visibles, member_from_doc
from maille_kit.bus import Bus
from maille_kit.events import MalformedEvent, decode
from maille_kit.telemetry import extract_context, tracer

SERVICE_NAME = "identity-rules"
log = logging.getLogger("maille.identity.rules")

MAX_LIMIT = 500


def _retrieved(task: asyncio.Task[Any]) -> None:
    """A read that failed is asked again by the next request; its error is not left unretrieved."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("visibles not read: %s", task.exception())


def member_from_event(person: directory.Person) -> Member:
    return Member(
        id=person.id,
        last_name=person.last_name,
        first_name=person.first_name,
        kind=_kind(person),
        profiles={p.uai: p.code for p in person.profiles},
        classes=tuple(person.group_ids),
        head_of=tuple(person.head_teacher_of),
        children=tuple(person.children),
    )


def _kind(person: directory.Person) -> str:
    codes = {p.code for p in person.profiles}
    if "National_ELV" in codes:
        return "pupil"
    if "National_TUT" in codes or person.children:
        return "parent"
    return "staff"


class VisiblesService:
    """Answers the rules' requests from each tenant's in-memory directory."""

    def __init__(
        self, bus: Bus, repository: DirectoryRepository, rules: RulesStore, *, refresh_seconds: float = 900
    ) -> None:
        self.bus = bus
        self.repo = repository
        self.rules = rules
        self.refresh_seconds = refresh_seconds
        self._overrides: dict[str, dict[str, Rules]] = {}
        self._tenants: dict[str, Visibles] = {}
        self._loading: dict[str, asyncio.Task[Visibles]] = {}
        self._subscriptions: list[Any] = []
        self._persons_seen = 0
        self._replays: dict[
            str, list[Callable[[Visibles], None]]
        ] = {}  # per tenant being read the first time: what came meanwhile
        self._touched: dict[str, set[str]] = {}  # per tenant being read again: the persons heard of meanwhile
        self._refreshing: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[None] | None = None
        self._service: Service | None = None

    async def start(self) -> None:
        nc = self.bus.nc
        assert nc is not None
        # The rules' requests: a NATS micro service (discovery, stats and errors in headers, `nats micro info
        # identity-rules`), each endpoint answered by one replica of the queue group.
        self._service = await micro.add_service(
            nc, name=SERVICE_NAME, version=__version__, description="who may write to whom", queue_group="identity"
        )
        for rpc, handler in ((CAN_WRITE, self._can_write), (VISIBLES, self._visibles), (RESOLVE, self._resolve)):
            await self._service.add_endpoint(name=rpc.split(".")[3], subject=rpc, handler=handler)
        self._subscriptions = [
            await nc.subscribe("identity.structure.>", cb=self._names_event),
            await nc.subscribe("identity.group.>", cb=self._names_event),
            await nc.subscribe("identity.person.>", cb=self._person_event),  # every replica: no queue
            await nc.subscribe(RULES_CHANGED, cb=self._rules_event),
        ]
        await nc.flush()  # the server knows the subscriptions before the service says it has started
        self.bus.on_reconnect(self.refresh_soon)
        self._timer = asyncio.create_task(self._refresh_every(), name="visibles-refresh-timer")
        self._warming = asyncio.create_task(self._warm(), name="visibles-warm")

    async def _warm(self) -> None:
        """Read every tenant the directory holds now, in the background: a tenant's first read takes seconds
        (7 s for 19,000 persons), longer than a caller of the rules waits for an answer."""
        try:
            for tenant in await self.repo.imported_tenants():
                self._load_soon(tenant)
        except Exception as exc:  # the docstore away at start: each tenant is then read on its first request
            log.warning("visibles not read at start: %s", exc)

    async def stop(self) -> None:
        for task in (self._timer, self._refreshing, self._warming, *self._loading.values()):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._service is not None:
            await self._service.stop()
        for subscription in self._subscriptions:
            await subscription.unsubscribe()

    def refresh_soon(self) -> None:
        """Read every loaded tenant again, in the background (once at a time)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self.refresh(), name="visibles-refresh")

    async def refresh(self) -> None:
        """Read every loaded tenant again from the docstore, a batch of persons at a time, and change in the copy in
        hand only what differs: no second copy of a region's directory in memory while it is read."""
        for tenant in list(self._tenants):
            visibles, touched = self._tenants[tenant], set[str]()
            self._touched[tenant] = touched
            try:
                changed = await self._catch_up(tenant, visibles, touched)
            except Exception as exc:  # the docstore away: the copy in hand goes on serving; the next round reads again
                log.warning("visibles of %s not read again: %s", tenant, exc)
                continue
            finally:
                self._touched.pop(tenant, None)
            log.info(
                "visibles read again",
                extra={
                    "tenant": tenant,
                    "persons": len(visibles.members),
                    "changed": changed,
                    "heard_meanwhile": len(touched),
                },
            )

    async def _catch_up(self, tenant: str, visibles: Visibles, touched: set[str]) -> int:
        """Put in `visibles` what the docstore says and it does not; persons heard of meanwhile (`touched`) are left
        as their event said (the event is the newer)."""
        fresh = await self.rules.overrides(tenant)
        overrides = self._overrides[tenant]  # the dict `visibles.rules_of` reads
        if fresh != overrides:
            overrides.clear()
            overrides.update(fresh)
            visibles.rules_changed()
        structures = {doc["_id"]: doc.get("name", doc["_id"]) for doc in await self.repo.structures(tenant)}
        for uai in set(visibles.structure_names) - set(structures):
            visibles.name_structure(uai, None)
        for uai, name in structures.items():
            visibles.name_structure(uai, name)
        groups = {doc["_id"]: doc.get("label") or doc.get("code", doc["_id"]) for doc in await self.repo.groups(tenant)}
        for group_id in set(visibles.group_labels) - set(groups):
            visibles.name_group(group_id, None)
        for group_id, label in groups.items():
            visibles.name_group(group_id, label)
        seen: set[str] = set()
        changed = 0
        async for doc in self.repo.stream_persons(tenant):
            seen.add(doc["_id"])
            if doc["_id"] in touched:
                continue
            member, old = member_from_doc(doc), visibles.members.get(doc["_id"])
            if old is None or dataclasses.replace(member, groups=old.groups) != old:
                visibles.put(member)
                changed += 1
        for person_id in set(visibles.members) - seen - touched:
            visibles.remove(person_id)
            changed += 1
        return changed

    async def _refresh_every(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            self.refresh_soon()

    def _apply(self, tenant: str, change: Callable[[Visibles], None], person_id: str | None = None) -> None:
        """A change heard from an event, to the tenant's copy in hand and to the one being read, if any."""
        visibles = self._tenants.get(tenant)
        if visibles is not None:
            change(visibles)
        if tenant in self._replays:
            self._replays[tenant].append(change)
        if person_id is not None and tenant in self._touched:
            self._touched[tenant].add(person_id)

    def in_hand(self) -> set[str]:
        """The tenants read and kept current here."""
        return set(self._tenants)

    async def tenant(self, tenant: str) -> Visibles:
        """The tenant's visibles, loaded on first use (concurrent first requests share one load)."""
        loaded = self._tenants.get(tenant)
        if loaded is not None:
            return loaded
        self._load_soon(tenant)
        return await asyncio.shield(self._loading[tenant])

    def _load_soon(self, tenant: str) -> None:
        """Start reading a tenant not in hand (once); events heard from now on are replayed on what is read."""
        if tenant not in self._loading and tenant not in self._tenants:
            self._replays[tenant] = []
            self._loading[tenant] = asyncio.create_task(self._load(tenant), name=f"visibles-load-{tenant}")
            self._loading[tenant].add_done_callback(_retrieved)

    async def _load(self, tenant: str) -> Visibles:
        try:
            visibles, self._overrides[tenant] = await self._read(tenant)
        finally:
            replay = self._replays.pop(tenant, [])
            self._loading.pop(tenant, None)
        for apply in replay:
            apply(visibles)
        self._tenants[tenant] = visibles
        log.info("visibles loaded", extra={"tenant": tenant, "persons": len(visibles.members)})
        return visibles

    async def _read(self, tenant: str) -> tuple[Visibles, dict[str, Rules]]:
        overrides = await self.rules.overrides(tenant)
        visibles = Visibles(rules_of=lambda uai: overrides.get(uai, DEFAULT_RULES))
        for doc in await self.repo.structures(tenant):
            visibles.name_structure(doc["_id"], doc.get("name", doc["_id"]))
        for doc in await self.repo.groups(tenant):
            visibles.name_group(doc["_id"], doc.get("label") or doc.get("code", doc["_id"]))
        visibles.load(member_from_doc(doc) for doc in await self.repo.persons(tenant))
        return visibles, overrides

    async def _can_write(self, msg: Request) -> None:
        async def answer(request: pb.CanWriteRequest, visibles: Visibles, reply: pb.CanWriteResponse) -> None:
            reply.refused_ids.extend(visibles.can_write(request.sender_id, request.recipient_ids))

        await self._answer(msg, pb.CanWriteRequest, pb.CanWriteResponse(), answer)

    async def _visibles(self, msg: Request) -> None:
        async def answer(request: pb.VisiblesRequest, visibles: Visibles, reply: pb.VisiblesResponse) -> None:
            for member in visibles.visibles(request.sender_id, request.text, min(request.limit or 50, MAX_LIMIT)):
                reply.persons.add(
                    id=member.id,
                    last_name=member.last_name,
                    first_name=member.first_name,
                    profiles=sorted(set(member.profiles.values())),
                )
            if request.with_groups:
                for group_id, name, size in visibles.groups(
                    request.sender_id, request.text, min(request.limit or 50, MAX_LIMIT)
                ):
                    reply.groups.add(id=group_id, name=name, size=size)

        await self._answer(msg, pb.VisiblesRequest, pb.VisiblesResponse(), answer)

    async def _resolve(self, msg: Request) -> None:
        async def answer(request: pb.ResolveRequest, visibles: Visibles, reply: pb.ResolveResponse) -> None:
            resolved = visibles.resolve(request.sender_id, request.person_ids, request.group_ids)
            sender = visibles.members[request.sender_id]
            reply.sender.CopyFrom(
                pb.Visible(
                    id=sender.id,
                    last_name=sender.last_name,
                    first_name=sender.first_name,
                    profiles=sorted(set(sender.profiles.values())),
                )
            )
            for member in resolved.persons:
                reply.persons.add(
                    id=member.id,
                    last_name=member.last_name,
                    first_name=member.first_name,
                    profiles=sorted(set(member.profiles.values())),
                )
            for group_id, name, member_ids in resolved.groups:
                reply.groups.add(id=group_id, name=name, member_ids=member_ids)
            reply.refused_ids.extend(resolved.refused)
            reply.unknown_ids.extend(resolved.unknown)
            reply.refused_group_ids.extend(resolved.refused_groups)
            reply.unknown_group_ids.extend(resolved.unknown_groups)

        await self._answer(msg, pb.ResolveRequest, pb.ResolveResponse(), answer)

    async def _answer(self, msg: Request, request_type: Any, reply: Any, answer: Any) -> None:
        """Decode, check, answer; a request that cannot be answered gets `error` and `error_code` saying why (and
        the micro service's error headers), never silence."""
        with tracer().start_as_current_span(
            f"answer {msg.subject}", context=extract_context(msg.headers), kind=trace.SpanKind.SERVER
        ):
            try:
                request = request_type.FromString(msg.data)
                if not request.tenant or not request.sender_id:
                    raise ValueError("tenant and sender_id are required")
                await answer(request, await self.tenant(request.tenant), reply)
            except (DecodeError, ValueError) as exc:
                reply.error, reply.error_code = f"malformed request: {exc}", pb.RULES_ERROR_MALFORMED_REQUEST
            except UnknownPerson as exc:
                reply.error, reply.error_code = f"unknown sender {exc.args[0]!r}", pb.RULES_ERROR_UNKNOWN_SENDER
            if reply.error_code:
                code = "400" if reply.error_code == pb.RULES_ERROR_MALFORMED_REQUEST else "404"
                await msg.respond_error(code, reply.error, reply.SerializeToString())
            else:
                await msg.respond(reply.SerializeToString())

    async def _rules_event(self, msg: Msg) -> None:
        """A structure's rules changed: read the tenant's overrides again."""
        try:
            event = decode(msg.data)
        except MalformedEvent as exc:
            log.warning("rules event not understood: %s", exc)
            return
        visibles = self._tenants.get(event.tenant)
        if visibles is None:
            return
        overrides = self._overrides[event.tenant]
        fresh = await self.rules.overrides(event.tenant)
        overrides.clear()
        overrides.update(fresh)
        visibles.rules_changed()

    async def _names_event(self, msg: Msg) -> None:
        """A structure, class or group created, renamed or removed: the names its groups are shown by follow."""
        try:
            event = decode(msg.data)
            if event.tenant not in self._tenants and event.tenant not in self._replays:
                self._load_soon(event.tenant)  # a tenant's first import: read it now, not on its first request
            created = event.type.endswith(".created.v1")
            if event.type == STRUCTURE_DELETED:
                uai = event.unpack(directory.StructureDeleted).uai
                self._apply(event.tenant, lambda visibles: visibles.name_structure(uai, None))
            elif event.type.startswith("identity.structure."):
                structure = (
                    event.unpack(directory.StructureCreated) if created else event.unpack(directory.StructureUpdated)
                ).structure
                self._apply(event.tenant, lambda visibles: visibles.name_structure(structure.uai, structure.name))
            elif event.type == GROUP_DELETED:
                group_id = event.unpack(directory.GroupDeleted).id
                self._apply(event.tenant, lambda visibles: visibles.name_group(group_id, None))
            else:
                group = (
                    event.unpack(directory.GroupCreated) if created else event.unpack(directory.GroupUpdated)
                ).group
                self._apply(event.tenant, lambda visibles: visibles.name_group(group.id, group.label or group.code))
        except MalformedEvent as exc:
            log.warning("structure or group event not understood: %s", exc)

    async def _person_event(self, msg: Msg) -> None:
        try:
            event = decode(msg.data)
            if event.tenant not in self._tenants and event.tenant not in self._replays:
                self._load_soon(event.tenant)  # a tenant's first import: read it now, not on its first request
            if event.type == PERSON_DELETED:
                person_id = event.unpack(directory.PersonDeleted).id
                self._apply(event.tenant, lambda visibles: visibles.remove(person_id), person_id)
            else:
                said = (
                    event.unpack(directory.PersonCreated)
                    if event.type.endswith("created.v1")
                    else event.unpack(directory.PersonUpdated)
                )
                member = member_from_event(said.person)
                self._apply(
                    event.tenant, lambda visibles: visibles.put(copy.copy(member)), member.id
                )  # each copy links its own
        except MalformedEvent as exc:
            log.warning("person event not understood: %s", exc)
        self._persons_seen += 1
        if self._persons_seen % 32 == 0:  # an import's thousands come back to back: the rules' callers come between
            await asyncio.sleep(0)

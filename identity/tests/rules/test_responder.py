"""The visibles service over NATS, on a directory imported from a feed, following the directory's events."""

import asyncio
from pathlib import Path

from maille.identity.v1 import rules_pb2 as pb
from maille_devstack.pytest_plugin import running
from maille_identity.main import app
from maille_identity.rules.responder import CAN_WRITE, RESOLVE, VISIBLES, VisiblesService
from maille_identity.settings import IdentitySettings
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.outbox import Outbox

from ..directory.test_import import TENANT, feed, pupil, request, run_import, school, uai_for


async def ask_can_write(bus: Bus, sender: str, recipients: list[str]) -> pb.CanWriteResponse:
    reply = await bus.nc.request(
        CAN_WRITE,
        pb.CanWriteRequest(tenant=TENANT, sender_id=sender, recipient_ids=recipients).SerializeToString(),
        timeout=10,
    )
    return pb.CanWriteResponse.FromString(reply.data)


async def three_pupils(tmp_path: Path, docstore: Docstore, outbox: Outbox) -> dict[str, str]:
    """E1 and E2 in 6A, E3 in 5B, imported; their ids by AAF key."""
    folder = tmp_path / "feed"
    feed(folder, "EtabEducNat", school("S1", uai_for(1), ["6A", "5B"]))
    feed(
        folder,
        "Eleve",
        pupil("E1", "S1", sn="Dupont"),
        pupil("E2", "S1", sn="Éluard"),
        pupil("E3", "S1", cls="5B", sn="Martin"),
    )
    await run_import(docstore, outbox, folder)
    return {doc["keys"][0]: doc["_id"] async for doc in docstore.db.persons.find({})}


async def test_can_write_and_visibles_over_nats_follow_the_directory(
    tmp_path: Path, docstore: Docstore, outbox: Outbox, bus: Bus, database_name: str, docstore_server
) -> None:
    ids = await three_pupils(tmp_path, docstore, outbox)
    settings = IdentitySettings(nats_url=bus.url, mongodb_url=docstore_server.url, database=database_name)
    async with running(app(settings)) as client:
        assert (await client.get("/readyz")).status_code == 200  # as a caller would: identity up and ready
        answer = await ask_can_write(bus, ids["E1"], [ids["E2"], ids["E3"], "nobody"])
        assert list(answer.refused_ids) == [ids["E3"], "nobody"] and answer.error == ""

        reply = await bus.nc.request(
            VISIBLES,
            pb.VisiblesRequest(tenant=TENANT, sender_id=ids["E1"], text="eluard").SerializeToString(),
            timeout=10,
        )
        assert [p.id for p in pb.VisiblesResponse.FromString(reply.data).persons] == [ids["E2"]]

        # A send's recipients resolved: a person and the sender's own class checked and expanded; another
        # class's pupils refused as a whole; ids naming nobody and no group said so.
        uai = uai_for(1)
        reply = await bus.nc.request(
            RESOLVE,
            pb.ResolveRequest(
                tenant=TENANT,
                sender_id=ids["E1"],
                person_ids=[ids["E2"], ids["E3"], "nobody"],
                group_ids=[f"{uai}$6A/ELV", f"{uai}$5B/ELV", f"{uai}$9Z/ELV", "garbage"],
            ).SerializeToString(),
            timeout=10,
        )
        resolved = pb.ResolveResponse.FromString(reply.data)
        assert [p.id for p in resolved.persons] == [ids["E2"]]
        assert list(resolved.refused_ids) == [ids["E3"]] and list(resolved.unknown_ids) == ["nobody"]
        assert [(g.id, sorted(g.member_ids)) for g in resolved.groups] == [
            (f"{uai}$6A/ELV", sorted([ids["E1"], ids["E2"]]))
        ]
        assert resolved.groups[0].name == "6A — élèves"
        assert list(resolved.refused_group_ids) == [f"{uai}$5B/ELV"]
        assert list(resolved.unknown_group_ids) == [f"{uai}$9Z/ELV", "garbage"]

        reply = await bus.nc.request(
            VISIBLES,
            pb.VisiblesRequest(tenant=TENANT, sender_id=ids["E1"], with_groups=True).SerializeToString(),
            timeout=10,
        )
        groups = pb.VisiblesResponse.FromString(reply.data).groups
        assert [(g.id, g.name, g.size) for g in groups] == [(f"{uai}$6A/ELV", "6A — élèves", 2)]

        unknown = await ask_can_write(bus, "nobody", [ids["E1"]])
        assert "unknown sender" in unknown.error
        malformed = pb.CanWriteResponse.FromString(
            (await bus.nc.request(CAN_WRITE, b"\xff\xff garbage", timeout=10)).data
        )
        assert "malformed request" in malformed.error

        # E3 moves to 6A: once the import's events are relayed, the service knows it.
        delta = tmp_path / "delta"
        feed(
            delta,
            "Eleve",
            request(
                "E3",
                {
                    "ENTPersonJointure": "E3",
                    "sn": "Martin",
                    "givenName": "Léa",
                    "ENTPersonDateNaissance": "04/09/2015",
                    "ENTEleveStructRattachId": "S1",
                    "ENTEleveClasses": "S1$6A",
                },
                op="modifyRequest",
            ),
            mode="Delta",
        )
        await run_import(docstore, outbox, delta)
        for _ in range(100):
            if not (await ask_can_write(bus, ids["E1"], [ids["E3"]])).refused_ids:
                break
            await asyncio.sleep(0.05)
        assert list((await ask_can_write(bus, ids["E1"], [ids["E3"]])).refused_ids) == []


async def test_a_replica_that_missed_events_catches_up(
    tmp_path: Path, docstore: Docstore, outbox: Outbox, bus: Bus, database_name: str, docstore_server
) -> None:
    """The person events come over core NATS: a replica cut off for a moment misses some. It reads its directory
    again on a timer (and after each reconnection), so a change it never heard of is known there soon after."""
    folder = tmp_path / "feed"
    feed(folder, "EtabEducNat", school("S1", uai_for(1), ["6A", "5B"]))
    feed(folder, "Eleve", pupil("E1", "S1", sn="Dupont"), pupil("E3", "S1", cls="5B", sn="Martin"))
    await run_import(docstore, outbox, folder)
    ids = {doc["keys"][0]: doc["_id"] async for doc in docstore.db.persons.find({})}
    settings = IdentitySettings(
        nats_url=bus.url, mongodb_url=docstore_server.url, database=database_name, visibles_refresh_seconds=0.5
    )
    async with running(app(settings)):
        assert list((await ask_can_write(bus, ids["E1"], [ids["E3"]])).refused_ids) == [ids["E3"]]  # another class
        # E3 moves to 6A, and the event saying so never reaches this replica (written behind its back here)
        e1 = await docstore.db.persons.find_one({"_id": ids["E1"]})
        await docstore.db.persons.update_one(
            {"_id": ids["E3"]}, {"$set": {"classes": e1["classes"], "groups": e1.get("groups", [])}}
        )
        for _ in range(100):
            if not (await ask_can_write(bus, ids["E1"], [ids["E3"]])).refused_ids:
                break
            await asyncio.sleep(0.1)
        assert list((await ask_can_write(bus, ids["E1"], [ids["E3"]])).refused_ids) == []


async def test_the_directory_is_read_before_anyone_asks(
    tmp_path: Path, docstore: Docstore, outbox: Outbox, bus: Bus, database_name: str, docstore_server
) -> None:
    """Reading a tenant takes seconds at a region's size, longer than a sender waits for the rules: a replica reads
    the tenants it finds at start, and a tenant's first import as its events arrive — not on the first request."""
    folder = tmp_path / "feed"
    feed(folder, "EtabEducNat", school("S1", uai_for(1), ["6A"]))
    feed(folder, "Eleve", pupil("E1", "S1", sn="Dupont"), pupil("E2", "S1", sn="Éluard"))
    settings = IdentitySettings(nats_url=bus.url, mongodb_url=docstore_server.url, database=database_name)

    async def in_hand(service) -> set[str]:
        for _ in range(200):
            if TENANT in service.state.runtime.parts.get(VisiblesService).in_hand():
                break
            await asyncio.sleep(0.05)
        return service.state.runtime.parts.get(VisiblesService).in_hand()

    first = app(settings)
    async with running(first):  # an empty directory: nothing to read at start
        await asyncio.sleep(0.3)
        assert first.state.runtime.parts.get(VisiblesService).in_hand() == set()
        await run_import(docstore, outbox, folder)  # the tenant's first import: read as its events come
        assert await in_hand(first) == {TENANT}
        ids = {doc["keys"][0]: doc["_id"] async for doc in docstore.db.persons.find({})}
        assert list((await ask_can_write(bus, ids["E1"], [ids["E2"]])).refused_ids) == []

    second = app(settings)
    async with running(second):  # a replica starting on a directory: read at start
        assert await in_hand(second) == {TENANT}


async def test_reading_again_changes_only_what_differs(
    tmp_path: Path, docstore: Docstore, outbox: Outbox, bus: Bus, database_name: str, docstore_server
) -> None:
    """Read again in place (no second copy of the directory in memory): a person changed behind the replica's back
    is changed, one gone is gone, the others are the very same objects as before."""
    ids = await three_pupils(tmp_path, docstore, outbox)
    settings = IdentitySettings(nats_url=bus.url, mongodb_url=docstore_server.url, database=database_name)
    service = app(settings)
    async with running(service):
        visibles = service.state.runtime.parts.get(VisiblesService)
        copy = await visibles.tenant(TENANT)
        e1 = copy.members[ids["E1"]]
        assert list((await ask_can_write(bus, ids["E1"], [ids["E3"]])).refused_ids) == [ids["E3"]]
        e1_doc = await docstore.db.persons.find_one({"_id": ids["E1"]})
        await docstore.db.persons.update_one(
            {"_id": ids["E3"]}, {"$set": {"classes": e1_doc["classes"]}}
        )  # E3 joins 6A
        await docstore.db.persons.delete_one({"_id": ids["E2"]})  # E2 left

        await visibles.refresh()

        assert await visibles.tenant(TENANT) is copy and copy.members[ids["E1"]] is e1  # the same copy, E1 untouched
        assert ids["E2"] not in copy.members
        assert list((await ask_can_write(bus, ids["E1"], [ids["E3"]])).refused_ids) == []

"""The observatory under test: its own NATS (so that the streams hold only this test's uses), the session's docstore
and Keycloak; the uses told as the services tell them (`maille_kit.usage.Uses`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from maille.identity.v1 import directory_pb2 as pb
from maille_devstack.pytest_plugin import (
    IDENTITY_STREAM,
    KeycloakClients,
    ServiceUnderTest,
    persons_known,
    publish_event,
    running_on_bus,
    until,
)
from maille_kit.usage import Uses
from maille_observatory.directory import Directory
from maille_observatory.ingest import Ingest
from maille_observatory.main import app
from maille_observatory.settings import ObservatorySettings
from maille_observatory.views import Summaries

API = "/api/observatory/v1"
KEY = "a-usage-key-for-the-tests-only"


def structure(uai: str, name: str, kind: str = "COLLEGE") -> pb.StructureCreated:
    return pb.StructureCreated(structure=pb.Structure(id=uai, uai=uai, name=name, type=kind))


def person(
    person_id: str, code: str, uai: str, *, classes: tuple[str, ...] = (), adults: tuple[str, ...] = ()
) -> pb.Person:
    return pb.Person(
        id=person_id,
        last_name="Martin",
        first_name="Camille",
        profiles=[pb.Profile(structure_id=uai, uai=uai, code=code)],
        group_ids=list(classes),
        relatives=[pb.Relative(person_id=a, legal=True) for a in adults],
    )


@dataclass
class Observatory(ServiceUnderTest):
    settings: ObservatorySettings
    uses: Uses
    audience: ClassVar[str] = "maille-observatory"
    api: ClassVar[str] = API

    async def schools(self, *schools: tuple[str, str]) -> None:
        for uai, name in schools:
            kind = "LYCEE" if name.startswith("Lycée") else "COLLEGE"
            await publish_event(self.bus, "identity.structure.created.v1", structure(uai, name, kind))
        directory = self.part(Directory)
        await until(lambda: all(u in directory.schools for u, _ in schools), "the schools known")

    async def persons(self, persons: list[pb.Person]) -> None:
        directory = self.part(Directory)
        known = directory.count + len(persons)
        await persons_known(self.bus, self.runtime().docstore.db["persons"], persons)
        await until(lambda: directory.count >= known, "the persons known")

    async def counted(self) -> None:
        """Back once every use told is folded, written, and merged for the scopes above the schools."""
        await self.uses.flush()
        assert not self.uses.pending and not self.uses.unsent
        info = await self.bus.js.stream_info("OBSERVATORY")
        ingest: Ingest = self.part(Ingest)
        await until(lambda: ingest.flushed_seq >= info.state.last_seq, "the uses folded and written")
        summaries: Summaries = self.part(Summaries)
        await summaries.refresh()


@pytest.fixture
async def observatory(
    service_settings: dict[str, Any], keycloak_clients: KeycloakClients
) -> AsyncIterator[Observatory]:
    settings = ObservatorySettings(**service_settings, flush_seconds=0.5, refresh_seconds=1, environment="development")
    service = app(settings)
    async with running_on_bus(service, [IDENTITY_STREAM]) as (client, bus):
        yield Observatory(client, service, bus, keycloak_clients, settings, Uses(bus, key=KEY, source="tests"))

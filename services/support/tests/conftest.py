"""Support under test: its own NATS (so that the streams hold only this test's events), the session's docstore,
Keycloak and Redmine (Debian's, a desk's tracker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from maille.identity.v1 import directory_pb2 as pb
from maille_devstack.processes import RedmineServer
from maille_devstack.pytest_plugin import (
    IDENTITY_STREAM,
    KeycloakClients,
    ServiceUnderTest,
    persons_known,
    running_on_bus,
    until,
)
from maille_kit.events import Envelope
from maille_support.main import app
from maille_support.settings import SupportSettings

API = "/api/support/v1"
COLLEGE, LYCEE = "0350001L", "0350002M"


def person(person_id: str, code: str, uai: str = COLLEGE, *, functions: tuple[str, ...] = ()) -> pb.Person:
    structure = f"S{uai}"
    return pb.Person(
        id=person_id,
        last_name="Martin",
        first_name=person_id.split("-")[0].capitalize(),
        profiles=[pb.Profile(structure_id=structure, uai=uai, code=code)],
        functions=[f"{structure}${f}" for f in functions],
    )


@dataclass
class Support(ServiceUnderTest):
    redmine: RedmineServer
    heard: list[Envelope] = field(default_factory=list)
    audience: ClassVar[str] = "maille-support"
    api: ClassVar[str] = API

    async def persons(self, *persons: pb.Person) -> None:
        """Identity's person events, as identity publishes them; back once the service holds the last one."""
        await persons_known(self.bus, self.runtime().docstore.db["persons"], persons)

    async def school(self, uai: str, name: str) -> None:
        await self.publish(
            "identity.structure.created.v1",
            pb.StructureCreated(structure=pb.Structure(id=f"S{uai}", uai=uai, name=name, type="COLLEGE")),
        )
        held = self.runtime().docstore.db["schools"]

        async def known() -> bool:
            return await held.find_one({"_id": uai}) is not None

        await until(known, f"school {uai}")

    def events(self, type: str) -> list[Envelope]:
        return [e for e in self.heard if e.type == type]


@pytest.fixture
async def support(
    service_settings: dict[str, Any], keycloak_clients: KeycloakClients, redmine_server: RedmineServer
) -> AsyncIterator[Support]:
    settings = SupportSettings(
        **service_settings,
        redmine_poll_seconds=1,
        environment="development",
    )
    service = app(settings)
    async with running_on_bus(service, [IDENTITY_STREAM]) as (client, bus):
        found = Support(client, service, bus, keycloak_clients, redmine_server)

        async def heard(msg: Any) -> None:
            envelope = Envelope()
            envelope.ParseFromString(msg.data)
            found.heard.append(envelope)

        assert bus.nc is not None
        await bus.nc.subscribe("support.>", cb=heard)
        await bus.nc.flush(timeout=5)
        yield found

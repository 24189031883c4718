"""A library under test: its own NATS (so identity's stream holds only this test's directory), the session's
docstore and Keycloak, and a PMB peer over HTTP holding one database per school."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from pmb.server import PmbDatabase, PmbPeer
from pmb.server import create_app as pmb_app

from maille.identity.v1 import directory_pb2 as pb
from maille_devstack.pytest_plugin import (
    IDENTITY_STREAM,
    KeycloakClients,
    ServiceUnderTest,
    running_on_bus,
    serving_peer,
    until,
)
from maille_kit.events import make_envelope
from maille_library.main import app
from maille_library.settings import LibrarySettings

SCHOOLS = ("0750001A", "0750002B", "0750003C")
API = "/api/library/v1"


@asynccontextmanager
async def serving(peer: PmbPeer) -> AsyncIterator[str]:
    """The PMB peer on a free port of the loopback, over HTTP, for the block; its base URL."""
    async with serving_peer(pmb_app(peer)) as port:
        yield f"http://127.0.0.1:{port}/pmb"


@pytest.fixture
async def pmb_peer() -> AsyncIterator[tuple[PmbPeer, str]]:
    """One PMB holding a database per school (`cdi<UAI>`), as académies often run it."""
    peer = PmbPeer(
        databases={f"cdi{uai}": PmbDatabase(f"cdi{uai}", records=40 + 10 * n) for n, uai in enumerate(SCHOOLS)}
    )
    async with serving(peer) as url:
        yield peer, url


@dataclass
class Library(ServiceUnderTest):
    pmb: PmbPeer
    pmb_url: str
    audience: ClassVar[str] = "maille-library"

    def operator(self) -> dict[str, str]:
        client_id, secret = self.keycloak.make(roles=("operator",), audience="maille-library")
        return {"authorization": f"Bearer {self.keycloak.token(client_id, secret)}"}

    def connection(self, uai: str, **changes) -> dict:
        return {
            "url": self.pmb_url,
            "sourceId": 1,
            "user": "maille",
            "password": "secret-ws",
            "database": f"cdi{uai}",
            "opacUrl": f"https://cdi-{uai.lower()}.example.fr/opac",
        } | changes

    async def persons(self, *persons: pb.Person) -> None:
        """Publish identity's person events as identity does, and wait until the library holds them."""
        for person in persons:
            envelope = make_envelope(
                type="identity.person.created.v1",
                tenant="ac-test",
                source="identity",
                payload=pb.PersonCreated(person=person),
            )
            await self.bus.js.publish(envelope.type, envelope.SerializeToString(), headers={"Nats-Msg-Id": envelope.id})
        readers = self.service.state.runtime.docstore.db["readers"]

        async def known() -> bool:
            return await readers.find_one({"_id": persons[-1].id}) is not None

        await until(known, f"reader {persons[-1].id}")


def person(person_id: str, *profiles: tuple[str, str]) -> pb.Person:
    return pb.Person(
        id=person_id,
        last_name="Martin",
        first_name="Léa",
        profiles=[pb.Profile(structure_id=f"S{uai}", uai=uai, code=code) for uai, code in profiles],
    )


@pytest.fixture
async def library(
    service_settings: dict[str, Any], keycloak_clients: KeycloakClients, pmb_peer
) -> AsyncIterator[Library]:
    peer, url = pmb_peer
    settings = LibrarySettings(
        **service_settings,
        pmb_timeout_seconds=0.4,
        pmb_retries=1,
        search_timeout_seconds=1.0,
        connection_cache_seconds=0,
    )
    service = app(settings)
    async with running_on_bus(service, [IDENTITY_STREAM]) as (client, bus):
        yield Library(client, service, bus, keycloak_clients, peer, url)

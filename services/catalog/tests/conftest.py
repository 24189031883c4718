"""A catalog under test: its own NATS (so that identity's stream holds only this test's directory), the
session's docstore and Keycloak, and the GAR peer's resource list over HTTPS with client certificates."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from gar.resources import GarResources
from gar.resources import create_app as gar_app
from google.protobuf.message import Message

from maille.identity.v1 import directory_pb2 as pb
from maille_catalog.main import app
from maille_catalog.settings import CatalogSettings
from maille_devstack.pki import make_pki
from maille_devstack.pytest_plugin import (
    IDENTITY_STREAM,
    KeycloakClients,
    ServiceUnderTest,
    running_on_bus,
    serving_peer,
    until,
)
from maille_kit.events import make_envelope

CONCEPT = "http://data.education.fr/voc/scolomfr/concept/"


def resource(ark: str, name: str = "Maths 6e", **changes: Any) -> dict[str, Any]:
    return {
        "idRessource": ark,
        "nomRessource": name,
        "nomEditeur": "Éditions du Test",
        "urlVignette": "https://vendor.example/v.png",
        "urlAccesRessource": f"https://vendor.example/{ark.rsplit('/', 1)[-1]}",
        "typePresentation": {"code": "MAN", "nom": "manuel numérique"},
        "typePedagogique": [{"uri": f"{CONCEPT}scolomfr-voc-010-num-003", "nom": "cours"}],
        "niveauEducatif": [{"uri": f"{CONCEPT}scolomfr-voc-022-num-027", "nom": "6e"}],
        "typologieDocument": [],
        "domaineEnseignement": [{"uri": f"{CONCEPT}scolomfr-voc-015-num-1169", "nom": "mathématiques"}],
        **changes,
    }


def subscription(sub_id: str, ark: str, uais: list[str], **changes: Any) -> dict[str, Any]:
    return {
        "idAbonnement": sub_id,
        "idDistributeurCom": "123456789_000000000000001X",
        "idRessource": ark,
        "typeIdRessource": "ark",
        "libelleRessource": "Maths 6e",
        "debutValidite": "2026-09-01T00:00:00",
        "finValidite": "2030-08-31T23:59:59",
        "anneeFinValidite": "2029-2030",
        "uaiEtab": uais,
        "categorieAffectation": "non transferable",
        "typeAffectation": "ETABL",
        "nbLicenceGlobale": "ILLIMITE",
        "publicCible": ["ELEVE", "ENSEIGNANT"],
        **changes,
    }


def structure(uai: str) -> pb.Structure:
    return pb.Structure(id=f"S{uai}", uai=uai, name=f"Collège {uai}", type="COLLEGE", contract="PU")


def person(person_id: str, *profiles: tuple[str, str], groups: tuple[str, ...] = ()) -> pb.Person:
    return pb.Person(
        id=person_id,
        last_name="Nom",
        first_name="Prénom",
        group_ids=list(groups),
        profiles=[pb.Profile(structure_id=f"S{uai}", uai=uai, code=code) for uai, code in profiles],
    )


@dataclass
class Catalog(ServiceUnderTest):
    gar: GarResources
    _vendors: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    audience: ClassVar[str] = "maille-catalog"

    def vendor(self) -> tuple[str, dict[str, str]]:
        client_id, secret = self.keycloak.make(roles=("vendor",), audience="maille-catalog")
        return client_id, {"authorization": f"Bearer {self.keycloak.token(client_id, secret)}"}

    async def directory(self, *facts: tuple[str, Message]) -> None:
        """Publish identity's events as identity does (its stream, its envelope)."""
        for type, payload in facts:
            envelope = make_envelope(type=type, tenant="ac-test", source="identity", payload=payload)
            await self.bus.js.publish(type, envelope.SerializeToString(), headers={"Nats-Msg-Id": envelope.id})

    async def schools(self, *uais: str) -> None:
        await self.directory(
            *(("identity.structure.created.v1", pb.StructureCreated(structure=structure(uai))) for uai in uais)
        )

    async def persons(self, *persons: pb.Person, fact: str = "created") -> None:
        kind = pb.PersonCreated if fact == "created" else pb.PersonUpdated
        await self.directory(*((f"identity.person.{fact}.v1", kind(person=p)) for p in persons))

    async def known(
        self, collection: str, key: str, check: Callable[[dict[str, Any] | None], bool] = lambda doc: doc is not None
    ) -> None:
        """Wait until the catalog's copy of the directory holds what was published."""
        db = self.service.state.runtime.docstore.db
        await until(lambda: _found(db[collection], key, check), f"{collection} {key}")

    async def events(self, prefix: str = "catalog.") -> list[str]:
        outbox = self.service.state.runtime.outbox
        await until(lambda: _zero(outbox.pending()), "the outbox to empty")
        sub = await self.bus.js.pull_subscribe("catalog.>", stream="CATALOG")
        subjects: list[str] = []
        try:
            while True:
                for message in await sub.fetch(200, timeout=1):
                    subjects.append(message.subject)
                    await message.ack()
        except TimeoutError:
            pass
        await sub.unsubscribe()
        return [s for s in subjects if s.startswith(prefix)]


async def _found(collection, key: str, check) -> bool:
    return check(await collection.find_one({"_id": key}))


async def _zero(pending: Awaitable[int]) -> bool:
    return await pending == 0


@pytest.fixture
async def gar_peer(tmp_path: Path) -> AsyncIterator[tuple[GarResources, str, Any]]:
    """The GAR's resource list on a free port, HTTPS, client certificates from the test CA required."""
    pki = make_pki(tmp_path / "pki")
    peer = GarResources()
    async with serving_peer(
        gar_app(peer),
        scheme="https",
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_ca_certs=str(pki.ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    ) as port:
        yield peer, f"https://localhost:{port}", pki


@pytest.fixture
async def catalog(
    service_settings: dict[str, Any], keycloak_clients: KeycloakClients, gar_peer
) -> AsyncIterator[Catalog]:
    peer, url, pki = gar_peer
    settings = CatalogSettings(
        **service_settings,
        gar_url=url,
        gar_client_cert=str(pki.client_cert),
        gar_client_key=str(pki.client_key),
        gar_ca_file=str(pki.ca),
        gar_timeout_seconds=0.5,
        expiry_check_seconds=0.3,
    )
    service = app(settings)
    async with running_on_bus(service, [IDENTITY_STREAM]) as (client, bus):
        yield Catalog(client, service, bus, keycloak_clients, peer)


@pytest.fixture
def catalog_helpers():
    """The builders above, for the test modules (conftest is not importable under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(
        resource=resource, subscription=subscription, structure=structure, person=person, pb=pb, until=until
    )

"""Secrets at rest: whoever reads the docstore (a backup, a stolen disk, another service's bug) finds no PMB password,
no OPAC salt, no collectivité's client secret in clear; a rotation of the key seals them again under the new one.
The real library service (a process), the real docstore, a real Keycloak token."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from pymongo import MongoClient

from maille_devstack.processes import DocstoreServer, ServiceProcess
from maille_devstack.pytest_plugin import KeycloakClients
from maille_identity.federation.repository import FederationRepository
from maille_kit.docstore import Docstore
from maille_kit.secretbox import SecretBox

pytestmark = pytest.mark.keycloak
PASSWORD, SALT, PHRASE = "pmb-Ws-password-7731", "opac-salt-9f2a6c", "phrase-de-connexion-42"
OLD_KEY, NEW_KEY = "library-key-one-2026", "library-key-two-2027"


def _raw(docstore_server: DocstoreServer, database: str, collection: str) -> str:
    with MongoClient(docstore_server.url) as client:
        return json.dumps(list(client[database][collection].find({})), default=str)


def test_pmb_secrets_are_sealed_at_rest_and_sealed_again_on_rotation(
    service_factory: Callable[..., ServiceProcess],
    keycloak_clients: KeycloakClients,
    docstore_server: DocstoreServer,
) -> None:
    database = "test_library_secrets"
    env = {
        "MAILLE_LIBRARY_AUTH_ISSUER": keycloak_clients.issuer,
        "MAILLE_LIBRARY_DATABASE": database,
        "MAILLE_LIBRARY_SECRETS_KEY": OLD_KEY,
    }
    library = service_factory("library", env=env)
    operator = {
        "Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=('operator',), audience='maille-library'))}"  # noqa: E501
    }
    body = {
        "url": "https://cdi.example.fr/pmb",
        "sourceId": 3,
        "user": "maille",
        "password": PASSWORD,
        "auth": "body",
        "connexionPhrase": PHRASE,
        "loginSalt": SALT,
        "opacUrl": "https://cdi.example.fr/opac",
    }
    put = httpx.put(f"{library.url}/api/library/v1/operator/schools/0350001L/pmb", json=body, headers=operator)
    assert put.status_code in (200, 201), put.text
    shown = httpx.get(f"{library.url}/api/library/v1/operator/schools/0350001L/pmb", headers=operator).text
    stored = _raw(docstore_server, database, "connections")
    for secret in (PASSWORD, SALT, PHRASE):
        assert secret not in stored and secret not in shown
    assert stored.count("enc1:") == 3
    library.stop()
    # The key rotated: the new one current, the old one still listed; at start the library seals again under the new.
    service_factory(
        "library", env={**env, "MAILLE_LIBRARY_SECRETS_KEY": NEW_KEY, "MAILLE_LIBRARY_SECRETS_OLD_KEYS": OLD_KEY}
    )
    doc = json.loads(_raw(docstore_server, database, "connections"))[0]
    new = SecretBox(NEW_KEY)
    assert all(new.is_current(doc[name]) for name in ("password", "connexionPhrase", "loginSalt"))
    assert (
        new.open(doc["password"], context="connections:0350001L:password") == PASSWORD
    )  # the old key is no longer needed


async def test_a_collectivites_client_secret_is_sealed_at_rest(
    docstore: Docstore, docstore_server: DocstoreServer, database_name: str
) -> None:
    federations = FederationRepository(docstore, SecretBox("identity-key-one-2026"))
    await federations.put(
        {"_id": "cd35", "name": "Ille-et-Vilaine", "client_id": "maille", "client_secret": "cd35-Client-Secret-88"}
    )
    assert "cd35-Client-Secret-88" not in _raw(docstore_server, database_name, "federations")
    assert (await federations.get("cd35"))["client_secret"] == "cd35-Client-Secret-88"

"""A timeline under test: its own NATS (so that the streams hold only this test's events), the session's docstore,
Keycloak and Mailpit (a real SMTP server, whose API says what it received)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pytest

from maille.identity.v1 import directory_pb2 as pb
from maille.messaging.v1 import messages_pb2
from maille_devstack.processes import MailpitServer
from maille_devstack.pytest_plugin import (
    IDENTITY_STREAM,
    KeycloakClients,
    ServiceUnderTest,
    persons_known,
    running_on_bus,
    until,
)
from maille_kit.bus import Stream
from maille_timeline.main import app
from maille_timeline.settings import TimelineSettings

STREAMS = [
    IDENTITY_STREAM,
    Stream(name="MESSAGING", subjects=("messaging.>",), description="messaging's facts"),
    Stream(name="CATALOG", subjects=("catalog.>",), description="catalog's facts"),
    Stream(name="LIBRARY", subjects=("library.>",), description="the library's facts"),
    Stream(name="SUPPORT", subjects=("support.>",), description="support's facts"),
]
API = "/api/timeline/v1"
UAI = "0350001L"
ADMIN = "admin-ops"  # the platform's admin the timeline tells of imports and GAR exports


def person(person_id: str, code: str, *, emails: tuple[str, ...] = (), children: tuple[str, ...] = ()) -> pb.Person:
    return pb.Person(
        id=person_id,
        last_name="Martin",
        first_name=person_id.split("-")[0].capitalize(),
        profiles=[pb.Profile(structure_id="S1", uai=UAI, code=code)],
        emails=list(emails),
        children=list(children),
    )


class Mailpit:
    """What the SMTP server received, read through its API."""

    def __init__(self, server: MailpitServer) -> None:
        self.api = server.api

    def to(self, address: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.api}/search", params={"query": f"to:{address}", "limit": 100}, timeout=10)
        return list(answer.raise_for_status().json()["messages"])

    def message(self, message_id: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.api}/message/{message_id}", timeout=10).raise_for_status().json())

    def headers(self, message_id: str) -> dict[str, list[str]]:
        return dict(httpx.get(f"{self.api}/message/{message_id}/headers", timeout=10).raise_for_status().json())


@dataclass
class Timeline(ServiceUnderTest):
    mailpit: Mailpit
    audience: ClassVar[str] = "maille-timeline"
    api: ClassVar[str] = API

    async def persons(self, *persons: pb.Person) -> None:
        """Identity's person events, as identity publishes them; back once the service holds the last one."""
        await persons_known(self.bus, self.runtime().docstore.db["persons"], persons)

    async def mail(self, sender: str, recipients: list[str], subject: str = "Sortie au musée") -> str:
        return await self.publish(
            "messaging.message.delivered.v1",
            messages_pb2.MessageDelivered(
                message_id=f"m-{uuid.uuid4().hex[:8]}",
                thread_id="t-1",
                sender_id=sender,
                sender_name="M. Dupont",
                subject=subject,
                recipient_ids=recipients,
            ),
        )

    def mail_to(self, ent_id: str) -> list[dict[str, Any]]:
        """The e-mails Mailpit received for this person (their address is `<id>@…`)."""
        return [m for m in self.mailpit.to(ent_id) if any(r["Address"].startswith(f"{ent_id}@") for r in m["To"])]

    async def mailed_to(self, ent_id: str, count: int = 1) -> list[dict[str, Any]]:
        """The e-mails Mailpit received for this person, once it shows `count` (the relay has taken them when the
        sending returns; Mailpit lists them a moment later)."""

        async def there() -> list[dict[str, Any]] | None:
            mails = self.mail_to(ent_id)
            return mails if len(mails) >= count else None

        return await until(there, f"{count} e-mail(s) to {ent_id}", timeout=10)

    async def feed(self, ent_id: str, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        answer = await self.client.get(f"{API}/feed", params=params, headers=headers or self.as_person(ent_id))
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
async def timeline(
    service_settings: dict[str, Any], keycloak_clients: KeycloakClients, mailpit_server: MailpitServer
) -> AsyncIterator[Timeline]:
    settings = TimelineSettings(
        **service_settings,
        smtp_port=mailpit_server.smtp_port,
        mail_check_seconds=0.2,
        daily_digests=False,  # the tests send them when they want
        admins=[ADMIN],
        environment="development",
    )
    service = app(settings)
    async with running_on_bus(service, STREAMS) as (client, bus):
        yield Timeline(client, service, bus, keycloak_clients, Mailpit(mailpit_server))

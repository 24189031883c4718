"""API clients as code (role `operator`): a vendor's or a partner system's Keycloak client — made with the roles and
audiences of its kind, its secret shown once, rotated on demand with a grace period, listed with its last use,
withdrawn (federation/clients.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from maille_identity.api import ApiClientsPart
from maille_identity.federation.clients import KINDS
from maille_identity.federation.keycloak import KeycloakUnavailable
from maille_kit.auth import Operator, Principal
from maille_kit.idempotency import Idempotent
from maille_kit.problems import Problem

# Made in Keycloak: these routes exist only when identity is connected to it.
router = APIRouter(prefix="/api/identity/v1", tags=["API clients"])
CLIENT_ID = r"^[a-z0-9][a-z0-9-]{2,62}$"
ClientId = Annotated[str, Path(pattern=CLIENT_ID, description="the client's id, e.g. editeur-lelivrescolaire")]


class NewClient(BaseModel):
    """An API client to make."""

    client_id: str = Field(pattern=CLIENT_ID, description="its id (what it signs in as), lower case, 3 to 63")
    kind: Literal["vendor", "operator"] = Field(
        description="vendor: the catalog's vendor API; operator: operators' APIs"
    )
    name: str = Field(min_length=1, max_length=200, description="who it is, in words (e.g. the vendor's name)")


class ClientView(BaseModel):
    """An API client as listed (never its secret)."""

    client_id: str
    kind: str
    name: str
    roles: list[str]
    audiences: list[str]
    created_at: datetime
    created_by: str
    rotated_at: datetime | None = None
    last_used_at: datetime | None = Field(None, description="its last token (None: none in the last 90 days)")


class WithSecret(BaseModel):
    """An API client and its secret: shown this once, never again."""

    client: ClientView
    client_secret: str
    token_url: str = Field(description="where it gets its tokens (grant type client_credentials)")
    previous_secret_valid_until: datetime | None = None


def _view(doc: dict[str, Any], last_used: datetime | None = None) -> ClientView:
    kind = KINDS[doc["kind"]]
    return ClientView(
        client_id=doc["_id"],
        kind=doc["kind"],
        name=doc["name"],
        roles=list(kind.roles),
        audiences=list(kind.audiences),
        created_at=doc["created_at"],
        created_by=doc.get("created_by", ""),
        rotated_at=doc.get("rotated_at"),
        last_used_at=last_used,
    )


def _keycloak_failed(exc: KeycloakUnavailable) -> Problem:
    return Problem(502, f"Keycloak did not do it: {exc}")


@router.get("/clients", summary="Every API client, with its roles, audiences and last use")
async def list_clients(operator: Operator, clients: ApiClientsPart) -> list[ClientView]:
    return [_view(doc, doc.get("last_used_at")) for doc in await clients.all()]


@router.post(
    "/clients",
    status_code=201,
    summary="Make an API client: its Keycloak client, roles and audiences; its secret shown once",
    response_model=WithSecret,
)
async def create_client(body: NewClient, operator: Operator, _: Idempotent, clients: ApiClientsPart) -> WithSecret:
    if await clients.get(body.client_id) is not None:
        raise Problem(409, f"an API client {body.client_id} exists already", field="client_id")
    if body.client_id.startswith("maille-"):
        raise Problem(409, "ids beginning with maille- are Maille's own clients", field="client_id")
    try:
        doc, secret = await clients.create(body.client_id, kind=body.kind, name=body.name, by=_who(operator))
    except KeycloakUnavailable as exc:
        raise _keycloak_failed(exc) from None
    return WithSecret(client=_view(doc), client_secret=secret, token_url=clients.token_url)


@router.post(
    "/clients/{client_id}/secret",
    summary="A new secret for the client, shown once; the old one valid for the grace period",
    response_model=WithSecret,
)
async def rotate_secret(client_id: ClientId, operator: Operator, _: Idempotent, clients: ApiClientsPart) -> WithSecret:
    if await clients.get(client_id) is None:
        raise Problem(404, f"no API client {client_id}")
    try:
        doc, secret, until = await clients.rotate(client_id, by=_who(operator))
    except KeycloakUnavailable as exc:
        raise _keycloak_failed(exc) from None
    return WithSecret(
        client=_view(doc), client_secret=secret, token_url=clients.token_url, previous_secret_valid_until=until
    )


@router.delete("/clients/{client_id}", status_code=204, summary="Withdraw an API client: its tokens refused from now")
async def delete_client(client_id: ClientId, operator: Operator, clients: ApiClientsPart) -> Response:
    if await clients.get(client_id) is None:
        raise Problem(404, f"no API client {client_id}")
    try:
        await clients.delete(client_id, by=_who(operator))
    except KeycloakUnavailable as exc:
        raise _keycloak_failed(exc) from None
    return Response(status_code=204)


def _who(operator: Principal) -> str:
    """Who acted, for the record: the account's name where the token says it, else the directory person (a
    browser's lightweight token carries no name), else the account or the client."""
    if operator.claims.get("preferred_username"):
        return str(operator.claims["preferred_username"])
    if operator.person_id:
        return f"person {operator.person_id}"
    return f"account {operator.subject}" if operator.subject else operator.client_id

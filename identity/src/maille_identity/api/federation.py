"""Federation routes: settling a signed-in account's directory link (called by the gateway at the end
of each browser sign-in), and the partner collectivités' IdPs (role `operator`)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field, field_validator

from maille_identity.api import Directory, Keycloak, Links, Settings
from maille_identity.directory.identifiers import InvalidUAI, normalise_uai
from maille_identity.federation.keycloak import KeycloakUnavailable
from maille_identity.federation.service import RESERVED_ALIASES
from maille_kit.auth import Caller, Operator
from maille_kit.idempotency import Idempotent
from maille_kit.problems import Problem

router = APIRouter(prefix="/api/identity/v1", tags=["federation"])
# The collectivités' IdPs are made in Keycloak: these routes exist only when identity is connected to it.
federations = APIRouter(prefix="/api/identity/v1", tags=["federation"])
Alias = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]


class SignInBody(BaseModel):
    """The person's choice among several directory entries (a parent with children in two schools)."""

    choice: str | None = Field(None, pattern=r"^[0-9a-f]{24}$", description="the ENT id chosen among the candidates")


@router.post(
    "/signin", summary="Settle which directory person the signed-in account is (the gateway asks at each sign-in)"
)
async def sign_in(principal: Caller, linking: Links, body: SignInBody | None = None) -> dict[str, Any]:
    try:
        return await linking.sign_in(principal, choice=body.choice if body else None)
    except KeycloakUnavailable as exc:
        raise Problem(
            503, f"the sign-in service cannot settle the account now: {exc}", headers={"Retry-After": "5"}
        ) from None


@router.get(
    "/accounts",
    summary="The directory entries the signed-in account may be, the current one marked (to switch between them)",
)
async def accounts(principal: Caller, linking: Links) -> dict[str, Any]:
    try:
        return await linking.accounts(principal)
    except KeycloakUnavailable as exc:
        raise Problem(503, f"the accounts cannot be read now: {exc}", headers={"Retry-After": "5"}) from None


class Claims(BaseModel):
    """Which of the collectivité's token claims carry what (at least a join key or an email)."""

    join_key: str | None = Field(None, max_length=100, description="claim holding the agent's AAF join key")
    email: str | None = Field(None, max_length=100, description="claim holding the agent's email")
    first_name: str | None = Field("given_name", max_length=100)
    last_name: str | None = Field("family_name", max_length=100)


class FederationBody(BaseModel):
    """A partner collectivité's OpenID Connect IdP."""

    alias: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{1,39}$", description="short name (the IdP's alias in Keycloak, kc_idp_hint)"
    )
    name: str = Field(min_length=1, max_length=200, description="shown on the login page")
    issuer: str = Field(
        min_length=8, max_length=500, description="the IdP's issuer URL (its discovery document is read from it)"
    )
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=500)
    claims: Claims
    structures: list[str] = Field(
        min_length=1, max_length=2000, description="UAIs of the structures whose staff it signs in"
    )

    @field_validator("issuer")
    @classmethod
    def _https(cls, issuer: str) -> str:
        parts = urlsplit(issuer)
        local = parts.hostname in ("localhost",) or _loopback(parts.hostname or "")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ValueError("the issuer must be an https:// URL (http:// only on this machine's loopback)")
        return issuer.rstrip("/")

    @field_validator("claims")
    @classmethod
    def _matchable(cls, claims: Claims) -> Claims:
        if not claims.join_key and not claims.email:
            raise ValueError("map at least one claim to join_key or email: accounts are matched by them")
        return claims


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {"alias": doc["_id"], **{k: v for k, v in doc.items() if k not in ("_id", "client_secret")}}


@federations.get("/federations", summary="The partner collectivités' IdPs")
async def list_federations(operator: Operator, federation: Keycloak) -> list[dict[str, Any]]:
    return [_public(doc) for doc in sorted(await federation.federations.all(), key=lambda d: d["_id"])]


@federations.post(
    "/federations", status_code=201, summary="Register a partner collectivité's IdP (made in Keycloak at once)"
)
async def add_federation(
    body: FederationBody,
    operator: Operator,
    _: Idempotent,
    federation: Keycloak,
    repo: Directory,
    settings: Settings,
) -> dict[str, Any]:
    if body.alias in RESERVED_ALIASES:
        raise Problem(409, f"alias {body.alias} is Maille's own IdP")
    if await federation.federations.get(body.alias) is not None:
        raise Problem(409, f"a federation {body.alias} exists already")
    check = settings.check_uai_letter
    structures: list[str] = []
    for raw in body.structures:
        try:
            structures.append(normalise_uai(raw, check_letter=check)[0])
        except InvalidUAI as exc:
            raise Problem(422, f"structures: {exc}", errors=[{"field": "structures", "message": str(exc)}]) from None
    known = {s["_id"] for s in await repo.structures(settings.tenant)}
    unknown = sorted(set(structures) - known)
    if unknown:
        raise Problem(
            422,
            f"structures not in the directory: {', '.join(unknown)}",
            errors=[{"field": "structures", "message": f"unknown UAI {u}"} for u in unknown],
        )
    doc = {"_id": body.alias, **body.model_dump(exclude={"alias", "structures"}), "structures": sorted(set(structures))}
    try:
        await federation.add(doc)
    except KeycloakUnavailable as exc:
        raise Problem(502, f"Keycloak did not accept the IdP: {exc}") from None
    return _public(doc)


@federations.delete("/federations/{alias}", status_code=204, summary="Withdraw a partner collectivité's IdP")
async def delete_federation(alias: Alias, operator: Operator, federation: Keycloak) -> Response:
    if not await federation.remove(alias):
        raise Problem(404, f"no federation {alias}")
    return Response(status_code=204)

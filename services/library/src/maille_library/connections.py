"""Schools' PMB connections, registered by operators: where each school's PMB is, which source of its external
services Maille calls, with which credentials, in which database, and where its OPAC is. Kept by UAI; the
secrets (password, connexion phrase, the OPAC sign-on salt) are written, never read back through the API."""

from __future__ import annotations

import time
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

from maille.library.v1 import opac_pb2
from maille_contracts import OPAC_CHANGED
from maille_kit.docstore import Docstore
from maille_kit.secretbox import SecretBox
from maille_kit.work import Work, Works
from maille_library.pmb import PmbConnection

CONNECTIONS = "connections"
# A host (name, IPv4 or [IPv6]), a port, a path of RFC 3986's characters: what PMB, browsers and Keycloak (the
# OPAC's redirect URIs) all take as it is.
URL_PATTERN = (
    r"^https?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
    r"(:[0-9]{1,5})?(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?$"
)


class ConnectionIn(BaseModel):
    """A school's PMB, as an operator registers it."""

    model_config = {"extra": "forbid"}

    url: str = Field(
        pattern=URL_PATTERN,
        max_length=300,
        description="the PMB's base URL (where `ws/connector_out.php` is), e.g. https://cdi.example.fr/pmb",
    )
    sourceId: int = Field(ge=1, le=100_000, description="the external services source (`source_id`) Maille calls")
    user: str = Field(
        min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$", description="the external-services user"
    )
    password: str = Field(min_length=1, max_length=200, description="its password (never shown again)")
    auth: Literal["basic", "body"] = Field("basic", description="HTTP Basic, or PMB's in-body `auth_pw`")
    connexionPhrase: str = Field("", max_length=200, description="the source's connexion phrase (for `auth` body)")
    database: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_]{1,64}$",
        description="the school's database (`database=`), when the PMB hosts several",
    )
    opacUrl: str | None = Field(
        None,
        pattern=URL_PATTERN,
        max_length=250,
        description="the school's OPAC, for links to records and sign-on (Keycloak keeps a redirect URI in 255 "
        "characters)",
    )
    opacSignOnPath: str = Field(
        "empr.php",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,99}(\?[A-Za-z0-9_.=&%-]{0,200})?$",
        description="the OPAC page (relative to opacUrl) that starts PMB's sign-on through Keycloak: the reader's "
        "account page `empr.php` when the OpenID Connect source is the OPAC's",
    )
    loginSalt: str = Field(
        "",
        max_length=200,
        description="the OPAC's `opac_empr_password_salt`: readers' accounts through `login_token`, never their "
        "password (never shown again)",
    )
    readerScope: Literal["login", "mail", "cb"] = Field(
        "login",
        description="what identifies a reader for `login_token`: their PMB login (the ENT person id, as reader sync "
        "writes it), mail or barcode",
    )
    syncReaders: bool = Field(
        False,
        description="keep the school's PMB readers in step with the directory (pupils, teachers, staff; barcode and "
        "login: the ENT person id)",
    )
    readerCateg: int = Field(1, ge=1, le=2**31 - 1, description="the PMB reader category (`categ`) synced readers get")
    readerStatut: int = Field(1, ge=1, le=2**31 - 1, description="the PMB reader status (`statut`) synced readers get")
    readerCstat: int = Field(1, ge=1, le=2**31 - 1, description="the PMB statistics code (`cstat`) synced readers get")

    @field_validator("url", "opacUrl")
    @classmethod
    def _a_real_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 — raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if not parts.hostname:
            raise ValueError("the URL names no host")
        return value

    @model_validator(mode="after")
    def _phrase_for_body(self) -> ConnectionIn:
        if self.auth == "body" and not self.connexionPhrase:
            raise ValueError("auth body needs the source's connexionPhrase")
        return self


class ConnectionOut(BaseModel):
    """A school's PMB connection as shown (no secret)."""

    uai: str
    url: str
    sourceId: int
    user: str
    auth: str
    database: str | None
    opacUrl: str | None
    opacSignOnPath: str
    readerScope: str
    readerAccounts: bool
    syncReaders: bool


def shown(doc: dict[str, Any]) -> ConnectionOut:
    return ConnectionOut(
        uai=doc["_id"],
        url=doc["url"],
        sourceId=doc["sourceId"],
        user=doc["user"],
        auth=doc["auth"],
        database=doc.get("database"),
        opacUrl=doc.get("opacUrl"),
        opacSignOnPath=doc.get("opacSignOnPath", "empr.php"),
        readerScope=doc.get("readerScope", "login"),
        readerAccounts=bool(doc.get("loginSalt")),
        syncReaders=bool(doc.get("syncReaders")),
    )


SECRETS = ("password", "connexionPhrase", "loginSalt")  # sealed at rest (SecretBox), each bound to its school and field


class Connections:
    """The registered connections, each read by key and kept `ttl` seconds in memory; their secrets sealed at rest."""

    def __init__(self, docstore: Docstore, box: SecretBox, *, ttl: float = 30.0, works: Works | None = None) -> None:
        self.docstore = docstore
        self.box = box
        self.works = works  # to register or forget a connection (reading needs none)
        self.collection = docstore.db[CONNECTIONS]
        self.ttl = ttl
        self._known: dict[str, tuple[float, PmbConnection | None]] = {}

    def _opened(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            **doc,
            **{
                name: self.box.open(doc.get(name) or "", context=f"connections:{doc['_id']}:{name}") for name in SECRETS
            },
        }

    def _sealed(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            **doc,
            **{
                name: self.box.seal(doc.get(name) or "", context=f"connections:{doc['_id']}:{name}") for name in SECRETS
            },
        }

    async def seal_again(self) -> int:
        """Seal under the current key every secret still under an old key (or in clear); how many schools were."""
        done = 0
        for doc in await self.collection.find({}).to_list():
            if all(self.box.is_current(doc.get(name) or "") for name in SECRETS):
                continue
            async with self.docstore.writing():
                await self.collection.replace_one({"_id": doc["_id"]}, self._sealed(self._opened(doc)))
            done += 1
        return done

    async def get(self, uai: str) -> PmbConnection | None:
        now = time.monotonic()
        known = self._known.get(uai)
        if known is not None and known[0] > now:
            return known[1]
        doc = await self.collection.find_one({"_id": uai})
        doc = None if doc is None else self._opened(doc)
        conn = (
            None
            if doc is None
            else PmbConnection(
                url=doc["url"],
                source_id=doc["sourceId"],
                user=doc["user"],
                password=doc["password"],
                database=doc.get("database"),
                opac_url=doc.get("opacUrl"),
                opac_sign_on=doc.get("opacSignOnPath", "empr.php"),
                auth=doc["auth"],
                connexion_phrase=doc.get("connexionPhrase", ""),
                login_salt=doc.get("loginSalt", ""),
                reader_scope=doc.get("readerScope", "login"),
                sync_readers=bool(doc.get("syncReaders")),
                reader_fields=(doc.get("readerCateg", 1), doc.get("readerStatut", 1), doc.get("readerCstat", 1)),
            )
        )
        self._known[uai] = (now + self.ttl, conn)
        return conn

    async def doc(self, uai: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": uai})

    async def put(self, uai: str, given: ConnectionIn, *, tenant: str) -> bool:
        """Register or replace a school's connection, and tell identity where its OPAC is (one unit of work: Keycloak
        lets the OPAC sign readers in); True when it is new."""
        new = await self.collection.find_one({"_id": uai}, {"_id": 1}) is None
        work = self._opac_changed(uai, given.opacUrl, tenant)
        await self._commit(work.put(CONNECTIONS, self._sealed({"_id": uai, "tenant": tenant, **given.model_dump()})))
        self._known.pop(uai, None)
        return new

    async def delete(self, uai: str, *, tenant: str) -> bool:
        """Forget a school's connection (and tell identity its OPAC is gone); whether there was one."""
        if await self.collection.find_one({"_id": uai}, {"_id": 1}) is None:
            return False
        await self._commit(self._opac_changed(uai, None, tenant).delete(CONNECTIONS, {"_id": uai}))
        self._known.pop(uai, None)
        return True

    def _opac_changed(self, uai: str, opac_url: str | None, tenant: str) -> Work:
        if self.works is None:
            raise RuntimeError("these connections were opened to read only")
        work = self.works.new()
        work.event(
            type=OPAC_CHANGED,
            tenant=tenant,
            payload=opac_pb2.OpacChanged(uai=uai, opac_url=opac_url or ""),
        )
        return work

    async def _commit(self, work: Work) -> None:
        assert self.works is not None
        await self.works.commit(work)

    async def all(self) -> list[dict[str, Any]]:
        return await self.collection.find({}).sort("_id", 1).to_list()

"""Every query of the federation's collections, and nowhere else.

Collections (identity's own database):
- `federations` (_id = the Keycloak alias of a partner collectivité's IdP): its name, issuer, client,
  claim mapping and the structures it covers — the client secret is kept here, sealed (maille_kit.secretbox),
  so that the reconciler can put the IdP back, and is never answered by the API;
- `account_links` (_id = the Keycloak user id): which directory person an account is, through which
  upstream IdP and subject, since when — the directory's side of a link (Keycloak's side is the user's
  federated identity and its `ent_id` attribute);
- `opacs` (_id = a school's UAI): where its CDI's OPAC is, as the library service announced it — the OPACs
  Keycloak lets sign readers in (the redirect URIs of the PMB OPAC client).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maille_kit.docstore import Docstore
from maille_kit.secretbox import SecretBox

Doc = dict[str, Any]
FEDERATIONS, LINKS, OPACS = "federations", "account_links", "opacs"


class FederationRepository:
    """The federation's collections in identity's database (a federation's client secret sealed at rest)."""

    def __init__(self, docstore: Docstore, box: SecretBox) -> None:
        self.docstore = docstore
        self.db = docstore.db
        self.box = box

    def _opened(self, doc: Doc) -> Doc:
        return {**doc, "client_secret": self.box.open(doc.get("client_secret") or "", context=f"federations:{doc['_id']}:client_secret")}

    def _sealed(self, doc: Doc) -> Doc:
        return {**doc, "client_secret": self.box.seal(doc.get("client_secret") or "", context=f"federations:{doc['_id']}:client_secret")}

    async def all(self) -> list[Doc]:
        return [self._opened(doc) for doc in await self.db[FEDERATIONS].find({}).to_list()]

    async def get(self, alias: str) -> Doc | None:
        doc = await self.db[FEDERATIONS].find_one({"_id": alias})
        return None if doc is None else self._opened(doc)

    async def put(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[FEDERATIONS].replace_one({"_id": doc["_id"]}, self._sealed(doc), upsert=True)

    async def seal_again(self) -> int:
        """Seal under the current key every client secret still under an old key (or in clear); how many were."""
        done = 0
        for doc in await self.db[FEDERATIONS].find({}).to_list():
            if not self.box.is_current(doc.get("client_secret") or ""):
                await self.put(self._opened(doc))
                done += 1
        return done

    async def delete(self, alias: str) -> bool:
        async with self.docstore.writing():
            return (await self.db[FEDERATIONS].delete_one({"_id": alias})).deleted_count == 1

    async def record_link(self, person: str, *, idp: str, subject: str, user: str, at: datetime) -> None:
        async with self.docstore.writing():
            await self.db[LINKS].replace_one({"_id": user}, {"_id": user, "person": person, "idp": idp, "subject": subject,
                                                             "linked_at": at}, upsert=True)

    async def link(self, user: str) -> Doc | None:
        """Which person a Keycloak account is linked to (None: not linked)."""
        return await self.db[LINKS].find_one({"_id": user})

    async def links_of(self, person: str) -> list[Doc]:
        return await self.db[LINKS].find({"person": person}).to_list()

    async def unlink(self, user: str) -> None:
        async with self.docstore.writing():
            await self.db[LINKS].delete_one({"_id": user})

    async def put_opac(self, uai: str, url: str) -> None:
        async with self.docstore.writing():
            if url:
                await self.db[OPACS].replace_one({"_id": uai}, {"_id": uai, "url": url}, upsert=True)
            else:
                await self.db[OPACS].delete_one({"_id": uai})

    async def opac_redirect_uris(self) -> list[str]:
        """Where Keycloak may send a reader back to: anywhere under each school's OPAC."""
        return sorted({doc["url"].rstrip("/") + "/*" async for doc in self.db[OPACS].find({})})

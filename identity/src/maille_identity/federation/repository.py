"""Every query of the federation's collections, and nowhere else.

Collections (identity's own database):
- `federations` (_id = the Keycloak alias of a partner collectivité's IdP): its name, issuer, client,
  claim mapping and the structures it covers — the client secret is kept here, sealed (maille_kit.secretbox),
  so that the reconciler can put the IdP back, and is never answered by the API;
- `account_links` (_id = the Keycloak user id): which directory person an account is, through which
  upstream IdP and subject, since when — the directory's side of a link (Keycloak's side is the user's
  federated identity and its `ent_id` attribute) —, and `picture`, what a sign-in needs of the person (their
  profiles, classes, children, whether detached: `picture()`), kept in step by identity's consumer of the
  person events, so that a sign-in reads one document;
- `person_accounts` (_id = a directory person's id): the Keycloak user ids linked to them — how the accounts
  of a person changed by an import are found by key (a query by `person` would read every link, at each of
  the night's events). Written before a link and cleaned after an unlink, so it may name an account no longer
  linked to the person, never miss one: `links_of` checks each against its link;
- `opacs` (_id = a school's UAI): where its CDI's OPAC is, as the library service announced it — the OPACs
  Keycloak lets sign readers in (the redirect URIs of the PMB OPAC client).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maille_kit.docstore import Docstore, by_ids
from maille_kit.secretbox import SecretBox

Doc = dict[str, Any]


def picture(person: Doc) -> Doc:
    """What a sign-in needs of a directory person, kept on their accounts' links: their id, profiles (the token's
    claims), classes and children (what the sign-in's use is counted by), and whether they are detached."""
    return (
        {
            "_id": person["_id"],
            "profiles": [{"structure": p["structure"], "code": p["code"]} for p in person.get("profiles", [])],
            "classes": [*person.get("classes", []), *person.get("groups", [])][:20],  # as the events name them
            "children": list(person.get("children", []))[:10],
        }
        | ({"detached_at": True} if person.get("detached_at") else {})
    )


FEDERATIONS, LINKS, OPACS = "federations", "account_links", "opacs"
PERSON_ACCOUNTS = "person_accounts"
BUILT = "~built"  # the document of `person_accounts` saying every link is in it (links made before it existed too)


class FederationRepository:
    """The federation's collections in identity's database (a federation's client secret sealed at rest)."""

    def __init__(self, docstore: Docstore, box: SecretBox) -> None:
        self.docstore = docstore
        self.db = docstore.db
        self.box = box

    def _opened(self, doc: Doc) -> Doc:
        return {
            **doc,
            "client_secret": self.box.open(
                doc.get("client_secret") or "", context=f"federations:{doc['_id']}:client_secret"
            ),
        }

    def _sealed(self, doc: Doc) -> Doc:
        return {
            **doc,
            "client_secret": self.box.seal(
                doc.get("client_secret") or "", context=f"federations:{doc['_id']}:client_secret"
            ),
        }

    async def api_clients(self) -> list[Doc]:
        """The API clients (federation/clients.py), for the realm's declaration."""
        return await self.db["api_clients"].find({}).sort("_id", 1).to_list()

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

    async def record_link(
        self, person: str, *, idp: str, subject: str, user: str, at: datetime, seen: Doc | None = None
    ) -> None:
        before = await self.db[LINKS].find_one({"_id": user}, {"person": 1})
        async with self.docstore.writing():
            if before is not None and before["person"] != person:  # the account now stands for another entry
                await self.db[PERSON_ACCOUNTS].update_one({"_id": before["person"]}, {"$pull": {"users": user}})
            await self.db[PERSON_ACCOUNTS].update_one({"_id": person}, {"$addToSet": {"users": user}}, upsert=True)
            await self.db[LINKS].replace_one(
                {"_id": user},
                {"_id": user, "person": person, "idp": idp, "subject": subject, "linked_at": at}
                | ({"picture": seen} if seen is not None else {}),
                upsert=True,
            )

    async def link(self, user: str) -> Doc | None:
        """Which person a Keycloak account is linked to (None: not linked)."""
        return await self.db[LINKS].find_one({"_id": user})

    async def links_of(self, person: str) -> list[Doc]:
        return (await self.links_of_many([person])).get(person, [])

    async def links_of_many(self, persons: list[str]) -> dict[str, list[Doc]]:
        """The links of each of these persons who has any, read by key (two queries for a thousand persons)."""
        users = [
            user for doc in (await by_ids(self.db[PERSON_ACCOUNTS], persons)).values() for user in doc.get("users", [])
        ]
        found: dict[str, list[Doc]] = {}
        for link in (await by_ids(self.db[LINKS], users)).values():
            found.setdefault(link["person"], []).append(link)
        return found

    async def set_picture(self, users: list[str], seen: Doc) -> None:
        """The person these accounts are linked to changed: what their next sign-in reads of them."""
        async with self.docstore.writing():
            await self.db[LINKS].update_many(
                {"_id": {"$in": users}, "person": seen["_id"]}, {"$set": {"picture": seen}}
            )

    async def unlink(self, user: str) -> None:
        async with self.docstore.writing():
            link = await self.db[LINKS].find_one_and_delete({"_id": user})
            if link is not None:
                await self.db[PERSON_ACCOUNTS].update_one({"_id": link["person"]}, {"$pull": {"users": user}})

    async def index_links(self) -> int:
        """Put every link in `person_accounts` once (the links made before it existed); how many were read."""
        if await self.db[PERSON_ACCOUNTS].find_one({"_id": BUILT}) is not None:
            return 0
        by_person: dict[str, list[str]] = {}
        async for link in self.db[LINKS].find({}, {"person": 1}):
            by_person.setdefault(link["person"], []).append(link["_id"])
        async with self.docstore.writing():
            for person, users in by_person.items():
                await self.db[PERSON_ACCOUNTS].update_one(
                    {"_id": person}, {"$addToSet": {"users": {"$each": users}}}, upsert=True
                )
            await self.db[PERSON_ACCOUNTS].update_one(
                {"_id": BUILT}, {"$set": {"links": sum(map(len, by_person.values()))}}, upsert=True
            )
        return sum(map(len, by_person.values()))

    async def put_opac(self, uai: str, url: str) -> None:
        async with self.docstore.writing():
            if url:
                await self.db[OPACS].replace_one({"_id": uai}, {"_id": uai, "url": url}, upsert=True)
            else:
                await self.db[OPACS].delete_one({"_id": uai})

    async def opac_redirect_uris(self) -> list[str]:
        """Where Keycloak may send a reader back to: anywhere under each school's OPAC."""
        return sorted({doc["url"].rstrip("/") + "/*" async for doc in self.db[OPACS].find({})})

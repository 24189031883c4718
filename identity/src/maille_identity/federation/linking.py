"""Account linking: a person who signed in through an upstream IdP is matched to their directory entry.

Keycloak holds what the upstream IdP said (user attributes its mappers import when the account is made, at
the person's first sign-in); at the end of each browser sign-in the gateway asks identity to settle who the
account is:
- EduConnect (pupils, parents): the AAF join keys of `FrEduCtRefId`; for a pupil with none that matches,
  names + birth date + UAI;
- the académie's agent IdP: the join key (`uid`), else the academic email;
- a partner collectivité: the claims its federation maps to a join key or an email, within the
  structures the federation covers.
One match: the account is linked — the person's ENT id, profiles, UAIs and GAR attributes are written on
the Keycloak user (its tokens carry them) and the link is recorded in the directory. Several (a parent
with children in two schools): the person chooses among them once; the choice is the link, remembered.
None, or only detached or deleted persons: refused with a clear reason, and the account deleted — it
stands for nobody, and the next try makes it afresh with what the IdP says then (its attributes are not
written again at each sign-in). A linked account is checked at every sign-in: a person detached or deleted
since is refused, and changed profiles or schools are written on the account again.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from maille_identity.directory.identifiers import gar_profile
from maille_identity.directory.importer import person_id
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.federation.keycloak import KeycloakUnavailable, Reconciler
from maille_identity.federation.repository import FederationRepository, picture
from maille_kit.auth import Principal
from maille_kit.problems import Problem

Doc = dict[str, Any]
EDUCONNECT, ACADEMIE, LOCAL = "educonnect", "academie", "local"
# What identity writes on a linked account (and the tokens carry): only admins may write them.
MAILLE_ATTRIBUTES = ("ent_id", "profiles", "uai", "gar_profiles", "id_ent")
security = logging.getLogger("maille.security")
log = logging.getLogger("maille.identity.linking")


@dataclass
class Upstream:
    """What the upstream IdP said about the person, as Keycloak recorded it."""

    idp: str
    subject: str
    join_keys: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    last_name: str = ""
    first_name: str = ""
    birth_date: str = ""
    uais: list[str] = field(default_factory=list)
    pupil: bool = False


def _first(attributes: Doc, name: str) -> str:
    values = attributes.get(name) or [""]
    return str(values[0]).strip()


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).upper().strip()


def upstream_of(user: Doc, federations: dict[str, Doc]) -> Upstream | None:
    """The upstream sign-in a Keycloak user comes from (None: a local account of the realm)."""
    links = user.get("federatedIdentities") or []
    if not links:
        return None
    link = links[0]
    idp, attrs = link["identityProvider"], user.get("attributes") or {}
    found = Upstream(idp=idp, subject=link.get("userId", ""))
    if idp == EDUCONNECT:
        # Names as EduConnect said them (attributes only admins and its mappers write), not the account's own
        # first and last names, which the person may edit.
        found.last_name, found.first_name = _first(attrs, "ec_last_name"), _first(attrs, "ec_first_name")
        # FrEduCtRefId values look like {AAF}<académie>|…|<join key>: the join key is the last part.
        found.join_keys = [
            v.rsplit("|", 1)[-1].strip() for v in attrs.get("ec_ref_ids", []) if str(v).startswith("{AAF}")
        ]
        found.pupil = _first(attrs, "ec_affiliation").startswith("eleve")
        found.birth_date = _first(attrs, "ec_birth_date")
        found.uais = [u.strip().upper() for u in attrs.get("ec_uai", []) if u]
    elif idp == ACADEMIE:
        found.join_keys = [k for k in attrs.get("agent_join_key", []) if k]
        found.emails = [m.strip().lower() for m in attrs.get("agent_email", []) if m]
    elif idp in federations:
        found.join_keys = [k for k in attrs.get("fed_join_key", []) if k]
        found.emails = [m.strip().lower() for m in attrs.get("fed_email", []) if m]
        found.uais = list(federations[idp].get("structures", []))
    return found


class Linking:
    """Settles which directory person a signed-in account is."""

    def __init__(
        self,
        directory: DirectoryRepository,
        federations: FederationRepository,
        keycloak: Reconciler | None,
        *,
        tenant: str,
        id_secret: bytes,
        default_id_ent: str,
    ) -> None:
        self.directory = directory
        self.federations = federations
        self.keycloak = keycloak
        self.tenant = tenant
        self.id_secret = id_secret
        self.default_id_ent = default_id_ent

    async def sign_in(self, principal: Principal, *, choice: str | None = None) -> Doc:
        """The account's link: `linked` (with `refresh` when the tokens must be fetched again to carry it),
        `choose` (with the candidates), or `local` (an account of the realm's own, not from an upstream IdP);
        a Problem 403 when the person may not sign in.

        Who the account is comes from identity's own record (`account_links`, by Keycloak user id), never
        from the token: a token naming another person than the link is refused as tampered with."""
        link = await self.federations.link(principal.subject)
        claimed = principal.person_id
        if link is not None and choice is None:
            if claimed is not None and claimed != link["person"]:
                await self._tampered(principal, link)
            # What the directory says of them, as the link keeps it (identity follows the directory's changes onto
            # it): one read. A link made before it kept that reads the person.
            person = link.get("picture") or await self.directory.person(link["person"])
            self._admissible(person)
            assert person is not None  # admissible
            refresh = False
            # The account's profiles and schools follow the directory: written again (and the tokens fetched
            # again) only when the token shows they changed — the usual sign-in costs Keycloak nothing more.
            if self.keycloak is not None and (claimed is None or not self._token_current(principal, person)):
                refresh = await self._write_account(await self.keycloak.user(principal.subject), person)
            return {"status": "linked", "person": link["person"], "refresh": refresh, **await self._counted_as(person)}
        if link is None and claimed is not None:
            await self._tampered(principal, None)
        if self.keycloak is None:  # no Keycloak to read the upstream sign-in from: nothing to link
            return {"status": "local"}
        user = await self.keycloak.user(principal.subject)
        upstream = upstream_of(user, {f["_id"]: f for f in await self.federations.all()})
        if upstream is None:
            return {"status": "local"}
        candidates = await self.candidates(upstream)
        active = [p for p in candidates if "detached_at" not in p]
        if not active:
            await self._forget_unmatched(principal.subject)
            if candidates:
                self._admissible(candidates[0])  # every entry detached: refused as such
            raise Problem(
                403,
                "Aucune fiche de l'annuaire ne correspond à ce compte. Si vous êtes inscrit dans un établissement "
                "de la région, adressez-vous à son secrétariat pour que votre fiche soit mise à jour.",
                title="Compte introuvable dans l'annuaire",
                reason="no-match",
            )
        if choice is not None:
            chosen = next((p for p in active if p["_id"] == choice), None)
            if chosen is None:
                raise Problem(422, f"{choice} is not one of this account's directory entries", reason="bad-choice")
            active = [chosen]
        if len(active) > 1:
            schools = {s["_id"]: s["name"] for s in await self.directory.structures(self.tenant)}
            return {"status": "choose", "candidates": [await self._describe(p, schools) for p in active]}
        person = active[0]
        await self._write_account(user, person, force=True)
        await self.federations.record_link(
            person["_id"],
            idp=upstream.idp,
            subject=upstream.subject,
            user=user["id"],
            at=datetime.now(UTC),
            seen=picture(person),
        )
        return {"status": "linked", "person": person["_id"], "refresh": True, **await self._counted_as(person)}

    async def accounts(self, principal: Principal) -> Doc:
        """The directory entries the signed-in account may be (a parent with children in two schools has two), the
        one it is linked to marked `current`: what the person switches between after signing in. Read afresh from
        what the upstream IdP said and from the directory (an import may have added an entry since the link)."""
        link = await self.federations.link(principal.subject)
        if link is None:  # an account of the realm's own that stands for no directory person (an operator's)
            return {"current": None, "accounts": []}
        current = link["person"]
        schools = {s["_id"]: s["name"] for s in await self.directory.structures(self.tenant)}
        entries: list[Doc] = []
        if self.keycloak is not None and link.get("idp") != LOCAL:
            user = await self.keycloak.user(principal.subject)
            upstream = upstream_of(user, {f["_id"]: f for f in await self.federations.all()})
            if upstream is not None:
                entries = [p for p in await self.candidates(upstream) if "detached_at" not in p]
        if not any(p["_id"] == current for p in entries):  # a local account, or an entry the IdP no longer names
            person = await self.directory.person(current)
            entries = ([person] if person is not None else []) + entries
        described = [{**await self._describe(p, schools), "current": p["_id"] == current} for p in entries]
        return {"current": current, "accounts": sorted(described, key=lambda d: (not d["current"], d["schools"]))}

    async def _counted_as(self, person: Doc) -> Doc:
        """What the gateway's sign-in use tells the observatory beside the person's pseudonym: the school and profile
        they sign in as (the first of each in sort order, as every service reads them from the token's claims:
        `maille_kit.usage.first`), and the classes — a pupil's own, a parent's children's —
        that the parents reached per class are counted by."""
        profiles = person.get("profiles") or []
        classes = list(person.get("classes", []))
        if person.get("children"):
            for child in await self.directory.persons_by_id(person["children"][:10]):
                classes += child.get("classes", [])
        return {
            "school": min((p.get("structure", "") for p in profiles), default=""),
            "profile": min((p.get("code", "") for p in profiles), default=""),
            "classes": classes[:20],
        }

    async def _forget_unmatched(self, user_id: str) -> None:
        """An account from an upstream IdP that stands for no directory person goes (its session with it): the
        next sign-in makes it again from what the IdP says then. Best effort — the refusal stands either way."""
        assert self.keycloak is not None
        try:
            await self.keycloak.delete_user(user_id)
        except KeycloakUnavailable as exc:
            log.warning("an unmatched account could not be deleted: %s", exc)

    async def link_local(self, user_id: str, person_id: str) -> None:
        """Link a local account of the realm (no upstream IdP: a demo or service desk account) to a person."""
        person = await self.directory.person(person_id)
        self._admissible(person)
        assert person is not None and self.keycloak is not None
        await self._write_account(await self.keycloak.user(user_id), person, force=True)
        await self.federations.record_link(
            person_id, idp=LOCAL, subject=user_id, user=user_id, at=datetime.now(UTC), seen=picture(person)
        )

    async def _tampered(self, principal: Principal, link: Doc | None) -> None:
        """A token names a person its account is not linked to: somebody wrote Maille's attributes behind identity's
        back. Logged as a security event; the account written back from the directory (or cleared, unlinked);
        refused."""
        security.warning(
            "sign-in refused: the token's ent_id is not the account's link",
            extra={
                "security_event": "claims-tampered",
                "keycloak_user": principal.subject,
                "client": principal.client_id,
                "claimed_person": principal.person_id,
                "linked_person": link["person"] if link else None,
                "claimed_profiles": principal.claims.get("profiles"),
                "claimed_uai": principal.claims.get("uai"),
            },
        )
        if self.keycloak is not None:
            user = await self.keycloak.user(principal.subject)
            person = await self.directory.person(link["person"]) if link else None
            if person is not None:
                await self._write_account(user, person, force=True)
            else:
                await self.keycloak.set_attributes(user, {name: [] for name in MAILLE_ATTRIBUTES})
        raise Problem(
            403,
            "Les informations de ce compte ont été modifiées en dehors de l'annuaire : la connexion est refusée "
            "et le compte a été remis en état. Reconnectez-vous ; si cela se reproduit, prévenez le référent "
            "numérique de votre établissement.",
            title="Connexion refusée",
            reason="tampered",
        )

    async def refresh_accounts(self, person: Doc) -> None:
        """A person changed (`person`: their `picture`): what their links keep of them, and their directory facts
        (`_id`, `profiles`) on each account linked to them, written again."""
        links = await self.federations.links_of(person["_id"])
        if links:
            await self.federations.set_picture([link["_id"] for link in links], person)
        if self.keycloak is None:
            return
        for link in links:
            try:
                user = await self.keycloak.user(link["_id"])
            except KeycloakUnavailable as exc:
                if "404" in str(exc):  # the account was deleted in Keycloak: the link goes too
                    await self.federations.unlink(link["_id"])
                    continue
                raise
            await self._write_account(user, person)

    async def forget(self, person_id: str) -> None:
        """A person left the directory: their linked accounts are deleted (and their sessions with them)."""
        for link in await self.federations.links_of(person_id):
            if self.keycloak is not None:
                await self.keycloak.delete_user(link["_id"])
            await self.federations.unlink(link["_id"])

    @staticmethod
    def _token_current(principal: Principal, person: Doc) -> bool:
        profiles = person.get("profiles", [])
        return sorted(principal.claims.get("profiles") or []) == sorted({p["code"] for p in profiles}) and sorted(
            principal.claims.get("uai") or []
        ) == sorted({p["structure"] for p in profiles})

    @staticmethod
    def _admissible(person: Doc | None) -> None:
        """Refuse a person deleted from the directory, or detached from every school."""
        if person is None:
            raise Problem(
                403,
                "La fiche de l'annuaire liée à ce compte n'existe plus. Adressez-vous au secrétariat de votre "
                "établissement.",
                title="Compte supprimé",
                reason="deleted",
            )
        if "detached_at" in person:
            raise Problem(
                403,
                "Votre compte a été retiré de l'annuaire de votre établissement (vous n'y êtes plus inscrit). "
                "Adressez-vous au secrétariat de l'établissement.",
                title="Compte détaché",
                reason="detached",
            )

    async def candidates(self, upstream: Upstream) -> list[Doc]:
        """The directory persons the upstream sign-in may be."""
        found: dict[str, Doc] = {}
        for key in upstream.join_keys:
            person = await self.directory.person(person_id(self.id_secret, self.tenant, key))
            if person is not None and key in person.get("keys", []):
                found[person["_id"]] = person
        if not found and upstream.emails:
            for person in await self.directory.persons_by_email(self.tenant, upstream.emails):
                found[person["_id"]] = person
        if not found and upstream.pupil and upstream.birth_date and upstream.last_name:
            for person in await self.directory.pupils_born(self.tenant, upstream.birth_date):
                if (
                    _fold(person.get("last_name", "")) == _fold(upstream.last_name)
                    and _fold(person.get("first_name", "")) == _fold(upstream.first_name)
                    and (not upstream.uais or set(upstream.uais) & {p["structure"] for p in person.get("profiles", [])})
                ):
                    found[person["_id"]] = person
        if upstream.idp not in (EDUCONNECT, ACADEMIE) and upstream.uais:  # a collectivité: only its structures
            found = {
                k: p for k, p in found.items() if set(upstream.uais) & {pr["structure"] for pr in p.get("profiles", [])}
            }
        return [p for p in found.values() if p.get("tenant") == self.tenant]

    async def _describe(self, person: Doc, schools: dict[str, str]) -> Doc:
        """What the person is shown of one of their entries to choose among (`schools`: names by UAI)."""
        children = await self.directory.persons_by_id(person.get("children", []))
        return {
            "id": person["_id"],
            "last_name": person.get("last_name", ""),
            "first_name": person.get("first_name", ""),
            "schools": sorted({schools.get(p["structure"], p["structure"]) for p in person.get("profiles", [])}),
            "children": sorted(f"{c.get('first_name', '')} {c.get('last_name', '')}".strip() for c in children),
        }

    async def _write_account(self, user: Doc, person: Doc, *, force: bool = False) -> bool:
        """Write the person's directory facts on their Keycloak account; whether anything changed."""
        tenant = await self.directory.tenant(self.tenant)
        profiles = person.get("profiles", [])
        wanted = {
            "ent_id": [person["_id"]],
            "profiles": sorted({p["code"] for p in profiles}),
            "uai": sorted({p["structure"] for p in profiles}),
            "gar_profiles": sorted({gar_profile(p["code"]) for p in profiles}),
            "id_ent": [tenant["gar_id_ent"] if tenant and tenant.get("gar_id_ent") else self.default_id_ent],
        }
        attrs = user.get("attributes") or {}
        if not force and all(sorted(attrs.get(k, [])) == v for k, v in wanted.items()):
            return False
        assert self.keycloak is not None
        await self.keycloak.set_attributes(user, wanted)
        return True

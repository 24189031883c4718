"""Subscriptions (abonnements) and the licences of per-person ones, with the GAR's semantics (gar.md §3).

- A vendor creates, changes and deletes subscriptions to its own resources, for schools of the directory.
- A per-person (`INDIV`) subscription's licences are assigned by the school's assignment managers (its
  direction, or holders of the `gar_resp_aff` role) to persons, classes or groups; each public has its own
  count and `nbLicenceGlobale` bounds them all; `ILLIMITE` is no bound. A licence of a `transferable`
  subscription comes back when released; of a `non transferable` one it is spent (the person loses it,
  the count does not come back). Counts never go over: the
  subscription's counters move only by a conditional write on its version (the guard of a unit of work that
  also writes the assignments and their event), under a per-subscription lock, and all of a call's
  licences are reserved at once or none.
- A person leaving a school releases their licences there; a school leaving the directory flags the
  subscriptions covering it; a subscription whose end has passed is announced as expired, once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from maille.catalog.v1 import subscriptions_pb2 as pb
from maille_catalog.directory import Directory, publics_in
from maille_catalog.locks import one_at_a_time
from maille_catalog.repository import ASSIGNMENTS, SUBSCRIPTIONS, ResourceRepository, SubscriptionRepository
from maille_catalog.schemas import LICENCE_FIELDS, PUBLICS, SubscriptionChange, SubscriptionIn
from maille_contracts import (
    ASSIGNMENT_CHANGED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_DELETED,
    SUBSCRIPTION_EXPIRED,
    SUBSCRIPTION_UPDATED,
)
from maille_kit import errors
from maille_kit.docstore import Docstore
from maille_kit.versions import check
from maille_kit.work import Conflict, Work, Works

Doc = dict[str, Any]
COUNTS = ("total", *PUBLICS)
TRIES = 20  # reads again of a subscription another replica changed meanwhile


def _limit(value: Any) -> int | None:
    """A licence count as a bound: None is no bound (ILLIMITE, or no count of its own)."""
    return value if isinstance(value, int) else None


class Subscriptions:
    """The catalog's subscriptions and assignments."""

    def __init__(
        self,
        docstore: Docstore,
        works: Works,
        directory: Directory,
        *,
        tenant: str,
        observer: Any = None,
        per_person_of: Callable[[str], list[str] | None] | None = None,
    ) -> None:
        self.observer = observer  # told of each subscription written (the médiacentre of this replica)
        self.per_person_of = per_person_of  # a school's per-person subscriptions (ids), None while unknown
        self.repo = SubscriptionRepository(docstore)
        self.resources = ResourceRepository(docstore)
        self.directory = directory
        self.works = works
        self.tenant = tenant

    # -- a vendor's subscriptions -------------------------------------------------------------------------

    async def get(self, subscription_id: str) -> Doc | None:
        return await self.repo.get(subscription_id)

    async def create(self, *, editor: str, subscription: SubscriptionIn) -> Doc:
        await self._check_resource(editor, subscription.idRessource)
        unknown = await self.directory.unknown_schools(subscription.uaiEtab)
        if unknown:
            raise errors.Invalid(f"unknown UAI: {', '.join(unknown)} (not schools of the directory)", field="uaiEtab")
        now = datetime.now(UTC)
        doc = {
            "_id": subscription.idAbonnement,
            **subscription.model_dump(),
            "idEditeur": editor,
            "version": 1,
            "licencesAffectees": dict.fromkeys(COUNTS, 0),
            "licencesDepensees": dict.fromkeys(COUNTS, 0),
            "etablissementsRetires": [],
            "expiree": subscription.finValidite <= now,
            "creeLe": now,
            "misAJour": now,
        }
        async with one_at_a_time(f"subscription:{subscription.idAbonnement}"):
            if await self.get(subscription.idAbonnement) is not None:
                raise errors.Conflict(f"l'abonnement {subscription.idAbonnement} existe deja: update it instead")
            work = self.works.new().insert(SUBSCRIPTIONS, doc, guard=True)
            try:
                await self._commit(work, SUBSCRIPTION_CREATED, pb.SubscriptionCreated(subscription=message(doc)))
            except Conflict:
                raise errors.Conflict(
                    f"l'abonnement {subscription.idAbonnement} existe deja: update it instead"
                ) from None
        if self.observer is not None:
            self.observer.wrote_subscription(doc)
        return doc

    async def update(
        self, *, editor: str, subscription_id: str, change: SubscriptionChange, expected_version: int | None = None
    ) -> Doc:
        if change.idAbonnement != subscription_id:
            raise errors.Invalid(
                f"idAbonnement {change.idAbonnement!r} is not the subscription of the path ({subscription_id})",
                field="idAbonnement",
            )
        async with one_at_a_time(f"subscription:{subscription_id}"):
            existing = await self.owned(editor, subscription_id)
            check(expected_version, existing["version"], subscription_id)
            if change.idRessource != existing["idRessource"]:
                raise errors.Invalid(
                    "idRessource cannot change: delete the subscription and create another", field="idRessource"
                )
            if change.finValidite <= existing["debutValidite"].replace(tzinfo=UTC):
                raise errors.Invalid(
                    "finValidite must be after debutValidite (kept from the creation)", field="finValidite"
                )
            fields = change.model_dump(exclude={"debutValidite"})
            self._check_counts(existing, fields)
            now = datetime.now(UTC)
            doc = {
                **existing,
                **fields,
                "version": existing["version"] + 1,
                "expiree": change.finValidite <= now,
                "misAJour": now,
            }
            if all(existing.get(k) == v for k, v in fields.items()):
                return existing
            try:
                await self._commit(
                    self._at_version(existing, doc),
                    SUBSCRIPTION_UPDATED,
                    pb.SubscriptionUpdated(subscription=message(doc)),
                )
            except Conflict:
                raise errors.Conflict(f"{subscription_id} changed meanwhile: send your change again") from None
        if self.observer is not None:
            self.observer.wrote_subscription(doc)
        return doc

    async def delete(self, *, editor: str, subscription_id: str, expected_version: int | None = None) -> None:
        async with one_at_a_time(f"subscription:{subscription_id}"):
            existing = await self.owned(editor, subscription_id)
            check(expected_version, existing["version"], subscription_id)
            work = (
                self.works.new()
                .delete(SUBSCRIPTIONS, {"_id": subscription_id})
                .delete(ASSIGNMENTS, {"abonnement": subscription_id})
            )
            await self._commit(
                work,
                SUBSCRIPTION_DELETED,
                pb.SubscriptionDeleted(id=subscription_id, resource_id=existing["idRessource"]),
            )
        if self.observer is not None:
            self.observer.deleted_subscription(existing)

    async def listing(
        self, *, editor: str, filters: dict[str, str], after: str | None = None, offset: int = 0, limit: int
    ) -> list[Doc]:
        return await self.repo.of_editor(editor, filters, after=after, offset=offset, limit=limit)

    # -- assignments --------------------------------------------------------------------------------------

    async def of_school(self, uai: str) -> list[Doc]:
        """The per-person subscriptions of a school, for its assignment managers."""
        return await self.repo.per_person_of_school(uai)

    async def assigned(self, subscription_id: str, uai: str) -> list[Doc]:
        return await self.repo.assigned(subscription_id, uai)

    async def assign(
        self, *, subscription_id: str, uai: str, person_ids: list[str], group_ids: list[str], by: str
    ) -> dict[str, Any]:
        """Licences of a per-person subscription to persons and to every member of classes or groups, all or none."""
        subscription = await self._assignable(subscription_id, uai)
        wanted = await self._persons(subscription, uai, person_ids, group_ids)
        async with one_at_a_time(f"subscription:{subscription_id}"):
            for _ in range(TRIES):
                current = await self.get(subscription_id)
                if current is None:
                    raise errors.NotFound(f"no subscription {subscription_id}")
                counts = dict(current["licencesAffectees"])
                # Who holds one already (none when no licence is in use: the common first assignment of a class).
                held = (
                    {
                        doc["personne"]
                        for doc in (
                            await self.repo.assignments_by_key(
                                [f"{subscription_id}|{p}" for p in wanted], {"personne": 1}
                            )
                        ).values()
                    }
                    if counts["total"]
                    else set()
                )
                new = {person: public for person, public in wanted.items() if person not in held}
                if not new:
                    break
                counts = self._reserved(current, Counter(new.values()))
                now = datetime.now(UTC)
                docs = [
                    {
                        "_id": f"{subscription_id}|{person}",
                        "abonnement": subscription_id,
                        "idRessource": subscription["idRessource"],
                        "personne": person,
                        "uai": uai,
                        "public": public,
                        "par": by,
                        "le": now,
                    }
                    for person, public in new.items()
                ]
                # The counts at the version read, the assignments and their event: all, or (another replica changed the
                # subscription meanwhile) none, and read again.
                work = self._at_version(current, {"licencesAffectees": counts}).insert(ASSIGNMENTS, *docs)
                try:
                    await self._assignments_changed(work, subscription, uai, by, assigned_ids=sorted(new))
                except Conflict:
                    continue
                break
            else:
                raise errors.Conflict(f"{subscription_id} is changing too often right now: try again")
        return {"affectees": sorted(new), "dejaAffectees": sorted(held), "licencesAffectees": counts}

    async def release(self, *, subscription_id: str, uai: str, person_ids: list[str], by: str) -> list[str]:
        """Take licences back from persons; the persons who had one."""
        subscription = await self.get(subscription_id)
        if subscription is None:
            raise errors.NotFound(f"no subscription {subscription_id}")
        return await self._release(subscription, uai, by, keys=[f"{subscription_id}|{p}" for p in person_ids])

    async def left_schools(self, person_id: str, uais: list[str]) -> None:
        """A person left these schools (or the directory): their licences there go back. The per-person
        subscriptions of those schools come from the offer in memory when it is loaded (then each licence is
        looked up by key), else from a query over the assignments."""
        offered = [self.per_person_of(uai) for uai in uais] if self.per_person_of is not None else [None]
        if all(ids is not None for ids in offered):
            candidates = sorted({sub_id for ids in offered for sub_id in ids or ()})
            held = await self.repo.assignments_by_key(
                [f"{sub_id}|{person_id}" for sub_id in candidates], {"abonnement": 1}
            )
            subscriptions = {doc["abonnement"] for doc in held.values()}
        else:
            subscriptions = await self.repo.subscriptions_holding(person_id, uais)
        for subscription_id in sorted(subscriptions):
            subscription = await self.get(subscription_id)
            if subscription is not None:
                for uai in uais:
                    await self._release(subscription, uai, "directory", keys=[f"{subscription_id}|{person_id}"])

    async def school_removed(self, uai: str) -> None:
        """A school left the directory: the subscriptions covering it say so."""
        async for existing in self.repo.covering(uai):
            if uai in existing.get("etablissementsRetires", []):
                continue
            async with one_at_a_time(f"subscription:{existing['_id']}"):
                for _ in range(TRIES):
                    current = await self.get(existing["_id"])
                    if current is None or uai in current["etablissementsRetires"]:
                        break
                    doc = {
                        **current,
                        "etablissementsRetires": [*current["etablissementsRetires"], uai],
                        "version": current["version"] + 1,
                        "misAJour": datetime.now(UTC),
                    }
                    try:
                        await self._commit(
                            self._at_version(current, doc),
                            SUBSCRIPTION_UPDATED,
                            pb.SubscriptionUpdated(subscription=message(doc)),
                        )
                    except Conflict:
                        continue
                    break

    async def expire(self) -> int:
        """Announce, once, each subscription whose end has passed; how many."""
        count = 0
        async for doc in self.repo.past_their_end(datetime.now(UTC)):
            work = self.works.new().update(
                SUBSCRIPTIONS, {"_id": doc["_id"], "expiree": False}, {"$set": {"expiree": True}}, guard=True
            )
            try:
                await self._commit(
                    work,
                    SUBSCRIPTION_EXPIRED,
                    pb.SubscriptionExpired(
                        id=doc["_id"], resource_id=doc["idRessource"], valid_until=_timestamp(doc["finValidite"])
                    ),
                )
            except Conflict:
                continue  # another replica announced it
            count += 1
        return count

    # -- inside -------------------------------------------------------------------------------------------

    async def _check_resource(self, editor: str, ark: str) -> None:
        resource = await self.resources.owner_and_state(ark)
        if resource is None or resource["statut"] != "publiee":
            raise errors.Invalid(f"no published resource {ark}: publish it first", field="idRessource")
        if resource["idEditeur"] != editor:
            raise errors.Forbidden(f"{ark} belongs to another vendor")

    async def owned(self, editor: str, subscription_id: str) -> Doc:
        """One of `editor`'s subscriptions; 404 or 403 otherwise."""
        existing = await self.get(subscription_id)
        if existing is None:
            raise errors.NotFound(f"no subscription {subscription_id}")
        if existing["idEditeur"] != editor:
            raise errors.Forbidden(f"{subscription_id} belongs to another vendor")
        return existing

    def _check_counts(self, existing: Doc, fields: Doc) -> None:
        used = existing["licencesAffectees"]
        bounds = [("nbLicenceGlobale", "total"), *((name, public) for public, name in LICENCE_FIELDS.items())]
        for name, key in bounds:
            bound = _limit(fields.get(name))
            if bound is not None and bound < used.get(key, 0):
                raise errors.Conflict(
                    f"{name} {bound} is below the {used[key]} licences already assigned: release some first",
                    field=name,
                )

    async def _assignable(self, subscription_id: str, uai: str) -> Doc:
        subscription = await self.get(subscription_id)
        if subscription is None or uai not in subscription["uaiEtab"]:
            raise errors.NotFound(f"no subscription {subscription_id} for school {uai}")
        if subscription["typeAffectation"] != "INDIV":
            raise errors.Conflict(f"{subscription_id} covers whole schools (ETABL): there is nothing to assign")
        if uai in subscription["etablissementsRetires"]:
            raise errors.Conflict(f"school {uai} has left the directory")
        if subscription["expiree"] or subscription["finValidite"].replace(tzinfo=UTC) <= datetime.now(UTC):
            raise errors.Conflict(f"{subscription_id} has expired")
        return subscription

    async def _persons(
        self, subscription: Doc, uai: str, person_ids: list[str], group_ids: list[str]
    ) -> dict[str, str]:
        """person id -> the public their licence counts in; the named persons must all fit."""
        named = await self.directory.persons_by_id(person_ids)
        unknown = [p for p in person_ids if p not in named]
        if unknown:
            raise errors.Invalid(f"unknown persons: {', '.join(unknown[:20])}", field="personnes")
        for group_id in group_ids:
            group = await self.directory.group(group_id)
            if group is None or group["uai"] != uai:
                raise errors.Invalid(f"no class or group {group_id} in school {uai}", field="groupes")
        targets = subscription["publicCible"]
        wanted: dict[str, str] = {}
        outside: list[str] = []
        for person in named.values():
            public = next((p for p in publics_in(person, uai) if p in targets), None)
            if public is None:
                outside.append(person["_id"])
            else:
                wanted[person["_id"]] = public
        if outside:
            raise errors.Invalid(
                f"not in school {uai} as {' or '.join(targets)}: {', '.join(sorted(outside)[:20])}",
                field="personnes",
            )
        for member in await self.directory.members(group_ids) if group_ids else []:
            public = next((p for p in publics_in(member, uai) if p in targets), None)
            if public is not None:
                wanted.setdefault(member["_id"], public)
        return wanted

    def _reserved(self, doc: Doc, new: Counter[str]) -> dict[str, int]:
        """The licences in use once `new` ones are counted in (`doc` as read); `errors.Conflict` over any bound."""
        used = doc["licencesAffectees"]
        total = sum(new.values())
        bound = _limit(doc.get("nbLicenceGlobale"))
        if bound is not None and used["total"] + total > bound:
            raise errors.Conflict(
                f"{total} licences asked, {bound - used['total']} left of {bound}", field="nbLicenceGlobale"
            )
        for public, count in new.items():
            bound = _limit(doc.get(LICENCE_FIELDS[public]))
            if bound is not None and used.get(public, 0) + count > bound:
                raise errors.Conflict(
                    f"{count} licences asked for {public}, {bound - used.get(public, 0)} left of {bound}",
                    field=LICENCE_FIELDS[public],
                )
        return {**used, "total": used["total"] + total, **{p: used.get(p, 0) + c for p, c in new.items()}}

    async def _release(self, subscription: Doc, uai: str, by: str, *, keys: list[str]) -> list[str]:
        """Take back the licences of these assignments (by key) in one school; the persons who had one."""
        subscription_id = subscription["_id"]
        async with one_at_a_time(f"subscription:{subscription_id}"):
            for _ in range(TRIES):
                current = await self.get(subscription_id)
                if current is None:
                    return []
                found = await self.repo.assignments_by_key(keys, {"personne": 1, "public": 1, "uai": 1})
                held = [doc for doc in found.values() if doc["uai"] == uai]
                if not held:
                    return []
                released = Counter(doc["public"] for doc in held)
                if current["categorieAffectation"] == "transferable":  # the licences come back
                    field, sign = "licencesAffectees", -1
                else:  # non transferable: a licence once assigned is spent, the person losing it does not give it back
                    field, sign = "licencesDepensees", 1
                counts = dict(current[field])
                counts["total"] = counts.get("total", 0) + sign * sum(released.values())
                for public, count in released.items():
                    counts[public] = counts.get(public, 0) + sign * count
                persons = sorted(doc["personne"] for doc in held)
                work = self._at_version(current, {field: counts}).delete(
                    ASSIGNMENTS, {"_id": {"$in": [doc["_id"] for doc in held]}}
                )
                try:
                    await self._assignments_changed(work, subscription, uai, by, released_ids=persons)
                except Conflict:
                    continue  # another replica changed it meanwhile (released some, perhaps): read again
                return persons
        raise errors.Conflict(f"{subscription_id} is changing too often right now: try again")

    def _at_version(self, current: Doc, fields: Doc) -> Work:
        """A unit of work that sets `fields` (and the next version) on the subscription if it is still at
        `current`'s."""
        changes = {key: value for key, value in fields.items() if key not in ("_id", "_work", "version")}
        return self.works.new().update(
            SUBSCRIPTIONS,
            {"_id": current["_id"], "version": current["version"]},
            {"$set": {**changes, "version": current["version"] + 1}},
            guard=True,
        )

    async def _assignments_changed(self, work: Work, subscription: Doc, uai: str, by: str, **ids: list[str]) -> None:
        """Commit `work` with the event telling who was given (`assigned_ids`) or lost (`released_ids`) a licence."""
        changed = pb.AssignmentChanged(
            subscription_id=subscription["_id"], resource_id=subscription["idRessource"], uai=uai, by=by, **ids
        )
        await self._commit(work, ASSIGNMENT_CHANGED, changed)

    async def _commit(self, work: Work, type: str, payload: Any) -> None:
        work.event(type=type, tenant=self.tenant, payload=payload)
        await self.works.commit(work)


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return stamp


def _licences(value: Any) -> pb.Licences | None:
    if value is None:
        return None
    return pb.Licences(unlimited=True) if value == "ILLIMITE" else pb.Licences(number=value)


def message(doc: Doc) -> pb.Subscription:
    """A stored subscription as its events tell it."""
    return pb.Subscription(
        id=doc["_id"],
        resource_id=doc["idRessource"],
        resource_label=doc["libelleRessource"],
        editor_id=doc["idEditeur"],
        distributor_id=doc["idDistributeurCom"],
        valid_from=_timestamp(doc["debutValidite"]),
        valid_until=_timestamp(doc["finValidite"]),
        uais=doc["uaiEtab"],
        assignment_type=doc["typeAffectation"],
        transferable=doc["categorieAffectation"] == "transferable",
        publics=doc["publicCible"],
        global_licences=_licences(doc.get("nbLicenceGlobale")),
        teacher_licences=_licences(doc.get("nbLicenceEnseignant")),
        pupil_licences=_licences(doc.get("nbLicenceEleve")),
        librarian_licences=_licences(doc.get("nbLicenceProfDoc")),
        other_staff_licences=_licences(doc.get("nbLicenceAutrePersonnel")),
        removed_uais=doc.get("etablissementsRetires", []),
        version=doc["version"],
    )

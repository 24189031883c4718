"""What is on offer, in memory in every replica: the published resources by ARK and the subscriptions by
school — what a médiacentre is computed from, without a query over whole collections per person.

Loaded from the docstore at start, then kept current by the catalog's own events (every replica hears them
all; a change is applied only if newer than what is held, so the order of arrival does not matter), by the
replica's own writes at once, and by a full reload every `reload_seconds` in case an event was missed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from maille.catalog.v1 import mediacentre_pb2, resources_pb2, subscriptions_pb2
from maille_catalog.repository import ResourceRepository, SubscriptionRepository
from maille_contracts import (
    ASSIGNMENT_CHANGED,
    FAVOURITE_CHANGED,
    RESOURCE_PUBLISHED,
    RESOURCE_UPDATED,
    RESOURCE_WITHDRAWN,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_DELETED,
    SUBSCRIPTION_EXPIRED,
    SUBSCRIPTION_UPDATED,
)
from maille_kit.docstore import Docstore
from maille_kit.events import Event

log = logging.getLogger("maille.catalog.offer")
Doc = dict[str, Any]
CONCEPTS = {
    "typePedagogique": "pedagogical_types",
    "typologieDocument": "document_types",
    "niveauEducatif": "educational_levels",
    "domaineEnseignement": "teaching_domains",
}


@dataclass(frozen=True, slots=True)
class Offered:
    """A subscription as the médiacentre needs it."""

    id: str
    ark: str
    schools: frozenset[str]
    per_person: bool
    publics: frozenset[str]
    start: datetime
    end: datetime
    removed: frozenset[str]
    version: int

    def valid(self, now: datetime) -> bool:
        return self.start <= now < self.end


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def offered_of_doc(doc: Doc) -> Offered:
    return Offered(
        doc["_id"],
        doc["idRessource"],
        frozenset(doc["uaiEtab"]),
        doc["typeAffectation"] == "INDIV",
        frozenset(doc["publicCible"]),
        _aware(doc["debutValidite"]),
        _aware(doc["finValidite"]),
        frozenset(doc.get("etablissementsRetires", [])),
        doc["version"],
    )


def offered_of_message(message: subscriptions_pb2.Subscription) -> Offered:
    return Offered(
        message.id,
        message.resource_id,
        frozenset(message.uais),
        message.assignment_type == "INDIV",
        frozenset(message.publics),
        message.valid_from.ToDatetime(tzinfo=UTC),
        message.valid_until.ToDatetime(tzinfo=UTC),
        frozenset(message.removed_uais),
        message.version,
    )


def resource_of_message(message: resources_pb2.Resource) -> Doc:
    """A resource's fields (the GAR's names) from its event."""
    doc: Doc = {
        "idRessource": message.id,
        "idType": "ARK",
        "nomRessource": message.name,
        "idEditeur": message.editor_id,
        "nomEditeur": message.editor_name,
        "urlVignette": message.thumbnail_url or None,
        "urlAccesRessource": message.access_url,
        "typePresentation": {"code": message.presentation_code, "nom": message.presentation_label},
        "version": message.version,
    }
    for name, field in CONCEPTS.items():
        doc[name] = [{"uri": c.uri, "nom": c.label} for c in getattr(message, field)]
    return doc


class Offer:
    """The published resources and the subscriptions, by school."""

    def __init__(self) -> None:
        self.resources: dict[str, Doc] = {}  # ARK -> fields, published ones only
        self._resource_versions: dict[str, int] = {}  # ARK -> last version seen (withdrawn ones too)
        self.subscriptions: dict[str, Offered] = {}
        self.by_school: dict[str, dict[str, Offered]] = {}
        self._gone: dict[str, int] = {}  # subscriptions deleted: id -> at which version of theirs
        self.loaded = False

    async def load(self, docstore: Docstore) -> None:
        """Everything from the docstore (what is held and newer stays)."""
        async for doc in ResourceRepository(docstore).every():
            self.put_resource(
                {k: v for k, v in doc.items() if not k.startswith("_")}, published=doc["statut"] == "publiee"
            )
        seen = set()
        async for doc in SubscriptionRepository(docstore).every():
            seen.add(doc["_id"])
            self.put_subscription(offered_of_doc(doc), written=True)
        for sub_id in [s for s in self.subscriptions if s not in seen]:  # deleted while an event was missed
            self.drop_subscription(sub_id, version=self.subscriptions[sub_id].version)
        self.loaded = True
        log.info("offer loaded", extra={"resources": len(self.resources), "subscriptions": len(self.subscriptions)})

    def per_person_of(self, uai: str) -> list[str] | None:
        """The ids of a school's per-person subscriptions; None until loaded."""
        if not self.loaded:
            return None
        return [o.id for o in self.by_school.get(uai, {}).values() if o.per_person]

    def put_resource(self, doc: Doc, *, published: bool) -> bool:
        ark, version = doc["idRessource"], doc["version"]
        if self._resource_versions.get(ark, 0) > version:
            return False
        self._resource_versions[ark] = version
        if published:
            self.resources[ark] = doc
        else:
            self.resources.pop(ark, None)
        return True

    def put_subscription(self, offered: Offered, *, written: bool = False) -> bool:
        """Hold a subscription unless a newer one is held; `written`: as it is now in the docstore (even if deleted
        before)."""
        held = self.subscriptions.get(offered.id)
        if held is not None and held.version > offered.version:
            return False
        if written:
            self._gone.pop(offered.id, None)
        elif self._gone.get(offered.id, -1) >= offered.version:
            return False
        if held is not None:
            for uai in held.schools:
                self.by_school.get(uai, {}).pop(offered.id, None)
        self.subscriptions[offered.id] = offered
        for uai in offered.schools:
            self.by_school.setdefault(uai, {})[offered.id] = offered
        return True

    def drop_subscription(self, sub_id: str, *, version: int) -> Offered | None:
        held = self.subscriptions.pop(sub_id, None)
        self._gone[sub_id] = max(version, held.version if held else 0)
        if held is not None:
            for uai in held.schools:
                self.by_school.get(uai, {}).pop(sub_id, None)
        return held

    def apply(self, event: Event) -> dict[str, list[str]]:
        """Apply a catalog event; whose médiacentre it changes (by resources, schools or persons)."""
        fact = event.type
        if fact in (RESOURCE_PUBLISHED, RESOURCE_UPDATED):
            published = (
                event.unpack(resources_pb2.ResourcePublished)
                if "published" in fact
                else event.unpack(resources_pb2.ResourceUpdated)
            )
            doc = resource_of_message(published.resource)
            self.put_resource(doc, published=True)
            return {"resources": [doc["idRessource"]]}
        if fact == RESOURCE_WITHDRAWN:
            withdrawn = event.unpack(resources_pb2.ResourceWithdrawn)
            self.put_resource({"idRessource": withdrawn.id, "version": withdrawn.version}, published=False)
            return {"resources": [withdrawn.id]}
        if fact in (SUBSCRIPTION_CREATED, SUBSCRIPTION_UPDATED):
            written = (
                event.unpack(subscriptions_pb2.SubscriptionCreated)
                if "created" in fact
                else event.unpack(subscriptions_pb2.SubscriptionUpdated)
            )
            offered = offered_of_message(written.subscription)
            self.put_subscription(offered)
            return {"schools": sorted(offered.schools)}
        if fact == SUBSCRIPTION_DELETED:
            deleted = event.unpack(subscriptions_pb2.SubscriptionDeleted)
            held = self.drop_subscription(
                deleted.id, version=(self.subscriptions[deleted.id].version if deleted.id in self.subscriptions else 0)
            )
            return {"schools": sorted(held.schools) if held else [], "resources": [deleted.resource_id]}
        if fact == SUBSCRIPTION_EXPIRED:
            return {"resources": [event.unpack(subscriptions_pb2.SubscriptionExpired).resource_id]}
        if fact == FAVOURITE_CHANGED:
            # Read again (with their favourites) when next asked; their GAR lists are still kept.
            return {"persons": [event.unpack(mediacentre_pb2.FavouriteChanged).person_id]}
        if fact == ASSIGNMENT_CHANGED:
            changed = event.unpack(subscriptions_pb2.AssignmentChanged)
            return {"persons": [*changed.assigned_ids, *changed.released_ids]}
        return {}

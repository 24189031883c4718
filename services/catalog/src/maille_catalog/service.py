"""Resources: what a vendor may do with its own (publish, change, withdraw, load many at once), and the
events that tell the other services.

A resource belongs to the vendor that published it (its API client id, `idEditeur`): no other vendor
can change or withdraw it. Each change and its event are one unit of work (`maille_kit.work`): both, or
neither. Changes to one resource are taken one at a time per process, and a version check (the unit's
guard) refuses a change made meanwhile by another replica (409).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from maille.catalog.v1 import resources_pb2 as pb
from maille_catalog.locks import one_at_a_time as _lock
from maille_catalog.repository import RESOURCES, ResourceRepository
from maille_catalog.schemas import BulkLine, BulkReport, Resource, ResourceIn
from maille_contracts import RESOURCE_PUBLISHED, RESOURCE_UPDATED, RESOURCE_WITHDRAWN
from maille_kit.versions import check
from maille_kit.work import Conflict, Works

Doc = dict[str, Any]
CONTENT = tuple(ResourceIn.model_fields)


class NoSuchResource(Exception):
    """No resource has that ARK."""


class NotYours(Exception):
    """The resource belongs to another vendor."""


class AlreadyPublished(Exception):
    """A resource with that ARK exists already."""


class ChangedMeanwhile(Exception):
    """The resource changed between reading and writing it (another replica)."""


class Resources:
    """The catalog's resources, for their vendors."""

    def __init__(self, repository: ResourceRepository, works: Works, *, tenant: str, observer: Any = None) -> None:
        self.repo = repository
        self.works = works
        self.tenant = tenant
        self.observer = observer  # told of each resource written (the médiacentre of this replica)

    async def publish(self, *, editor: str, resource: ResourceIn) -> Doc:
        """Publish a new resource of `editor`'s."""
        async with _lock(resource.idRessource):
            existing = await self.repo.get(resource.idRessource)
            if existing is not None:
                raise (
                    NotYours(resource.idRessource)
                    if existing["idEditeur"] != editor
                    else AlreadyPublished(resource.idRessource)
                )
            doc = _document(resource, editor=editor, version=1, status="publiee")
            work = self.works.new().insert(RESOURCES, doc, guard=True)
            work.event(
                type=RESOURCE_PUBLISHED,
                tenant=self.tenant,
                payload=pb.ResourcePublished(resource=_message(doc)),
            )
            try:
                await self.works.commit(work)
            except Conflict:
                raise AlreadyPublished(resource.idRessource) from None
            self._wrote(doc)
            return doc

    async def update(
        self, *, editor: str, ark: str, resource: ResourceIn, expected_version: int | None = None
    ) -> tuple[Doc, bool]:
        """Change one of `editor`'s resources (a withdrawn one is published again); the resource, and whether it
        changed."""
        async with _lock(ark):
            existing = await self._own(editor, ark)
            check(expected_version, existing["version"], ark)
            if existing["statut"] == "publiee" and all(existing.get(k) == v for k, v in resource.model_dump().items()):
                return existing, False
            doc = _document(resource, editor=editor, version=existing["version"] + 1, status="publiee")
            await self._commit(existing, doc, RESOURCE_UPDATED, pb.ResourceUpdated(resource=_message(doc)))
            self._wrote(doc)
            return doc, True

    async def withdraw(self, *, editor: str, ark: str, expected_version: int | None = None) -> Doc:
        """Withdraw one of `editor`'s resources: kept, no longer offered."""
        async with _lock(ark):
            existing = await self._own(editor, ark)
            check(expected_version, existing["version"], ark)
            if existing["statut"] == "retiree":
                return existing
            doc = {**existing, "statut": "retiree", "version": existing["version"] + 1, "misAJour": datetime.now(UTC)}
            await self._commit(
                existing,
                doc,
                RESOURCE_WITHDRAWN,
                pb.ResourceWithdrawn(id=ark, editor_id=editor, version=doc["version"]),
            )
            self._wrote(doc)
            return doc

    async def of_editor(self, *, editor: str, after: str | None, limit: int) -> list[Doc]:
        return await self.repo.of_editor(editor, after=after, limit=limit)

    async def load(self, *, editor: str, lines: list[tuple[int, ResourceIn | str]]) -> BulkReport:
        """A whole catalogue at once: each line published, updated or left as it is, or refused with its reason."""
        report: list[BulkLine] = []
        seen: dict[str, int] = {}
        for number, item in lines:
            if isinstance(item, str):
                report.append(BulkLine(ligne=number, idRessource=None, resultat="refusee", raison=item))
                continue
            ark = item.idRessource
            if ark in seen:
                report.append(
                    BulkLine(ligne=number, idRessource=ark, resultat="refusee", raison=f"already on line {seen[ark]}")
                )
                continue
            seen[ark] = number
            try:
                try:
                    await self.publish(editor=editor, resource=item)
                    outcome = "publiee"
                except AlreadyPublished:
                    _, changed = await self.update(editor=editor, ark=ark, resource=item)
                    outcome = "mise a jour" if changed else "inchangee"
            except NotYours:
                report.append(
                    BulkLine(
                        ligne=number,
                        idRessource=ark,
                        resultat="refusee",
                        raison="this resource belongs to another vendor",
                    )
                )
                continue
            except ChangedMeanwhile:
                report.append(
                    BulkLine(
                        ligne=number, idRessource=ark, resultat="refusee", raison="changed meanwhile; send it again"
                    )
                )
                continue
            report.append(BulkLine(ligne=number, idRessource=ark, resultat=outcome))

        def count(what: str) -> int:
            return sum(1 for line in report if line.resultat == what)

        return BulkReport(
            lignes=report,
            publiees=count("publiee"),
            misesAJour=count("mise a jour"),
            inchangees=count("inchangee"),
            refusees=count("refusee"),
        )

    async def _own(self, editor: str, ark: str) -> Doc:
        existing = await self.repo.get(ark)
        if existing is None:
            raise NoSuchResource(ark)
        if existing["idEditeur"] != editor:
            raise NotYours(ark)
        return existing

    def _wrote(self, doc: Doc) -> None:
        if self.observer is not None:
            self.observer.wrote_resource(doc)

    async def _commit(self, existing: Doc, doc: Doc, type: str, payload: Any) -> None:
        """The resource as `doc` if it is still as read (`existing`'s version), and its event; `ChangedMeanwhile` if
        not."""
        fields = {key: value for key, value in doc.items() if key not in ("_id", "_work")}
        work = self.works.new().update(
            RESOURCES, {"_id": doc["_id"], "version": existing["version"]}, {"$set": fields}, guard=True
        )
        work.event(type=type, tenant=self.tenant, payload=payload)
        try:
            await self.works.commit(work)
        except Conflict:
            raise ChangedMeanwhile(doc["_id"]) from None


def _document(resource: ResourceIn, *, editor: str, version: int, status: str) -> Doc:
    return {
        "_id": resource.idRessource,
        **resource.model_dump(),
        "idEditeur": editor,
        "version": version,
        "statut": status,
        "misAJour": datetime.now(UTC),
    }


def as_resource(doc: Doc) -> Resource:
    """The API's view of a stored resource."""
    return Resource.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})


def _message(doc: Doc) -> pb.Resource:
    def concepts(key: str) -> list[pb.Concept]:
        return [pb.Concept(uri=c["uri"], label=c["nom"]) for c in doc.get(key, [])]

    return pb.Resource(
        id=doc["_id"],
        name=doc["nomRessource"],
        editor_id=doc["idEditeur"],
        editor_name=doc["nomEditeur"],
        thumbnail_url=doc.get("urlVignette") or "",
        access_url=doc["urlAccesRessource"],
        presentation_code=doc["typePresentation"]["code"],
        presentation_label=doc["typePresentation"]["nom"],
        pedagogical_types=concepts("typePedagogique"),
        document_types=concepts("typologieDocument"),
        educational_levels=concepts("niveauEducatif"),
        teaching_domains=concepts("domaineEnseignement"),
        version=doc["version"],
    )

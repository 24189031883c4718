"""The catalog service's app factory and entry point."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from pymongo import IndexModel

from maille.identity.v1 import directory_pb2
from maille_catalog.api import assignments, mediacentre, subscriptions, vendor
from maille_catalog.directory import GROUPS, KEPT, PERSONS, SCHOOLS, SUBJECTS, Directory, DirectoryFollower
from maille_catalog.gar import GarClient
from maille_catalog.mediacentre import Mediacentre
from maille_catalog.repository import ASSIGNMENTS, FAVOURITES, RESOURCES, SUBSCRIPTIONS, ResourceRepository
from maille_catalog.service import Resources
from maille_catalog.settings import CatalogSettings
from maille_catalog.subscriptions import Subscriptions
from maille_contracts import PERSON_CREATED, PERSON_DELETED, PERSON_UPDATED
from maille_kit.app import Runtime, ServiceSpec, entry_points
from maille_kit.consumer import EventConsumer
from maille_kit.docstore import Docstore
from maille_kit.events import Event, MalformedEvent, decode
from maille_kit.telemetry import observe_certificate

log = logging.getLogger("maille.catalog")

INDEXES = {
    RESOURCES: [IndexModel([("idEditeur", 1), ("_id", 1)])],
    SUBSCRIPTIONS: [
        IndexModel([("idEditeur", 1), ("_id", 1)]),
        IndexModel([("uaiEtab", 1)]),
        IndexModel([("expiree", 1), ("finValidite", 1)]),
    ],
    ASSIGNMENTS: [IndexModel([("abonnement", 1), ("uai", 1)]), IndexModel([("personne", 1)])],
    PERSONS: [IndexModel([("groupes", 1)])],
    SCHOOLS: [IndexModel([("structure", 1)])],
    GROUPS: [],
    FAVOURITES: [],
}


class Background:
    """The catalog's work beside its routes: catalog and person events heard by every replica, the offer read
    again now and then, subscriptions expired."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.subscriptions: list[Any] = []

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self.subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()


def parts(runtime: Runtime) -> list[object]:
    """What the catalog's routes and work are made of."""
    settings = runtime.settings
    assert isinstance(settings, CatalogSettings)
    assert runtime.docstore is not None and runtime.works is not None
    gar = None
    if settings.gar_url:
        gar = GarClient(
            settings.gar_url,
            ent=settings.ent_id,
            cert=settings.gar_client_cert or None,
            key=settings.gar_client_key or None,
            ca=settings.gar_ca_file or None,
            timeout=settings.gar_timeout_seconds,
        )
        if settings.gar_client_cert:
            observe_certificate("gar-client", Path(settings.gar_client_cert))
    centre = Mediacentre(
        runtime.docstore,
        gar,
        ent=settings.ent_id,
        gar_link_url=settings.gar_link_url,
        gar_cache_seconds=settings.gar_cache_seconds,
        cache_size=settings.mediacentre_cache_size,
    )
    directory = Directory(runtime.docstore)
    subscriptions = Subscriptions(
        runtime.docstore,
        runtime.works,
        directory,
        tenant=settings.tenant,
        observer=centre,
        per_person_of=centre.offer.per_person_of,
    )
    resources = Resources(ResourceRepository(runtime.docstore), runtime.works, tenant=settings.tenant, observer=centre)
    return [centre, directory, subscriptions, resources, Background()]


def consumers(runtime: Runtime) -> list[EventConsumer]:
    """The directory, learnt from identity's events (its stream may come up after the catalog)."""
    assert runtime.docstore is not None
    subs = runtime.parts.get(Subscriptions)
    centre = runtime.parts.get(Mediacentre)
    follower = DirectoryFollower(
        runtime.parts.get(Directory),
        left_schools=subs.left_schools,
        school_removed=subs.school_removed,
        person_changed=centre.person_changed,
    )
    return [runtime.directory_consumer(follower, kept=KEPT, subjects=SUBJECTS)]


async def on_start(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, CatalogSettings) and runtime.docstore is not None
    docstore = runtime.docstore
    centre = runtime.parts.get(Mediacentre)
    background = runtime.parts.get(Background)
    nc = runtime.bus.nc
    assert nc is not None

    heard: list[Event] | None = []  # while the offer loads, what is heard waits

    async def catalog_changed(message: Msg) -> None:  # every replica hears every catalog event
        try:
            event = decode(message.data)
        except MalformedEvent:
            return
        if heard is not None:
            heard.append(event)
            return
        try:
            changes = centre.offer.apply(event)
        except MalformedEvent:
            return
        if changes:
            centre.changed(**changes)

    async def person_changed(message: Msg) -> None:
        try:
            event = decode(message.data)
            if event.type == PERSON_CREATED:
                centre.person_changed(event.unpack(directory_pb2.PersonCreated).person.id)
            elif event.type == PERSON_UPDATED:
                centre.person_changed(event.unpack(directory_pb2.PersonUpdated).person.id)
            elif event.type == PERSON_DELETED:
                centre.person_changed(event.unpack(directory_pb2.PersonDeleted).id)
        except MalformedEvent:
            pass

    background.subscriptions = [
        await nc.subscribe("catalog.>", cb=catalog_changed),
        await nc.subscribe("identity.person.>", cb=person_changed),
    ]
    await nc.flush()
    await centre.offer.load(docstore)
    waiting, heard = heard, None
    for event in waiting or []:
        with contextlib.suppress(MalformedEvent):
            centre.offer.apply(event)
    background.tasks.append(asyncio.create_task(_reload(docstore, centre, settings), name="catalog-offer-reload"))
    # The offer just loaded lives long, and so do the persons' lists: the cycle collector walks them rarely
    # (a full collection over them would land as a pause on requests; a request makes few cycles).
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    subscriptions = runtime.parts.get(Subscriptions)
    background.tasks.append(asyncio.create_task(_expire(subscriptions, settings), name="catalog-expiry"))


async def _expire(subs: Subscriptions, settings: CatalogSettings) -> None:
    while True:
        try:
            count = await subs.expire()
            if count:
                log.info("subscriptions expired", extra={"count": count})
        except Exception as exc:  # the docstore away for a moment: next time
            log.warning("expiry check failed: %s", exc)
        await asyncio.sleep(settings.expiry_check_seconds)


async def _reload(docstore: Docstore, centre: Mediacentre, settings: CatalogSettings) -> None:
    """The whole offer again now and then, in case this replica missed an event."""
    while True:
        await asyncio.sleep(settings.offer_reload_seconds)
        try:
            await centre.offer.load(docstore)
        except Exception as exc:
            log.warning("offer reload failed: %s", exc)


async def on_stop(runtime: Runtime) -> None:
    await runtime.parts.stop((Background, Background.stop), (Mediacentre, Mediacentre.close))


def build(settings: CatalogSettings) -> ServiceSpec:
    """What the catalog service is made of."""
    return ServiceSpec.of(
        __name__,
        settings,
        routers=[vendor.router, subscriptions.router, assignments.router, mediacentre.router],
        indexes=INDEXES,
    )


app, main = entry_points(build, CatalogSettings)

"""The schools' OPACs sign their readers in through Keycloak (issue 8): the library service announces where each
school's OPAC is (`library.opac.changed.v1`, when an operator registers, changes or forgets a PMB connection);
identity, Keycloak's only administrator, makes the PMB OPAC client accept it as a redirect URI. Once per event
across replicas; a Keycloak that does not answer leaves the event to be delivered again."""

from __future__ import annotations

import logging
import re

from maille.library.v1 import opac_pb2
from maille_contracts import OPAC_CHANGED
from maille_identity.federation.service import Federation
from maille_kit.bus import Bus
from maille_kit.consumer import EventConsumer
from maille_kit.docstore import Docstore
from maille_kit.events import Event

SUBJECTS = (OPAC_CHANGED,)
OPAC_URL = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?$")
log = logging.getLogger("maille.identity.opacs")


def opac_consumer(bus: Bus, docstore: Docstore, federation: Federation) -> EventConsumer:
    """The consumer of the library's OPAC events, making each one so in the realm."""

    async def handle(event: Event) -> None:
        changed = event.unpack(opac_pb2.OpacChanged)
        if changed.opac_url and (len(changed.opac_url) > 253 or not OPAC_URL.match(changed.opac_url)):
            log.warning(
                "OPAC of %s not let sign readers in: %r is not an http(s) URL Keycloak keeps (255 characters with /*)",
                changed.uai,
                changed.opac_url[:100],
            )
            return
        await federation.opac_changed(changed.uai, changed.opac_url)

    return EventConsumer(
        bus, docstore, service="identity", durable="identity-opacs", stream="LIBRARY", subjects=SUBJECTS, handler=handle
    )

"""Identity's HTTP routes, and the service's parts they ask for (made at start: maille_identity.main.parts)."""

from __future__ import annotations

from typing import Annotated

from maille_identity.directory.jobs import ImportJobs
from maille_identity.directory.people import People
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.federation.clients import ApiClients
from maille_identity.federation.linking import Linking
from maille_identity.federation.repository import FederationRepository
from maille_identity.federation.service import Federation
from maille_identity.rules.repository import RulesStore
from maille_identity.rules.responder import VisiblesService
from maille_identity.settings import IdentitySettings
from maille_kit.app import part
from maille_kit.work import Works

Settings = Annotated[IdentitySettings, part(IdentitySettings)]
Directory = Annotated[DirectoryRepository, part(DirectoryRepository)]

Everyone = Annotated[People, part(People)]
Visibles = Annotated[VisiblesService, part(VisiblesService)]
Rules = Annotated[RulesStore, part(RulesStore)]
Jobs = Annotated[ImportJobs, part(ImportJobs)]
Links = Annotated[Linking, part(Linking)]
Federations = Annotated[FederationRepository, part(FederationRepository)]
Keycloak = Annotated[Federation, part(Federation)]
ApiClientsPart = Annotated[ApiClients, part(ApiClients)]
Work = Annotated[Works, part(Works)]

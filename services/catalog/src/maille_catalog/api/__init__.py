"""The catalog's HTTP routes, and the service's parts they ask for (made at start: maille_catalog.main.parts)."""

from __future__ import annotations

from typing import Annotated

from maille_catalog.directory import Directory
from maille_catalog.mediacentre import Mediacentre
from maille_catalog.service import Resources
from maille_catalog.settings import CatalogSettings
from maille_catalog.subscriptions import Subscriptions
from maille_kit.app import part
from maille_kit.work import Works

Settings = Annotated[CatalogSettings, part(CatalogSettings)]
Centre = Annotated[Mediacentre, part(Mediacentre)]
Subs = Annotated[Subscriptions, part(Subscriptions)]
Vendors = Annotated[Resources, part(Resources)]
People = Annotated[Directory, part(Directory)]
Work = Annotated[Works, part(Works)]

"""The observatory's HTTP routes (api/dashboards.py, api/operator.py), and its parts they ask for."""

from __future__ import annotations

from typing import Annotated

from maille_kit.app import part
from maille_kit.auth import Principal
from maille_kit.errors import Forbidden
from maille_observatory.directory import Directory
from maille_observatory.export import Exports
from maille_observatory.ingest import Ingest
from maille_observatory.scopes import Scope, Scopes
from maille_observatory.views import Dashboards, Summaries

Boards = Annotated[Dashboards, part(Dashboards)]
Merges = Annotated[Summaries, part(Summaries)]
Viewing = Annotated[Scopes, part(Scopes)]
Exported = Annotated[Exports, part(Exports)]
Counting = Annotated[Ingest, part(Ingest)]
People = Annotated[Directory, part(Directory)]


def seen(scopes: Scopes, caller: Principal, scope_id: str) -> Scope:
    scope = scopes.may_see(caller, scope_id)
    if scope is None:
        raise Forbidden(f"{scope_id}: these figures are not among those you may see", reason="not-your-scope")
    return scope

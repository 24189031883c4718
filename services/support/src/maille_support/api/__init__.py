"""Support's HTTP routes (api/requests.py, api/knowledge.py, api/desks.py), and the service's parts they ask for
(made at start: maille_support.main.parts)."""

from __future__ import annotations

from typing import Annotated

from maille_kit.app import part
from maille_kit.auth import Principal
from maille_kit.errors import Forbidden
from maille_support.desks import Desks
from maille_support.knowledge import Knowledge
from maille_support.queue import Queue
from maille_support.repository import SupportRepository
from maille_support.requests import Requests

Asked = Annotated[Requests, part(Requests)]
Queues = Annotated[Queue, part(Queue)]
Declared = Annotated[Desks, part(Desks)]
Articles = Annotated[Knowledge, part(Knowledge)]
Store = Annotated[SupportRepository, part(SupportRepository)]


def me(caller: Principal) -> str:
    if caller.person_id is None:
        raise Forbidden("only a person of the directory asks for help here")
    return caller.person_id

"""Identity's communication rules, asked over NATS: who a sender may write to (the recipient picker) and,
before each send, who the recipients are — persons checked one by one, groups expanded now. Nothing of it
is kept here: a person who changes class or school is seen as identity sees them, at the next request."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from maille.identity.v1 import rules_pb2 as pb
from maille_contracts import RESOLVE, VISIBLES
from maille_kit.bus import Bus
from maille_kit.errors import Forbidden, Unavailable
from maille_kit.telemetry import inject_headers

ReplyT = TypeVar("ReplyT", pb.ResolveResponse, pb.VisiblesResponse)


class Rules:
    """A client of identity's rules service."""

    def __init__(self, bus: Bus, *, timeout: float) -> None:
        self.bus = bus
        self.timeout = timeout

    async def _ask(self, subject: str, request: Message, reply_type: type[ReplyT]) -> ReplyT:
        assert self.bus.nc is not None
        try:
            reply = await self.bus.nc.request(
                subject, request.SerializeToString(), timeout=self.timeout, headers=inject_headers({})
            )
        except (NatsTimeout, NoRespondersError) as exc:
            raise Unavailable(
                "the communication rules cannot be checked now (identity does not answer); try again",
                headers={"Retry-After": "5"},
            ) from exc
        answer = reply_type.FromString(reply.data)
        if answer.error or answer.error_code:
            if answer.error_code == pb.RULES_ERROR_UNKNOWN_SENDER:
                raise Forbidden("you are not in the directory: you cannot write to anyone")
            raise Unavailable(f"the communication rules could not be checked: {answer.error}")
        return answer

    async def resolve(self, *, tenant: str, sender: str, persons: list[str], groups: list[str]) -> pb.ResolveResponse:
        return await self._ask(
            RESOLVE,
            pb.ResolveRequest(tenant=tenant, sender_id=sender, person_ids=persons, group_ids=groups),
            pb.ResolveResponse,
        )

    async def visibles(self, *, tenant: str, sender: str, text: str, limit: int) -> pb.VisiblesResponse:
        return await self._ask(
            VISIBLES,
            pb.VisiblesRequest(tenant=tenant, sender_id=sender, text=text, limit=limit, with_groups=True),
            pb.VisiblesResponse,
        )


def person_name(visible: pb.Visible) -> str:
    return " ".join(part for part in (visible.first_name, visible.last_name) if part) or visible.id

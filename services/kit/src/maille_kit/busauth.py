"""Who may do what on the bus: one NATS user per deployable, with the subjects it may publish and subscribe.

A service publishes only its own events (and its dead letters), answers only its own request subjects,
subscribes only to what it consumes, and reaches JetStream's API only for its own streams, the consumers it
owns on the streams it reads, and its own key-value buckets; replies come back on an inbox of its own
(`_INBOX_<user>.`). The gateway alone reads and writes the session buckets. The NATS server's
`authorization` block is made from this table (`make run`, compose and the charts), so the permissions
are written once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from maille_contracts import CAN_WRITE, LIVE_PREFIX, RESOLVE, RULES_CHANGED, USE_RECORDED, VISIBLES


@dataclass(frozen=True)
class BusUser:
    """One deployable's NATS user: what it owns, consumes, subscribes to, asks and answers."""

    name: str
    streams: tuple[str, ...] = ()  # the streams it owns (its dead letters added for a service that consumes)
    events: tuple[str, ...] = ()  # subjects of its own events
    consumes: tuple[tuple[str, str], ...] = ()  # (stream, durable consumer) it reads with the kit's consumer
    listens: tuple[str, ...] = ()  # core subjects it subscribes to (every replica hears them)
    asks: tuple[str, ...] = ()  # request subjects it sends to
    answers: tuple[str, ...] = ()  # request subjects it serves (in a queue group)
    buckets: tuple[str, ...] = ()  # its key-value buckets
    dead_letters: bool = field(default=True)
    operates: tuple[str, ...] = ()  # more subjects it may publish (the operators' user: see `_operators`)

    @property
    def inbox_prefix(self) -> str:
        """Where its replies come back (no other user may subscribe there)."""
        return f"_INBOX_{self.name}"

    def permissions(self) -> dict[str, Any]:
        """The user's NATS permissions (publish and subscribe allow-lists)."""
        own_streams = list(self.streams) + ([f"{self.name.upper()}_DEADLETTER"] if self.dead_letters else [])
        publish = [*self.events, *self.asks, *self.operates, "$JS.API.INFO"]
        if self.dead_letters:
            publish.append(f"deadletter.{self.name}.>")
        for stream in own_streams:
            publish += [f"$JS.API.STREAM.*.{stream}", f"$JS.API.STREAM.MSG.*.{stream}"]
        subscribe = [f"{self.inbox_prefix}.>", *self.listens, *self.answers]
        if self.answers:  # its micro service's discovery: PING, INFO and STATS, asked by operators' tools
            subscribe += ["$SRV.PING", "$SRV.INFO", "$SRV.STATS", "$SRV.*.>"]
        for stream, durable in self.consumes:
            publish += [
                f"$JS.API.STREAM.INFO.{stream}",
                f"$JS.API.CONSUMER.*.{stream}.{durable}",
                f"$JS.API.CONSUMER.*.{stream}.{durable}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
        if self.consumes:
            subscribe.append(f"_maille.deliver.{self.name}.>")
        for bucket in self.buckets:
            publish += [
                f"$KV.{bucket}.>",
                f"$JS.API.STREAM.*.KV_{bucket}",
                f"$JS.API.STREAM.MSG.*.KV_{bucket}",
                f"$JS.API.DIRECT.GET.KV_{bucket}",
                f"$JS.API.DIRECT.GET.KV_{bucket}.>",
            ]
        return {
            "publish": {"allow": sorted(set(publish))},
            "subscribe": {"allow": sorted(set(subscribe))},
            **({"allow_responses": True} if self.answers else {}),
        }


RULES_RPC = (CAN_WRITE, VISIBLES, RESOLVE)

USERS: dict[str, BusUser] = {
    user.name: user
    for user in (
        BusUser(
            "gateway",
            events=(USE_RECORDED,),
            buckets=("maille_gateway_sessions",),
            listens=(f"{LIVE_PREFIX}>",),
            dead_letters=False,
        ),
        BusUser(
            "identity",
            streams=("IDENTITY",),
            events=("identity.>",),
            answers=RULES_RPC,
            buckets=("identity_locks",),
            consumes=(("IDENTITY", "identity-accounts"), ("LIBRARY", "identity-opacs")),
            listens=("identity.structure.>", "identity.group.>", RULES_CHANGED),
        ),
        BusUser(
            "catalog",
            streams=("CATALOG",),
            events=("catalog.>", USE_RECORDED),
            consumes=(("IDENTITY", "catalog-directory"),),
            listens=("catalog.>", "identity.person.>"),
        ),
        BusUser(
            "messaging",
            streams=("MESSAGING",),
            events=("messaging.>", USE_RECORDED),
            consumes=(("IDENTITY", "messaging-erasures"),),
            asks=RULES_RPC,
        ),
        BusUser(
            "library",
            streams=("LIBRARY",),
            events=("library.>", USE_RECORDED),
            consumes=(("IDENTITY", "library-directory"),),
        ),
        BusUser(
            "timeline",
            events=(f"{LIVE_PREFIX}>", USE_RECORDED),
            consumes=(
                ("IDENTITY", "timeline-directory"),
                ("IDENTITY", "timeline-admin"),
                ("MESSAGING", "timeline-mail"),
                ("MESSAGING", "timeline-recalls"),
                ("CATALOG", "timeline-catalog"),
                ("LIBRARY", "timeline-library"),
                ("SUPPORT", "timeline-support"),
            ),
        ),
        BusUser(
            "support",
            streams=("SUPPORT",),
            events=("support.>", "signal.support.>", USE_RECORDED),  # signal.*: a replica's change, heard by others
            consumes=(("IDENTITY", "support-directory"),),
            listens=("signal.support.>",),
        ),
        BusUser(
            "observatory",
            streams=("OBSERVATORY",),
            consumes=(("IDENTITY", "observatory-directory"), ("OBSERVATORY", "observatory-ingest")),
            # the ingest pulls its uses in batches (the kit's consumers are pushed theirs)
            operates=("$JS.API.CONSUMER.MSG.NEXT.OBSERVATORY.observatory-ingest",),
        ),
    )
}


def _operators(services: dict[str, BusUser]) -> BusUser:
    """`ops`, the operators' user (`maille-ops deadletters`): it reads and deletes the dead letters of every service,
    and publishes again — to replay one — on the subjects the services' consumers read; nothing else."""
    consumed = {stream for user in services.values() for stream, _ in user.consumes}
    replayable = [event for user in services.values() if set(user.streams) & consumed for event in user.events]
    letters = [f"{user.name.upper()}_DEADLETTER" for user in services.values() if user.dead_letters]
    api = [f"$JS.API.STREAM.{verb}.{stream}" for stream in letters for verb in ("INFO", "MSG.GET", "MSG.DELETE")]
    return BusUser("ops", dead_letters=False, operates=(*replayable, *api))


USERS["ops"] = _operators(USERS)


def password_variable(name: str) -> str:
    """The environment variable the NATS server reads a user's password from."""
    return f"MAILLE_NATS_{name.upper()}_PASSWORD"


def authorization(passwords: dict[str, str] | None = None) -> str:
    """The NATS server's `authorization` block: every user with its permissions. Passwords are given (make run,
    a test) or read by the server from its environment (`$MAILLE_NATS_<USER>_PASSWORD`, from a Secret)."""
    users = []
    for user in USERS.values():
        secret = json.dumps(passwords[user.name]) if passwords else f"${password_variable(user.name)}"
        users.append(
            f"    {{user: {json.dumps(user.name)}, password: {secret}, permissions: {json.dumps(user.permissions())}}}"
        )
    return "authorization {\n  users: [\n" + ",\n".join(users) + "\n  ]\n}\n"

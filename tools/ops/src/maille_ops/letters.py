"""`maille-ops deadletters`: the dead letters of the services, through NATS (maille_kit.deadletters).

NATS as the operator reaches it (`--nats-url`, default $MAILLE_OPS_NATS_URL or nats://127.0.0.1:4222; in a
cluster, `kubectl -n maille port-forward svc/maille-nats 4222`), as the user `ops` with the password of
$MAILLE_OPS_NATS_PASSWORD (the key `ops` of the Secret maille-nats-users) — under `make run`, read from
.var/nats-users.json when the variable is not set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nats

from maille_kit.busauth import USERS
from maille_kit.deadletters import Letter, drop, letter, letters, replay

SERVICES = tuple(name for name, user in USERS.items() if user.dead_letters)
CONNECT_SECONDS = 5


def password(var: Path = Path(".var")) -> str:
    """The `ops` user's password: the environment's, or `make run`'s."""
    if "MAILLE_OPS_NATS_PASSWORD" in os.environ:
        return os.environ["MAILLE_OPS_NATS_PASSWORD"]
    made = var / "nats-users.json"
    return json.loads(made.read_text()).get("ops", "") if made.exists() else ""


async def connect(url: str) -> Any:
    secret = password()
    return await nats.connect(
        url,
        user="ops" if secret else None,
        password=secret or None,
        inbox_prefix=b"_INBOX_ops",
        connect_timeout=CONNECT_SECONDS,
        max_reconnect_attempts=0,
        allow_reconnect=False,
        name="maille-ops",
    )


def line(found: Letter) -> str:
    about = found.describe()
    what = about.get("type") or f"unreadable ({about.get('unreadable', '')[:60]})"
    at = found.at.strftime("%Y-%m-%d %H:%M:%S") if found.at else "?"
    return f"{found.service:<10} {found.seq:>6}  {at}  {found.consumer:<22} {what:<40} {found.reason[:80]}"


async def run(args: Any) -> int:
    """One `deadletters` command; the exit status."""
    nc = await connect(args.nats_url)
    try:
        js = nc.jetstream()
        if args.action == "list":
            services = args.services or SERVICES
            found = [one for service in services for one in await letters(js, service)]
            print(f"{'service':<10} {'number':>6}  {'set aside':<19}  {'consumer':<22} {'event':<40} reason")
            for one in found:
                print(line(one))
            print(f"{len(found)} dead letters")
            return 0
        if args.action == "show":
            one = await letter(js, args.service, args.number)
            print(
                json.dumps(
                    {
                        "service": one.service,
                        "number": one.seq,
                        "set_aside": one.at.isoformat() if one.at else None,
                        "consumer": one.consumer,
                        "subject": one.subject,
                        "reason": one.reason,
                        "event": one.describe(),
                        "bytes": len(one.data),
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
            return 0
        chosen = (
            await letters(js, args.service)
            if args.all
            else [await letter(js, args.service, number) for number in args.numbers]
        )
        if not chosen:
            print(f"no dead letter chosen for {args.service} (numbers, or --all)")
            return 1
        for one in chosen:
            if args.action == "replay":
                await replay(js, one)
            else:
                await drop(js, one.service, one.seq)
        verb = "replayed (each to its consumer)" if args.action == "replay" else "dropped"
        print(f"{len(chosen)} dead letters of {args.service} {verb}")
        return 0
    finally:
        await nc.close()

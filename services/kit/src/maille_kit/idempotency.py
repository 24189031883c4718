"""`Idempotency-Key` on the POSTs that create: a request sent again with the same key by the same caller (a retry
after a lost answer, a double click) gets the first answer again instead of creating a second mail, resource or
subscription.

- The key is the caller's (their token's subject) and lives 24 hours; 1 to 255 printable characters.
- The first request with a key claims it (a unique document), runs, and keeps its answer when it succeeded (2xx,
  at most `MAX_KEPT` bytes); a failure forgets the claim, so that a retry runs again.
- The same key with another request (another path or body) is refused (422); while the first is still running,
  a second gets 409 with `Retry-After`.

A route opts in with `Depends(idempotent)` after its caller's verification (`require()`): nothing is looked up for
a caller whose token is not valid. `IdempotencyMiddleware` keeps the answer once it is written.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from pymongo.errors import DuplicateKeyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maille_kit.auth import Principal
from maille_kit.errors import Conflict, Invalid

log = logging.getLogger("maille.idempotency")
COLLECTION = "idempotency_keys"
KEEP = timedelta(hours=24)
MAX_KEPT = 256 * 1024  # bytes of an answer kept for a replay (a larger one is answered once, then forgotten)
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
HEADER = "idempotency-key"
STATE = "maille.idempotency"  # where the claim travels from the dependency to the middleware (scope state)


class Replay(Exception):
    """The answer a request with this key got before, to be given again."""

    def __init__(self, kept: dict[str, Any]) -> None:
        super().__init__("replay")
        self.kept = kept


async def idempotent(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=KEY.pattern,
            description="any unique string of yours (a UUID): the same request sent again with it is answered once",
        ),
    ] = None,
) -> None:
    """A FastAPI dependency for a POST that creates: claims the request's `Idempotency-Key` (when it has one) for
    the verified caller, or replays the answer kept for it. Put it after the route's `require()`."""
    if key is None:
        return
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # the route verified no caller: nothing to scope the key by
        return
    runtime = request.app.state.runtime
    collection = runtime.docstore.db[COLLECTION]
    body = await request.body() if request.headers.get("content-type", "").startswith("application/json") else b""
    fingerprint = hashlib.sha256(
        b"\x00".join([request.method.encode(), request.url.path.encode(), request.url.query.encode(), body])
    ).hexdigest()
    claim_id = f"{principal.subject or principal.client_id}:{key}"
    now = datetime.now(UTC)
    for _ in range(2):
        try:
            await collection.insert_one({"_id": claim_id, "fingerprint": fingerprint, "state": "running", "at": now})
            break
        except DuplicateKeyError:
            kept = await collection.find_one({"_id": claim_id})
            if kept is None:
                continue  # forgotten meanwhile: claim it now
            if _aware(kept["at"]) < now - KEEP:
                await collection.delete_one({"_id": claim_id, "at": kept["at"]})
                continue
            if kept["fingerprint"] != fingerprint:
                raise Invalid(
                    "this Idempotency-Key was used for another request: use a new key for a new request",
                    field="Idempotency-Key",
                ) from None
            if kept["state"] == "running":
                raise Conflict(
                    "the first request with this Idempotency-Key is still running: try again in a moment",
                    headers={"Retry-After": "2"},
                ) from None
            raise Replay(kept) from None
    request.scope.setdefault("state", {})[STATE] = claim_id


# What a creating route adds after its caller: `_: Idempotent`.
Idempotent = Annotated[None, Depends(idempotent)]


def replayed(kept: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The status, headers and body kept for a replay (marked `Idempotent-Replayed: true`)."""
    headers = [(h["name"].encode("latin-1"), h["value"].encode("latin-1")) for h in kept["headers"]]
    return kept["status"], [*headers, (b"idempotent-replayed", b"true")], bytes(kept["body"])


class IdempotencyMiddleware:
    """Keeps the answer of a request whose Idempotency-Key was claimed (or forgets the claim when it failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _has_key(scope):
            await self.app(scope, receive, send)
            return
        answer: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}

        async def keeping(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in (b"x-request-id", b"date")
                ]
            elif message["type"] == "http.response.body" and len(answer["body"]) <= MAX_KEPT:
                answer["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, keeping)
        finally:
            claim_id = scope.get("state", {}).get(STATE)
            if claim_id is not None:
                await _settle(scope, claim_id, answer)


def _has_key(scope: Scope) -> bool:
    return any(name == b"idempotency-key" for name, _ in scope.get("headers", []))


async def _settle(scope: Scope, claim_id: str, answer: dict[str, Any]) -> None:
    collection = scope["app"].state.runtime.docstore.db[COLLECTION]
    try:
        if 200 <= answer["status"] < 300 and len(answer["body"]) <= MAX_KEPT:
            # A list of pairs would be an array of arrays, which a MongoDB-wire store need not take (FerretDB does not).
            headers = [{"name": k.decode("latin-1"), "value": v.decode("latin-1")} for k, v in answer["headers"]]
            await collection.update_one(
                {"_id": claim_id},
                {
                    "$set": {
                        "state": "done",
                        "status": answer["status"],
                        "headers": headers,
                        "body": bytes(answer["body"]),
                    }
                },
            )
        else:
            await collection.delete_one({"_id": claim_id})
    except Exception as exc:  # the docstore away: the claim stays "running" until it expires (a retry gets 409)
        log.warning("idempotency key %s not settled: %s", claim_id.split(":", 1)[-1][:40], exc)


async def forget_expired(docstore: Any) -> int:
    """Forget the keys past their 24 hours; how many."""
    result = await docstore.db[COLLECTION].delete_many({"at": {"$lt": datetime.now(UTC) - KEEP}})
    return int(result.deleted_count)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

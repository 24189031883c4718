"""ETag and If-Match for what people edit: a document's `version` (a number that grows with each change) is its
ETag; a change sent with `If-Match` is applied only to the version it names, else refused with 412 — two people
editing the same thing do not overwrite each other unknowingly. Without If-Match the change applies as before."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Response

from maille_kit.errors import Invalid, PreconditionFailed

ETAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')


def etag(version: int) -> str:
    return f'"{version}"'


def tag(response: Response, version: int) -> None:
    """Say the version in the answer's ETag."""
    response.headers["ETag"] = etag(version)


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=100,
            description="the ETag read: the change applies only to that version (412 if it changed since)",
        ),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    found = ETAG.match(if_match.strip())
    if not found:
        raise Invalid('If-Match must be one ETag as given, e.g. "3"', field="If-Match")
    return int(found.group(1))


# A route's parameter: the version the caller read, or None.
IfMatch = Annotated[int | None, Depends(_if_match)]


def check(expected: int | None, current: int, what: str) -> None:
    """PreconditionFailed unless the caller read the current version (or named none)."""
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"{what} changed since you read it (version {expected}, now {current}): read it again",
            etag=etag(current),
        )

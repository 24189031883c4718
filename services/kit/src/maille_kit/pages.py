"""One way to page a list: a cursor. A page gives `next` (here `suivant`, in the vendor API's French) — an opaque
string — when more follow; the client passes it back as `cursor` for the next page. Behind it, the last id given:
the next page starts after it (an index range, however deep the page), and a write between two pages moves
nothing already given."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Query

from maille_kit.errors import Invalid


def cursor_after(last_id: str) -> str:
    """The cursor of the page that follows `last_id`."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


async def _after(
    cursor: Annotated[
        str | None, Query(max_length=400, pattern=r"^[A-Za-z0-9_-]+$", description="`suivant` of the page before")
    ] = None,
) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Invalid("cursor is not one a page gave: start again without it", field="cursor") from None


# A route's parameter: the id after which the page starts, or None for the first page.
After = Annotated[str | None, Depends(_after)]


def next_cursor(ids: list[str], limit: int) -> str | None:
    """The cursor of the next page when `ids` (asked for `limit` + 1) hold more than a page."""
    return cursor_after(ids[limit - 1]) if len(ids) > limit else None

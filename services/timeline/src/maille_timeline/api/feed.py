"""The timeline's HTTP routes: one's feed and unread count, marking read, how one is told, and the one-click
unsubscribe of the e-mails (open without signing in: the link's signed token says who)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query

from maille_kit.auth import Caller, Principal
from maille_kit.errors import Forbidden, Invalid
from maille_timeline.api import Choices, Feeds, Mailer
from maille_timeline.kinds import KINDS
from maille_timeline.schemas import (
    NOTE_ID,
    FeedPage,
    Preferences,
    PreferencesIn,
    ReadIn,
    Unread,
    Unsubscribed,
)

router = APIRouter(prefix="/api/timeline/v1", tags=["timeline"])
TOKEN = Query(min_length=20, max_length=400, pattern=r"^[A-Za-z0-9_-]+$", description="the token of the e-mail's link")


def _me(caller: Principal) -> str:
    if caller.person_id is None:
        raise Forbidden("only a person of the directory has a timeline")
    return caller.person_id


@router.get("/feed", summary="Your notifications, newest first, a page at a time, with your unread count")
async def feed(
    caller: Caller,
    feeds: Feeds,
    before: Annotated[str | None, Query(pattern=NOTE_ID, description="the `next` of the page before")] = None,
    size: Annotated[int, Query(ge=1, le=50)] = 20,
) -> FeedPage:
    page = await feeds.feed(_me(caller), before=before, size=size)
    return FeedPage.model_validate({"items": page.items, "unread": page.unread, "next": page.next})


@router.get("/unread", summary="How many of your notifications you have not read")
async def unread(caller: Caller, feeds: Feeds) -> Unread:
    return Unread(unread=await feeds.unread(_me(caller)))


@router.post("/read", summary="Mark notifications read (some, or all of them); your unread count after")
async def read(body: ReadIn, caller: Caller, feeds: Feeds) -> Unread:
    if body.ids is not None:
        wrong = [i for i in body.ids if not re.fullmatch(NOTE_ID, i)]
        if wrong:
            raise Invalid(f"{wrong[0]!r} is not a notification id", field="ids")
    return Unread(unread=await feeds.mark_read(_me(caller), body.ids))


async def _preferences(choices: Choices, person: str) -> Preferences:
    return Preferences.model_validate(
        {"kinds": await choices.of(person), "channels": choices.channels(), "email": await choices.email_of(person)}
    )


@router.get("/preferences", summary="How you are told of each kind of notification")
async def preferences(caller: Caller, choices: Choices) -> Preferences:
    return await _preferences(choices, _me(caller))


@router.put("/preferences", summary="Choose how you are told of some kinds of notification")
async def choose(body: PreferencesIn, caller: Caller, choices: Choices) -> Preferences:
    person = _me(caller)
    await choices.set(person, body.kinds)
    return await _preferences(choices, person)


@router.get("/unsubscribe", summary="What an unsubscribe link would stop (no sign-in: the link's token says who)")
async def unsubscribe_what(mailer: Mailer, token: Annotated[str, TOKEN]) -> Unsubscribed:
    _, kind = mailer.unsubscribe.read(token)
    kinds = list(KINDS) if kind == "*" else [kind]
    what = "tous les e-mails de l'ENT" if kind == "*" else f"les e-mails : {KINDS[kind].label.lower()}"
    return Unsubscribed(kinds=kinds, message=f"Ce lien arrête {what}. Vous les verrez toujours dans l'ENT.")


@router.post(
    "/unsubscribe",
    summary="Stop the e-mails an unsubscribe link names: the one-click of RFC 8058, without signing in",
)
async def unsubscribe(mailer: Mailer, choices: Choices, token: Annotated[str, TOKEN]) -> Unsubscribed:
    person, kind = mailer.unsubscribe.read(token)
    kinds = await choices.stop_mails(person, None if kind == "*" else kind)
    what = "aucun e-mail de l'ENT" if kind == "*" else f"plus d'e-mail : {KINDS[kind].label.lower()}"
    return Unsubscribed(
        kinds=kinds, message=f"C'est fait : vous ne recevrez {what}. Vous les verrez toujours dans l'ENT."
    )

"""Notifications: made from an event, stored once, put in each person's feed, told live to their open pages, and
passed on by e-mail (at once or in the daily digest) to those who asked for it — or whose profile's default says so.

A notification made again from the same event (a redelivery, a retry after a failure) has the same id: every write is
idempotent, and nobody is told twice."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from maille_kit.errors import Invalid, NotFound
from maille_timeline.directory import profiles_of
from maille_timeline.kinds import CHANNEL_WORDS, CHANNELS, KINDS, Channel, Kind, render
from maille_timeline.live import Live
from maille_timeline.mail import Mails
from maille_timeline.repository import TimelineRepository, months_back, note_time, time_key

FEED_MONTHS = 7
NOTES_HELD = 50_000  # notifications kept in memory (about 300 bytes each)
Doc = dict[str, Any]


def note_id_for(source: str, at: datetime) -> str:
    """A notification's id: its time (µs, 16 digits, so that ids sort by time) and a digest of what made it."""
    return f"{time_key(at)}{hashlib.sha256(source.encode()).hexdigest()[:12]}"


def channel_of(kind: Kind, person: Doc | None, chosen: Doc | None) -> Channel:
    value = ((chosen or {}).get("kinds") or {}).get(kind.name)
    return value if value in CHANNELS else kind.default_for(profiles_of(person))


@dataclass(frozen=True)
class FeedPage:
    items: list[Doc]
    unread: int
    next: str | None


class Notifications:
    def __init__(self, repository: TimelineRepository, live: Live, mails: Mails, *, feed_days: int) -> None:
        self.repository = repository
        self.live = live
        self.mails = mails
        self.feed_days = feed_days
        self._held: OrderedDict[str, Doc] = OrderedDict()

    async def notify(
        self,
        *,
        source: str,
        at: datetime,
        kind: str,
        data: dict[str, Any],
        persons: Sequence[str],
        tenant: str,
        known: dict[str, Doc] | None = None,
    ) -> str | None:
        """Tell `persons` of something (`source`: the event it comes from); the notification's id, or None when
        nobody is to be told (each person's preference said no). `known`: their directory documents, when the
        caller has read them already."""
        told = render(kind, data)
        ids = [p for p in dict.fromkeys(persons) if p]
        people = dict(known) if known is not None else {}
        missing = [p for p in ids if p not in people]
        if missing:
            people |= await self.repository.persons_by_id(missing)
        chosen = await self.repository.preferences_by_id(ids)
        channels = {p: channel_of(KINDS[kind], people.get(p), chosen.get(p)) for p in ids}
        shown = [p for p in ids if channels[p] != "off"]
        if not shown:
            return None
        note_id = note_id_for(source, at)
        note = {"_id": note_id, "kind": kind, "title": told.title, "text": told.text, "link": told.link, "at": at}
        await self.repository.add_note(note | {"tenant": tenant})
        self._held[note_id] = note
        await self.repository.deliver(note_id, shown)
        digest = [p for p in shown if channels[p] == "digest"]
        if digest:
            await self.repository.add_digests(note_id, digest, self.mails.digest_day(datetime.now(UTC)))
        immediate = [people[p] for p in shown if channels[p] == "immediate" and p in people]
        if immediate:
            await self.mails.queue_immediate(note, immediate)
        await self.live.tell(shown, "notification", {"id": note_id, "title": told.title, "link": told.link})
        return note_id

    async def withdraw(self, note_id: str, persons: list[str]) -> None:
        """A notification taken back from `persons`; their unread counts told to their open pages."""
        made = note_time(note_id)
        days = {self.mails.digest_day(made), self.mails.digest_day(made + timedelta(hours=12))}
        await self.repository.withdraw(note_id, persons, sorted(days))
        for person in persons:
            await self.live.tell([person], "unread", {"unread": await self.unread(person)})

    async def feed(self, person: str, *, before: str | None = None, size: int = 20) -> FeedPage:
        """The person's notifications, newest first, `size` at a time (`before`: the last id of the page before)."""
        ids, read = await self._ids(person)
        unread = sum(1 for i in ids if i not in read)
        if before is not None:
            ids = [i for i in ids if i < before]
        page = ids[:size]
        notes = await self._notes(page)
        items = [
            {
                "id": i,
                "kind": notes[i]["kind"],
                "title": notes[i]["title"],
                "text": notes[i]["text"],
                "link": notes[i]["link"],
                "at": note_time(i),
                "read": i in read,
            }
            for i in page
            if i in notes
        ]
        return FeedPage(items, unread, page[-1] if len(ids) > size and page else None)

    async def _notes(self, ids: Sequence[str]) -> dict[str, Doc]:
        """Notifications by id: a notification never changes once made, and many persons read the same one (a class's
        mail, a school's news): the most recent are kept in memory, a feed page reads only those it lacks."""
        found = {i: self._held[i] for i in ids if i in self._held}
        missing = [i for i in ids if i not in found]
        if missing:
            read = await self.repository.notes_by_id(missing)
            found |= read
            self._held.update(read)
            while len(self._held) > NOTES_HELD:
                self._held.popitem(last=False)
        return found

    async def unread(self, person: str) -> int:
        ids, read = await self._ids(person)
        return sum(1 for i in ids if i not in read)

    async def mark_read(self, person: str, ids: Sequence[str] | None) -> int:
        """Mark read the notifications `ids` (all when None); the unread count after, also told to the person's
        other open pages."""
        held, read = await self._ids(person)
        if ids is None:
            chosen = [i for i in held if i not in read]
        else:
            unknown = [i for i in ids if i not in set(held)]
            if unknown:
                raise NotFound(f"no notification {unknown[0]} in your feed", field="ids")
            chosen = [i for i in ids if i not in read]
        by_month: dict[str, list[str]] = {}
        for i in chosen:
            by_month.setdefault(f"{note_time(i):%Y%m}", []).append(i)
        await self.repository.mark_read(person, by_month)
        left = sum(1 for i in held if i not in read) - len(chosen)
        await self.live.tell([person], "unread", {"unread": left})
        return left

    async def _ids(self, person: str) -> tuple[list[str], set[str]]:
        now = datetime.now(UTC)
        oldest = time_key(now - timedelta(days=self.feed_days))
        months = await self.repository.months(person, months_back(now, FEED_MONTHS))
        ids = sorted({i for m in months for i in m.get("ids", []) if i >= oldest}, reverse=True)
        read = {i for m in months for i in m.get("read", [])}
        return ids, read

    async def forget_old(self) -> tuple[int, int]:
        """Retention: the feed months and notifications older than the feed keeps."""
        now = datetime.now(UTC)
        return await self.repository.forget_before(
            months_back(now, FEED_MONTHS)[-1], now - timedelta(days=self.feed_days)
        )


class Preferences:
    def __init__(self, repository: TimelineRepository) -> None:
        self.repository = repository

    async def of(self, person: str) -> list[Doc]:
        """Each kind with how the person is told of it, and whether that is their choice or their profile's default."""
        me = await self.repository.person(person)
        chosen = (await self.repository.preferences_by_id([person])).get(person)
        kinds = ((chosen or {}).get("kinds")) or {}
        return [
            {
                "kind": kind.name,
                "label": kind.label,
                "channel": channel_of(kind, me, chosen),
                "default": kind.default_for(profiles_of(me)),
                "chosen": kind.name in kinds,
            }
            for kind in KINDS.values()
            if kind.name != "admin" or _administers(me)
        ]

    async def email_of(self, person: str) -> str | None:
        """Where the person's e-mails go (the directory's first address), if anywhere."""
        me = await self.repository.person(person)
        emails = (me or {}).get("emails") or []
        return emails[0] if emails else None

    async def set(self, person: str, kinds: dict[str, str]) -> list[Doc]:
        for kind, channel in kinds.items():
            if kind not in KINDS:
                raise Invalid(f"no kind of notification {kind!r} (known: {', '.join(KINDS)})", field=f"kinds.{kind}")
            if channel not in CHANNELS:
                raise Invalid(
                    f"{channel!r} is not a way of telling (portal, immediate, digest or off)", field=f"kinds.{kind}"
                )
        await self.repository.set_preferences(person, kinds)
        return await self.of(person)

    async def stop_mails(self, person: str, kind: str | None) -> list[str]:
        """No more e-mail of `kind` (of any kind when None): those told by e-mail are told in the ENT only."""
        now = {p["kind"]: p["channel"] for p in await self.of(person)}
        kinds = [k for k in ([kind] if kind else list(now)) if now.get(k, KINDS[k].others) in ("immediate", "digest")]
        if kinds:
            await self.repository.set_preferences(person, dict.fromkeys(kinds, "portal"))
        return [kind] if kind else kinds

    @staticmethod
    def channels() -> list[Doc]:
        return [{"channel": c, "label": CHANNEL_WORDS[c]} for c in CHANNELS]


def _administers(person: Doc | None) -> bool:
    codes = profiles_of(person)
    return bool(codes & {"National_DIR", "National_ACA", "National_COL"})

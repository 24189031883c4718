"""E-mail: the notifications of those who asked for them by e-mail, at once or in one daily digest, handed to the
operator's SMTP relay — in French, plain text and HTML, each with a one-click unsubscribe (RFC 8058) that works
without signing in. An address the relay refuses `bounces_to_stop` times in a row gets no more e-mail until the
directory gives the person another (a refusal counted, the relay's taking of a later mail clears the count)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiosmtplib

from maille_kit.errors import Invalid
from maille_kit.telemetry import meter
from maille_timeline.kinds import KINDS
from maille_timeline.repository import TimelineRepository, note_time
from maille_timeline.settings import TimelineSettings

log = logging.getLogger("maille.timeline")
PARIS = ZoneInfo("Europe/Paris")
Doc = dict[str, Any]
GIVE_UP_AFTER = 20  # tries of an e-mail the relay could not take (away, refusing for a while): then it is dropped
SENT = meter().create_counter("maille.timeline.mails", description="e-mails handed to the SMTP relay, by kind")
BOUNCES = meter().create_counter("maille.timeline.bounces", description="recipients the SMTP relay refused")


class Unsubscribe:
    """The signed token of an unsubscribe link: who, and from which kind (`*`: every e-mail)."""

    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"maille-timeline-unsubscribe\x00" + key.encode()).digest()

    def token(self, person: str, kind: str = "*") -> str:
        body = f"{person}\x00{kind}".encode()
        signature = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(body + signature).decode().rstrip("=")

    def read(self, token: str) -> tuple[str, str]:
        """(person, kind) of a token this service signed; `Invalid` for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise Invalid("this unsubscribe link is damaged (copy it whole from the e-mail)", field="token") from None
        body, signature = raw[:-16], raw[-16:]
        if len(raw) < 18 or not hmac.compare_digest(signature, hmac.new(self._key, body, hashlib.sha256).digest()[:16]):
            raise Invalid("this unsubscribe link is damaged (copy it whole from the e-mail)", field="token")
        person, _, kind = body.decode("utf-8", "replace").partition("\x00")
        if kind != "*" and kind not in KINDS:
            raise Invalid("this unsubscribe link is damaged (copy it whole from the e-mail)", field="token")
        return person, kind


def _encoded(value: str) -> str:
    """A header's words as RFC 2047 has them travel (plain when ASCII)."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def _when(at: datetime) -> str:
    local = at.astimezone(PARIS)
    return f"le {local:%d/%m/%Y} à {local:%H:%M}"


class Mails:
    """Rendering, the queue of e-mails to send at once, the daily digests, and the relay."""

    def __init__(self, repository: TimelineRepository, settings: TimelineSettings) -> None:
        self.repository = repository
        self.settings = settings
        self.public = settings.public_url.rstrip("/")
        self.unsubscribe = Unsubscribe(settings.unsubscribe_key.get_secret_value())
        display, self.sender = parseaddr(settings.mail_from)
        self._from = formataddr((_encoded(display), self.sender)) if display else self.sender
        self.domain = self.sender.rpartition("@")[2] or "maille.invalid"
        self.envelope_sender = settings.bounce_address or self.sender
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.smtp_connections)

    # what is sent

    async def queue_immediate(self, note: Doc, persons: Sequence[Doc]) -> None:
        """One e-mail per person (with an address) for this notification, queued: the sender hands them over."""
        mails = [
            {"_id": f"{note['_id']}:{p['_id']}", "person": p["_id"], "to": p["emails"][0], "note": note["_id"]}
            for p in persons
            if p.get("emails")
        ]
        if mails:
            await self.repository.queue_mails(mails)

    def digest_day(self, at: datetime) -> str:
        """The evening whose digest a notification made at `at` goes into: today's until its hour (Europe/Paris), the
        next day's from then on."""
        local = at.astimezone(PARIS)
        if local.hour >= self.settings.digest_hour:
            local += timedelta(days=1)
        return f"{local:%Y-%m-%d}"

    def render(self, person: Doc, notes: Sequence[Doc], *, digest: bool) -> bytes:
        """The e-mail of one notification, or of a day's digest, for `person`: the message as the relay takes it
        (headers, then a plain-text and an HTML part, each UTF-8 in base64; lines of 76 characters, CRLF)."""
        kind = "*" if digest or len(notes) != 1 else notes[0]["kind"]
        token = self.unsubscribe.token(person["_id"], kind)
        one_click = f"{self.public}/api/timeline/v1/unsubscribe?token={quote(token)}"
        page = f"{self.public}/desabonnement?jeton={quote(token)}"
        name = f"{person.get('first_name', '')} {person.get('last_name', '')}".strip() or "Bonjour"
        if digest:
            subject = f"Maille : {len(notes)} nouveauté{'s' if len(notes) > 1 else ''} pour vous aujourd'hui"
            intro = "Voici ce qui s'est passé pour vous dans l'ENT aujourd'hui :"
            stop = "Ne plus recevoir ce résumé quotidien"
        else:
            subject = f"Maille : {notes[0]['title']}"
            intro = "Du nouveau pour vous dans l'ENT :"
            stop = f"Ne plus recevoir d'e-mail pour : {KINDS[notes[0]['kind']].label.lower()}"
        lines = [f"{name},", "", intro, ""]
        items_html = []
        for note in notes:
            link = f"{self.public}{note['link']}"
            when = _when(note.get("at") or note_time(note["_id"]))
            lines += [f"- {note['title']} ({when})", f"  {note['text']}", f"  {link}", ""]
            items_html.append(
                f'<li><p><a href="{html.escape(link)}"><strong>{html.escape(note["title"])}</strong></a><br>'
                f"{html.escape(note['text'])}<br><small>{when}</small></p></li>"
            )
        lines += ["Pour tout voir, connectez-vous à l'ENT :", f"{self.public}/", "", f"{stop} : {page}"]
        text = "\n".join(lines)
        page_html = (
            f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{html.escape(subject)}</title></head>'
            f"<body><p>{html.escape(name)},</p><p>{html.escape(intro)}</p><ul>{''.join(items_html)}</ul>"
            f'<p><a href="{html.escape(self.public)}/">Se connecter à l\'ENT</a></p>'
            f'<p><small><a href="{html.escape(page)}">{html.escape(stop)}</a></small></p></body></html>'
        )
        boundary = "=_maille_" + os.urandom(12).hex()
        head = [
            f"From: {self._from}",
            f"To: {person['emails'][0]}",
            f"Subject: {_encoded(subject)}",
            f"Date: {format_datetime(datetime.now(UTC))}",
            f"Message-ID: <{os.urandom(16).hex()}@{self.domain}>",
            "MIME-Version: 1.0",
            f"List-Unsubscribe: <{one_click}>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Auto-Submitted: auto-generated",
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "",
        ]
        parts = []
        for subtype, body in (("plain", text), ("html", page_html)):
            encoded = base64.encodebytes(body.replace("\n", "\r\n").encode()).decode().replace("\n", "\r\n")
            parts.append(
                f"--{boundary}\r\nContent-Type: text/{subtype}; charset=utf-8\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}"
            )
        return ("\r\n".join(head) + "\r\n" + "".join(parts) + f"--{boundary}--\r\n").encode()

    # the relay

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._idle:
            return self._idle.pop()
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_seconds,
            use_tls=s.smtp_security == "tls",
            start_tls=True if s.smtp_security == "starttls" else False,
        )
        await smtp.connect()
        if s.smtp_username:
            await smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
        return smtp

    async def hand_over(self, address: str, message: bytes) -> str | None:
        """Give one e-mail to the relay: None when taken, the reason when the relay refused its recipient (a bounce);
        `aiosmtplib.SMTPException` or `OSError` when the relay could not be reached (tried again later)."""
        async with self._slots:
            smtp = await self._connection()
            try:
                await smtp.sendmail(self.envelope_sender, [address], message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.append(smtp)
                return "; ".join(f"{r.code} {r.message}" for r in exc.recipients) or "refused"
            except aiosmtplib.SMTPResponseException as exc:
                if 500 <= exc.code < 600:  # the message itself refused for good: a bounce of its own
                    self._idle.append(smtp)
                    return f"{exc.code} {exc.message}"
                with contextlib.suppress(Exception):
                    smtp.close()
                raise
            except BaseException:
                with contextlib.suppress(Exception):
                    smtp.close()
                raise
            self._idle.append(smtp)
            return None

    async def close(self) -> None:
        for smtp in self._idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(smtp.quit(), 2)
        self._idle.clear()

    async def _deliverable(self, addresses: Sequence[str]) -> tuple[set[str], set[str]]:
        """(the addresses that have not bounced `bounces_to_stop` times in a row, those that bounced at all)."""
        known = await self.repository.addresses_by_id(list(addresses))
        limit = self.settings.bounces_to_stop
        return {a for a in addresses if known.get(a, {}).get("bounces", 0) < limit}, set(known)

    async def _send_all(
        self, jobs: Sequence[tuple[str, str, bytes]], bounced_before: set[str]
    ) -> tuple[list[str], list[str]]:
        """Send (id, address, message) jobs at once over the pool; (ids done — taken or bounced —, ids to retry)."""

        async def one(job: tuple[str, str, bytes]) -> tuple[str, bool]:
            job_id, address, message = job
            try:
                refused = await self.hand_over(address, message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                log.warning("the SMTP relay could not take an e-mail: %s", exc)
                return job_id, False
            if refused is not None:
                BOUNCES.add(1)
                await self.repository.bounced(address, refused)
            else:
                SENT.add(1)
                if address in bounced_before:
                    await self.repository.delivered_to([address])
            return job_id, True

        results = await asyncio.gather(*(one(job) for job in jobs))
        return [i for i, ok in results if ok], [i for i, ok in results if not ok]

    async def send_waiting(self, limit: int = 200) -> int:
        """The queued e-mails handed to the relay (those it could not take stay, tried again later); how many went."""
        waiting = await self.repository.waiting_mails(limit)
        if not waiting:
            return 0
        ok, bounced = await self._deliverable([m["to"] for m in waiting])
        dropped = [m["_id"] for m in waiting if m["to"] not in ok or m.get("tries", 0) >= GIVE_UP_AFTER]
        live = [m for m in waiting if m["_id"] not in set(dropped)]
        notes = await self.repository.notes_by_id([m["note"] for m in live])
        persons = await self.repository.persons_by_id([m["person"] for m in live])
        jobs = []
        for m in live:
            person = persons.get(m["person"])
            if m["note"] not in notes or person is None or m["to"] not in (person.get("emails") or []):
                dropped.append(m["_id"])  # the notification past retention, the person gone or their address changed
                continue
            jobs.append((m["_id"], m["to"], self.render(person, [notes[m["note"]]], digest=False)))
        done, again = await self._send_all(jobs, bounced)
        await self.repository.mails_done([*dropped, *done])
        for m in live:
            if m["_id"] in again:
                await self.repository.mail_retry(m["_id"], m.get("tries", 0) + 1, "the relay could not be reached")
        return len(done)

    async def send_digests(self, batch: int = 500, *, up_to: str | None = None) -> dict[str, int]:
        """The digests of the evening `up_to` and those before it (every digest waiting when None: an operator's
        `send-digests`) handed to the relay, `batch` persons at a time, the next batch read and rendered while the
        relay takes this one: {sent, skipped, failed}."""
        counts = {"sent": 0, "skipped": 0, "failed": 0}
        keys = await self.repository.digest_keys(up_to or "9999-12-31")
        # A person's digests of several evenings (a catch-up) go in one e-mail: batches never split a person.
        batches: list[list[str]] = []
        for key in keys:
            if batches and len(batches[-1]) >= batch and batches[-1][-1][11:] != key[11:]:
                batches.append([])
            if not batches:
                batches.append([])
            batches[-1].append(key)

        async def prepare(
            keys: list[str],
        ) -> tuple[list[tuple[str, str, bytes]], list[str], dict[str, list[str]], set[str]]:
            docs = await self.repository.digests_by_id(keys)
            by_person: dict[str, list[str]] = {}
            held: dict[str, list[str]] = {}
            for key, doc in docs.items():
                by_person.setdefault(key[11:], []).append(key)
                held.setdefault(key[11:], []).extend(doc.get("ids", []))
            persons = await self.repository.persons_by_id(list(by_person))
            notes = await self.repository.notes_by_id(list({i for ids in held.values() for i in ids}))
            ok, bounced = await self._deliverable([p["emails"][0] for p in persons.values() if p.get("emails")])
            jobs, skipped = [], []
            for who, ids in held.items():
                person = persons.get(who)
                told = sorted({i: notes[i] for i in ids if i in notes}.values(), key=lambda n: n["_id"], reverse=True)
                if person is None or not person.get("emails") or person["emails"][0] not in ok or not told:
                    skipped.append(who)
                    continue
                jobs.append((who, person["emails"][0], self.render(person, told[:30], digest=True)))
            return jobs, skipped, by_person, bounced

        ahead = asyncio.ensure_future(prepare(batches[0])) if batches else None
        for n in range(len(batches)):
            assert ahead is not None
            jobs, skipped, by_person, bounced = await ahead
            ahead = asyncio.ensure_future(prepare(batches[n + 1])) if n + 1 < len(batches) else None
            done, again = await self._send_all(jobs, bounced)
            counts["sent"] += len(done)
            counts["skipped"] += len(skipped)
            counts["failed"] += len(again)
            await self.repository.digests_done([k for who in (*done, *skipped) for k in by_person[who]])
        return counts

"""An async client of PMB's external services (pmb.md): JSON-RPC 1.0 on `ws/connector_out.php?source_id=N`, one
database per school, HTTP Basic or PMB's in-body `auth_pw`, timeouts, reads retried, and PMB's failures told
apart — `PmbUnavailable` (down, slow, not JSON, too large: the school is missing from a result) from
`PmbRefused` (PMB answered an error: wrong credentials, a method not exported, a bad parameter).

Records come as `json_unimarc` and leave as `Record`: title, authors, publisher, ISBN, summary, cover, document
type, availability and the OPAC link.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel

DOC_TYPES = {
    "a": "texte imprimé",
    "b": "texte manuscrit",
    "c": "partition musicale",
    "g": "vidéo",
    "i": "enregistrement sonore",
    "j": "enregistrement sonore musical",
    "k": "document graphique",
    "l": "document électronique",
    "m": "multimédia",
    "r": "objet",
}


class PmbError(Exception):
    """Something went wrong with one school's PMB; `detail` says what, for a person to read."""

    def __init__(self, detail: str, *, database: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.database = database


class PmbUnavailable(PmbError):
    """PMB did not answer usably: down, slower than the timeout, not JSON-RPC, or too large."""


class PmbRefused(PmbError):
    """PMB answered with an error."""


@dataclass(frozen=True)
class PmbConnection:
    """How to reach one school's PMB (registered by operators). `auth` "basic" sends HTTP Basic; "body" PMB's
    `auth_user` + `auth_pw` (which needs the source's connexion phrase)."""

    url: str  # the PMB's base URL, e.g. https://cdi.example.fr/pmb
    source_id: int
    user: str
    password: str = field(repr=False)
    database: str | None = None
    opac_url: str | None = None
    opac_sign_on: str = "empr.php"  # the OPAC page that starts PMB's sign-on through Keycloak (OIDC source)
    auth: Literal["basic", "body"] = "basic"
    connexion_phrase: str = field(default="", repr=False)
    login_salt: str = field(
        default="", repr=False
    )  # the OPAC's opac_empr_password_salt: readers signed on without their password
    reader_scope: Literal["login", "mail", "cb"] = "login"  # what identifies a reader for login_token
    sync_readers: bool = False  # reader sync writes the school's readers
    reader_fields: tuple[int, int, int] = (1, 1, 1)  # categ, statut, cstat of synced readers

    def endpoint(self) -> str:
        query = {"source_id": self.source_id, **({"database": self.database} if self.database else {})}
        return f"{self.url.rstrip('/')}/ws/connector_out.php?{urlencode(query)}"


class Record(BaseModel):
    """A catalogue record, clean."""

    model_config = {"frozen": True}

    id: int
    title: str
    authors: list[str]
    publisher: str | None
    year: str | None
    isbn: str | None
    summary: str | None
    cover: str | None
    type: str | None
    keywords: list[str]
    available: int | None  # copies on the shelf, when the items were asked for
    copies: int | None
    opac: str | None


def auth_pw(user: str, password: str, phrase: str, call_id: Any, method: str) -> str:
    """PMB's in-body password for one call: md5(user + md5(password) + connexion_phrase + id + method)."""
    return _md5(f"{user}{_md5(password)}{phrase}{call_id}{method}")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 — PMB's scheme, not ours


class PmbClient:
    """Calls to any school's PMB through one pool of connections."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        max_bytes: int = 4 * 1024 * 1024,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.max_bytes = max_bytes
        self.http = http or httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=100), follow_redirects=False
        )
        self._ids = itertools.count(1)

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, conn: PmbConnection, method: str, params: list[Any], *, read: bool = True) -> Any:
        """One JSON-RPC call; a read is tried again (`retries` times) when PMB is unavailable, a write never."""
        attempts = 1 + (self.retries if read else 0)
        for attempt in range(attempts):
            try:
                return await self._call_once(conn, method, params)
            except PmbUnavailable:
                if attempt + 1 == attempts:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def _call_once(self, conn: PmbConnection, method: str, params: list[Any]) -> Any:
        call_id = next(self._ids)
        body: dict[str, Any] = {"id": call_id, "method": method, "params": params}
        headers = {"content-type": "application/json", "accept": "application/json"}
        auth = None
        if conn.auth == "body":
            body |= {
                "auth_user": conn.user,
                "auth_pw": auth_pw(conn.user, conn.password, conn.connexion_phrase, call_id, method),
            }
        else:
            auth = httpx.BasicAuth(conn.user, conn.password)
        where = conn.database or conn.url
        try:
            async with asyncio.timeout(self.timeout):
                async with self.http.stream(
                    "POST", conn.endpoint(), content=json.dumps(body), headers=headers, auth=auth
                ) as answer:
                    if answer.status_code != 200:
                        raise PmbUnavailable(f"PMB {where} answered HTTP {answer.status_code}", database=conn.database)
                    data = bytearray()
                    async for piece in answer.aiter_bytes():
                        data += piece
                        if len(data) > self.max_bytes:
                            raise PmbUnavailable(
                                f"PMB {where} answered more than {self.max_bytes} bytes", database=conn.database
                            )
        except TimeoutError:
            raise PmbUnavailable(
                f"PMB {where} did not answer within {self.timeout:g} s", database=conn.database
            ) from None
        except httpx.HTTPError as exc:
            raise PmbUnavailable(
                f"PMB {where} cannot be reached ({type(exc).__name__})", database=conn.database
            ) from None
        try:
            reply = json.loads(data)
        except ValueError:
            raise PmbUnavailable(f"PMB {where} answered something that is not JSON", database=conn.database) from None
        if not isinstance(reply, dict) or "result" not in reply and "error" not in reply:
            raise PmbUnavailable(f"PMB {where} answered something that is not a JSON-RPC reply", database=conn.database)
        if reply.get("error"):
            error = reply["error"]
            message = error.get("message", json.dumps(error)) if isinstance(error, dict) else str(error)
            raise PmbRefused(f"PMB {where} refused {method}: {message[:300]}", database=conn.database)
        return reply.get("result")

    # the catalogue
    async def search(
        self, conn: PmbConnection, term: str, *, search_type: int = 0, first: int = 0, count: int = 20
    ) -> tuple[int, list[Record]]:
        """Records matching `term` (PMB's simple search; 0 all fields, 1 title, 2 author, 3 publisher, 4 collection,
        5 subject): how many there are, and `count` of them from `first`, with their availability."""
        found = await self.call(conn, "pmbesSearch_simpleSearch", [search_type, term, -1, -1])
        if not isinstance(found, dict) or "searchId" not in found:
            raise PmbUnavailable(
                f"PMB {conn.database or conn.url} answered a search without a searchId", database=conn.database
            )
        total = int(found.get("nbResults") or 0)
        if total == 0 or first >= total:
            return total, []
        fetched = await self.call(
            conn,
            "pmbesSearch_fetchSearchRecords",
            [found["searchId"], first, count, "json_unimarc", "utf-8", False, True],
        )
        return total, [r for r in (record_of(item, conn.opac_url) for item in fetched or []) if r is not None]

    # the reader's account, through PMB's server-side sign-on (never the reader's password)
    async def reader_session(self, conn: PmbConnection, value: str, *, now: datetime | None = None) -> str:
        """A session of the reader `value` (their login, mail or barcode, as `conn.reader_scope` says): `login_token`
        with token = HMAC-SHA512(scope + date + value) keyed by the OPAC's salt."""
        if not conn.login_salt:
            raise PmbRefused(
                "this school's PMB connection has no OPAC salt: readers cannot be signed on", database=conn.database
            )
        date = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
        token = hmac.new(
            conn.login_salt.encode(), f"{conn.reader_scope}{date}{value}".encode(), hashlib.sha512
        ).hexdigest()
        session = await self.call(
            conn, "pmbesOPACEmpr_login_token", [conn.reader_scope, date, value, token], read=False
        )
        if not isinstance(session, str) or not session:
            raise PmbUnavailable(
                f"PMB {conn.database or conn.url} answered a sign-on without a session", database=conn.database
            )
        return session

    async def account(self, conn: PmbConnection, value: str) -> dict[str, list[dict[str, Any]]]:
        """The reader's late, current and past loans and their reservations."""
        session = await self.reader_session(conn, value)
        try:
            late, current, past, resas = await asyncio.gather(
                *(self.call(conn, "pmbesOPACEmpr_list_loans", [session, kind]) for kind in (0, 1, 2)),
                self.call(conn, "pmbesOPACEmpr_list_resas", [session]),
            )
        finally:
            await self._logout(conn, session)
        return {
            "late": list(late or []),
            "current": list(current or []),
            "past": list(past or []),
            "reservations": list(resas or []),
        }

    async def reserve(self, conn: PmbConnection, value: str, notice_id: int) -> dict[str, Any]:
        """Place a reservation of a record for the reader; PMB's answer (`status`, `message`)."""
        session = await self.reader_session(conn, value)
        try:
            answer = await self.call(conn, "pmbesOPACEmpr_add_resa", [session, notice_id, 0, 0], read=False)
        finally:
            await self._logout(conn, session)
        return answer if isinstance(answer, dict) else {"status": bool(answer), "message": ""}

    async def cancel(self, conn: PmbConnection, value: str, resa_id: int) -> bool:
        """Cancel one of the reader's reservations; whether there was one."""
        session = await self.reader_session(conn, value)
        try:
            return bool(await self.call(conn, "pmbesOPACEmpr_delete_resa", [session, resa_id], read=False))
        finally:
            await self._logout(conn, session)

    async def _logout(self, conn: PmbConnection, session: str) -> None:
        try:
            await self.call(conn, "pmbesOPACEmpr_logout", [session], read=False)
        except PmbError:
            pass  # the session ends on its own


def record_of(item: dict[str, Any], opac_url: str | None) -> Record | None:
    """A `json_unimarc` record (with its items, when fetched) as a `Record`; None for one that cannot be read."""
    try:
        content = item["noticeContent"]
        unimarc = json.loads(content) if isinstance(content, str) else content
        fields = unimarc["f"]
    except (KeyError, TypeError, ValueError):
        return None

    def values(tag: str, code: str) -> list[str]:
        return [
            s["value"].strip()
            for f in fields
            if f.get("c") == tag
            for s in f.get("s", [])
            if s.get("c") == code and str(s.get("value", "")).strip()
        ]

    def first(tag: str, code: str) -> str | None:
        found = values(tag, code)
        return found[0] if found else None

    authors = []
    for tag in ("700", "701", "702"):
        for f in fields:
            if f.get("c") == tag:
                subs = {s.get("c"): str(s.get("value", "")).strip() for s in f.get("s", [])}
                name = " ".join(p for p in (subs.get("b"), subs.get("a")) if p)
                if name:
                    authors.append(name)
    items = item.get("noticeItems")
    notice = int(item.get("noticeId") or 0)
    code = first("995", "r")
    return Record(
        id=notice,
        title=first("200", "a") or "(sans titre)",
        authors=authors,
        publisher=first("210", "c"),
        year=first("210", "d"),
        isbn=first("010", "a"),
        summary=first("330", "a"),
        cover=first("896", "a"),
        type=DOC_TYPES.get(code or "", code),
        keywords=values("610", "a"),
        available=sum(1 for i in items if not i.get("expl_pret_retour")) if isinstance(items, list) else None,
        copies=len(items) if isinstance(items, list) else None,
        opac=f"{opac_url.rstrip('/')}/index.php?lvl=notice_display&id={notice}" if opac_url else None,
    )

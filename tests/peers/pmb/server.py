"""PMB's external services as a peer (pmb.md): `POST /ws/connector_out.php?source_id=N[&database=…]`, JSON-RPC 1.0.

A call names `<group>_<method>` and its params (a list, or named); the reply is `{"id", "result", "error"}` with
exactly one of the two set, as PMB's connector answers. Authentication as PMB's sources offer it: HTTP Basic
with an external-services user, or `auth_user` + `auth_pw` in the body, `auth_pw = md5(user + md5(password) +
connexion_phrase + id + method)`. A GET without a body lists the methods the source exports. One database per
school (`database=<prefix><UAI>`), each a catalogue of `json_unimarc` records with their items.

Each database's OPAC (`/opac/<database>/`) signs readers in through an OpenID Connect source when one is set
(pmb/opac.py).

`delay` stands for a slow PMB, `failing` for databases that answer an error, `garbage` for ones that answer
something that is not JSON — a test or a bench changes them on the running peer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from pmb.opac import OidcSource, add_opac

METHODS = (
    "pmbesSearch_simpleSearch",
    "pmbesSearch_fetchSearchRecords",
    "pmbesNotices_fetchNoticeList",
    "pmbesItems_fetch_notice_items",
    "pmbesOPACEmpr_login_token",
    "pmbesOPACEmpr_logout",
    "pmbesOPACEmpr_get_account_info",
    "pmbesOPACEmpr_list_loans",
    "pmbesOPACEmpr_list_resas",
    "pmbesOPACEmpr_add_resa",
    "pmbesOPACEmpr_delete_resa",
    "pmbesEmpr_create_empr",
    "pmbesEmpr_update_empr",
    "pmbesEmpr_fetch_empr",
    "pmbesEmpr_delete_empr",
    "pmbesEmpr_groupe_list",
)
TOKEN_WINDOW = 600  # seconds a login_token's date may be away from the peer's clock
DOC_TYPES = [
    ("a", "Texte imprimé"),
    ("g", "Document projeté ou vidéo"),
    ("j", "Enregistrement sonore musical"),
    ("m", "Multimédia"),
]
TITLES = [
    "Le Petit Prince",
    "Les Misérables",
    "Vingt mille lieues sous les mers",
    "L'Étranger",
    "Le Horla",
    "Germinal",
    "La Planète des singes",
    "Le Comte de Monte-Cristo",
    "Madame Bovary",
    "Candide",
]
AUTHORS = [
    "Saint-Exupéry, Antoine de",
    "Hugo, Victor",
    "Verne, Jules",
    "Camus, Albert",
    "Maupassant, Guy de",
    "Zola, Émile",
    "Boulle, Pierre",
    "Dumas, Alexandre",
    "Flaubert, Gustave",
    "Voltaire",
]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 — PMB's own scheme


def auth_pw(user: str, password: str, phrase: str, call_id: Any, method: str) -> str:
    """PMB's in-body password for one call."""
    return md5(f"{user}{md5(password)}{phrase}{call_id}{method}")


def record(database: str, number: int) -> dict[str, Any]:
    """One catalogue record in PMB's `json_unimarc`."""
    title, author = TITLES[number % len(TITLES)], AUTHORS[number % len(AUTHORS)]
    code, _ = DOC_TYPES[number % len(DOC_TYPES)]
    isbn = f"978-2-07-{number:06d}-{number % 10}"

    def field_(tag: str, **subfields: str) -> dict[str, Any]:
        return {"c": tag, "ind": "  ", "s": [{"c": c, "value": v} for c, v in subfields.items()]}

    return {
        "id": number,
        "f": [
            {"c": "001", "value": str(number)},
            field_("010", a=isbn),
            field_(
                "200",
                a=f"{title} (tome {number // len(TITLES) + 1})",
                f=author.split(", ")[-1] + " " + author.split(", ")[0],
            ),
            field_("210", a="Paris", c=["Gallimard", "Hachette", "Flammarion"][number % 3], d=str(1950 + number % 70)),
            field_("330", a=f"Résumé de « {title} » pour le CDI de {database}."),
            field_("610", a=["roman", "aventure", "classique"][number % 3]),
            field_("700", a=author.split(", ")[0], b=author.split(", ")[-1]),
            field_("896", a=f"https://covers.pmb.example/{isbn}.jpg"),
            field_("995", r=code),
        ],
    }


@dataclass
class PmbDatabase:
    """One school's catalogue: `records` records, each with `items` copies, of which every third is lent."""

    name: str
    records: int = 60
    items: int = 2
    salt: str = "sel-opac"  # opac_empr_password_salt, what login_token's HMAC is keyed with
    readers: dict[str, dict[str, Any]] = field(default_factory=dict)  # login -> reader (id, cb, mail, nom, prenom)
    loans: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # login -> loans (`kind`: late, current, past)
    resas: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # login -> reservations
    groups: dict[int, str] = field(
        default_factory=lambda: {1: "6A", 2: "6B", 3: "5A", 4: "3C"}
    )  # reader groups: id -> name

    def catalogue(self) -> list[dict[str, Any]]:
        """Made once (the peer must not be what a benchmark measures)."""
        if getattr(self, "_made", None) is None:
            self._made = [record(self.name, n) for n in range(1, self.records + 1)]
            self._by_id = {r["id"]: r for r in self._made}
            self._encoded = {r["id"]: json.dumps(r, ensure_ascii=False) for r in self._made}
        return self._made

    def texts(self, search_type: int) -> list[str]:
        if search_type not in self.__dict__.setdefault("_texts", {}):
            self._texts[search_type] = [_text(r, search_type) for r in self.catalogue()]
        return self._texts[search_type]

    def by_id(self) -> dict[int, dict[str, Any]]:
        self.catalogue()
        return self._by_id

    def encoded(self, number: int) -> str:
        self.catalogue()
        return self._encoded[number]


@dataclass
class PmbPeer:
    """What the peer answers. Sources: source id -> (user, password, connexion phrase)."""

    sources: dict[int, tuple[str, str, str]] = field(
        default_factory=lambda: {1: ("maille", "secret-ws", "phrase-connexion")}
    )
    databases: dict[str, PmbDatabase] = field(default_factory=dict)
    default_database: str = "pmb"
    delay: float = 0.0
    jitter: float = 0.0  # each answer takes delay + a uniform share of jitter seconds
    failing: set[str] = field(default_factory=set)
    garbage: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (database, method) of each call read
    requests: list[str] = field(default_factory=list)  # the database of every POST, read or not
    _searches: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    _sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # session id -> (database, login)
    oidc: OidcSource | None = None  # the OPACs' OpenID Connect source (sign-on through Keycloak); None: password form

    def database(self, name: str | None) -> PmbDatabase | None:
        name = name or self.default_database
        if name not in self.databases and name == self.default_database:
            self.databases[name] = PmbDatabase(name)
        return self.databases.get(name)

    def authenticated(self, source: int, request_auth: str | None, body: dict[str, Any]) -> bool:
        if source not in self.sources:
            return False
        user, password, phrase = self.sources[source]
        if request_auth and request_auth.lower().startswith("basic "):
            try:
                given = base64.b64decode(request_auth[6:]).decode()
            except ValueError:
                return False
            return given == f"{user}:{password}"
        return body.get("auth_user") == user and body.get("auth_pw") == auth_pw(
            user, password, phrase, body.get("id"), body.get("method", "")
        )

    # the methods
    def call(self, db: PmbDatabase, method: str, params: list[Any] | dict[str, Any]) -> Any:
        args = list(params.values()) if isinstance(params, dict) else list(params)
        if method == "pmbesSearch_simpleSearch":
            search_type, term = int(args[0]), str(args[1])
            words = [w for w in re.split(r"[\s\"'*]+", term.lower()) if w]
            found = [
                r for r, text in zip(db.catalogue(), db.texts(search_type)) if words and all(w in text for w in words)
            ]
            search_id = hashlib.sha1(f"{db.name}|{search_type}|{term}".encode()).hexdigest()[:16]  # noqa: S324
            self._searches[search_id] = (db.name, [r["id"] for r in found])
            types = sorted({_sub(r, "995", "r") for r in found})
            return {"searchId": search_id, "nbResults": len(found), "typdocs": types}
        if method == "pmbesSearch_fetchSearchRecords":
            search_id, first, count, fmt = str(args[0]), int(args[1]), int(args[2]), str(args[3])
            if search_id not in self._searches or self._searches[search_id][0] != db.name:
                raise PmbFault(f"Unknown search id: {search_id}")
            ids = self._searches[search_id][1][first : first + count]
            return self._records(db, ids, fmt, include_items=bool(args[6]) if len(args) > 6 else False)
        if method == "pmbesNotices_fetchNoticeList":
            ids, fmt = [int(n) for n in args[0]], str(args[1])
            return self._records(db, ids, fmt, include_items=bool(args[4]) if len(args) > 4 else False)
        if method == "pmbesItems_fetch_notice_items":
            return self._items(db, int(args[0]))
        if method.startswith("pmbesEmpr_"):
            return self._staff(db, method.removeprefix("pmbesEmpr_"), args)
        if method == "pmbesOPACEmpr_login_token":
            return self._login_token(db, *[str(a) for a in args[:4]])
        login = self._session(db, str(args[0]))
        if method == "pmbesOPACEmpr_logout":
            self._sessions.pop(str(args[0]), None)
            return None
        if method == "pmbesOPACEmpr_get_account_info":
            return db.readers[login]
        if method == "pmbesOPACEmpr_list_loans":
            kind = {0: "late", 1: "current", 2: "past"}[int(args[1])]
            return [
                {k: v for k, v in loan.items() if k != "kind"}
                for loan in db.loans.get(login, [])
                if loan["kind"] == kind
            ]
        if method == "pmbesOPACEmpr_list_resas":
            return db.resas.get(login, [])
        if method == "pmbesOPACEmpr_add_resa":
            notice = int(args[1])
            if notice not in db.by_id():
                raise PmbFault(f"Notice inconnue : {notice}")
            held = db.resas.setdefault(login, [])
            if any(r["notice_id"] == notice for r in held):
                return {"status": False, "message": "Vous avez déjà réservé ce document"}
            resa_id = 1 + max((r["resa_id"] for rs in db.resas.values() for r in rs), default=0)
            held.append(
                {
                    "resa_id": resa_id,
                    "empr_id": db.readers[login]["id"],
                    "notice_id": notice,
                    "bulletin_id": 0,
                    "resa_rank": 1,
                    "resa_dateend": "",
                    "resa_location": "CDI",
                }
            )
            return {"status": True, "message": "Réservation enregistrée", "resa_id": resa_id}
        if method == "pmbesOPACEmpr_delete_resa":
            held = db.resas.get(login, [])
            kept = [r for r in held if r["resa_id"] != int(args[1])]
            db.resas[login] = kept
            return len(kept) < len(held)
        raise PmbFault(f"Unknown method: {method}")

    def _staff(self, db: PmbDatabase, method: str, args: list[Any]) -> Any:
        """Readers, staff side (`pmbesEmpr`): readers are found by barcode (`empr_cb`)."""
        if method == "groupe_list":
            return [{"id": gid, "libelle": name} for gid, name in sorted(db.groups.items())]
        cb = str(args[0])
        login = next((lg for lg, r in db.readers.items() if r.get("cb") == cb), None)
        if method == "fetch_empr":
            if login is None:
                raise PmbFault(f"Lecteur inconnu : {cb}")
            return db.readers[login]
        if method == "delete_empr":
            if login is None:
                raise PmbFault(f"Lecteur inconnu : {cb}")
            if any(loan["kind"] in ("late", "current") for loan in db.loans.get(login, [])):
                raise PmbFault("Suppression impossible : le lecteur a des prêts en cours")
            del db.readers[login]
            return True
        data = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        groups = [g.get("id") for g in data.get("groupe_list", []) if isinstance(g, dict)]
        if any(g not in db.groups for g in groups):
            raise PmbFault(f"Groupe inconnu : {groups}")
        if method == "create_empr":
            if login is not None:
                raise PmbFault(f"Le code-barres {cb} est déjà utilisé")
            for required in ("nom", "categ", "statut", "cstat"):
                if not data.get(required):
                    raise PmbFault(f"Champ obligatoire manquant : {required}")
            new_login = str(data.get("login") or cb)
            if new_login in db.readers:
                raise PmbFault(f"L'identifiant {new_login} est déjà utilisé")
            reader_id = 1 + max((r["id"] for r in db.readers.values()), default=0)
            db.readers[new_login] = {**data, "id": reader_id, "cb": cb, "login": new_login}
            return reader_id
        if method == "update_empr":
            if login is None:
                raise PmbFault(f"Lecteur inconnu : {cb}")
            db.readers[login] = {**db.readers[login], **data, "cb": cb, "login": login}
            return True
        raise PmbFault(f"Unknown method: pmbesEmpr_{method}")

    def _login_token(self, db: PmbDatabase, scope: str, date: str, value: str, token: str) -> str:
        if scope not in ("mail", "cb", "login"):
            raise PmbFault(f"Unknown login scope: {scope}")
        try:
            when = datetime.strptime(date, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            raise PmbFault("Invalid login date") from None
        if abs((datetime.now(UTC) - when).total_seconds()) > TOKEN_WINDOW:
            raise PmbFault("Login token expired")
        expected = hmac.new(db.salt.encode(), f"{scope}{date}{value}".encode(), hashlib.sha512).hexdigest()
        if not hmac.compare_digest(expected, token):
            raise PmbFault("Invalid login token")
        key = {"login": "login", "mail": "mail", "cb": "cb"}[scope]
        login = next(
            (lg for lg, r in db.readers.items() if str(r.get(key, lg if key == "login" else "")) == value), None
        )
        if login is None:
            raise PmbFault("Unknown reader")
        session = os.urandom(16).hex()
        self._sessions[session] = (db.name, login)
        return session

    def _session(self, db: PmbDatabase, session: str) -> str:
        found = self._sessions.get(session)
        if found is None or found[0] != db.name:
            raise PmbFault("Invalid session")
        return found[1]

    def _records(self, db: PmbDatabase, ids: list[int], fmt: str, *, include_items: bool) -> list[dict[str, Any]]:
        if fmt != "json_unimarc":
            raise PmbFault(f"Unsupported record format for this peer: {fmt}")
        by_id = db.by_id()
        out = []
        for n in ids:
            if n in by_id:
                item = {"noticeId": n, "noticeContent": db.encoded(n)}
                if include_items:
                    item["noticeItems"] = self._items(db, n)
                out.append(item)
        return out

    def _items(self, db: PmbDatabase, notice: int) -> list[dict[str, Any]]:
        return [
            {
                "id": notice * 10 + k,
                "cb": f"{db.name}-{notice:05d}-{k}",
                "cote": f"R {notice:03d}",
                "location_caption": "CDI",
                "section_caption": "Romans",
                "statut": "Prêtable",
                "expl_pret_retour": "2026-12-20" if (notice + k) % 3 == 0 else "",
            }
            for k in range(db.items)
        ]


class PmbFault(Exception):
    """A PMB error reply."""


def _sub(rec: dict[str, Any], tag: str, code: str) -> str:
    for f in rec["f"]:
        if f["c"] == tag:
            for s in f.get("s", []):
                if s["c"] == code:
                    return s["value"]
    return ""


def _text(rec: dict[str, Any], search_type: int) -> str:
    """What a simple search of that type looks in, lower case."""
    fields = {1: ["200"], 2: ["700"], 3: ["210"], 4: ["225"], 5: ["610"]}.get(
        search_type, ["200", "700", "210", "330", "610"]
    )
    return " ".join(s["value"] for f in rec["f"] if f["c"] in fields for s in f.get("s", [])).lower()


def create_app(peer: PmbPeer) -> FastAPI:
    """The peer's ASGI app."""
    web = FastAPI(title="PMB external services (peer)", docs_url=None, redoc_url=None, openapi_url=None)

    add_opac(web, peer)

    @web.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @web.get("/peer/databases/{name}/readers")
    async def reader_count(name: str) -> dict[str, int]:  # for benchmarks: how many readers the database holds
        db = peer.databases.get(name)
        return {"readers": len(db.readers) if db else 0}

    @web.get("/ws/connector_out.php")
    @web.get("/pmb/ws/connector_out.php")  # where PMB usually lives
    async def methods(source_id: int) -> Response:
        if source_id not in peer.sources:
            return Response("Unknown source", status_code=404)
        return JSONResponse({"methods": list(METHODS)})

    @web.post("/ws/connector_out.php")
    @web.post("/pmb/ws/connector_out.php")
    async def connector(request: Request, source_id: int, database: str | None = None) -> Response:
        name = database or peer.default_database
        peer.requests.append(name)
        if peer.delay or peer.jitter:
            await asyncio.sleep(peer.delay + random.uniform(0, peer.jitter))
        if name in peer.garbage:
            return Response(
                "<html><body>Fatal error: Allowed memory size exhausted</body></html>",
                status_code=200,
                media_type="text/html",
            )
        try:
            body = json.loads(await request.body())
            call_id, method, params = body.get("id"), body["method"], body.get("params", [])
        except (ValueError, KeyError, AttributeError):
            return JSONResponse({"id": None, "result": None, "error": "Invalid JSON-RPC request"})
        peer.calls.append((name, method))
        if not peer.authenticated(source_id, request.headers.get("authorization"), body):
            return JSONResponse({"id": call_id, "result": None, "error": "Authentication failed"})
        if method not in METHODS:
            return JSONResponse({"id": call_id, "result": None, "error": f"Unknown or unauthorized method: {method}"})
        db = peer.database(database)
        if db is None:
            return JSONResponse({"id": call_id, "result": None, "error": f"Unknown database: {name}"})
        if name in peer.failing:
            return JSONResponse({"id": call_id, "result": None, "error": "MySQL server has gone away"})
        try:
            result = peer.call(db, method, params)
        except PmbFault as fault:
            return JSONResponse({"id": call_id, "result": None, "error": str(fault)})
        except (IndexError, ValueError, TypeError) as exc:
            return JSONResponse({"id": call_id, "result": None, "error": f"Bad parameters: {exc}"})
        return JSONResponse({"id": call_id, "result": result, "error": None})

    return web

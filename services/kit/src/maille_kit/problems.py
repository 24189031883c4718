"""The one error shape: RFC 9457 problem details (`application/problem+json`).

Routers and services raise `Problem`; the handlers installed by `install_problem_handlers` turn it,
FastAPI's validation errors and Starlette's HTTP errors into problem documents. An unexpected error
is logged with its trace and answered with a 500 that says nothing of the inside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

from maille_kit.errors import DomainError
from maille_kit.logging import request_id_var

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class _T:
    status: int
    slug: str
    title: str
    meaning: str
    remedy: str

    @property
    def kind(self) -> ProblemType:
        return ProblemType(self.slug, self.title, self.meaning, self.remedy)


@dataclass(frozen=True)
class ProblemType:
    """A kind of problem: its page at `/problems/<slug>` (served by the gateway) says what it means and what to do."""

    slug: str
    title: str
    meaning: str  # in French: what a person (or a vendor's developer) reads on the page
    remedy: str


# Each status Maille answers, and its page: a problem's `type` is `/problems/<slug>` (relative to the API's host).
PROBLEM_TYPES: dict[int, ProblemType] = {
    t.status: t.kind
    for t in (
        _T(
            400,
            "malformed-request",
            "Malformed request",
            "La requête ne se lit pas (JSON invalide, en-tête mal formé).",
            "Corrigez la requête : `detail` dit ce qui ne va pas.",
        ),
        _T(
            401,
            "unauthenticated",
            "Unauthenticated",
            "Il faut un jeton valide (ou une session) pour cette adresse.",
            "Connectez-vous, ou demandez un nouveau jeton.",
        ),
        _T(
            403,
            "forbidden",
            "Forbidden",
            "Vous êtes bien identifié, mais ceci ne vous est pas permis.",
            "Demandez à votre établissement ou à l'opérateur le droit qu'il faut.",
        ),
        _T(
            404,
            "not-found",
            "Not found",
            "Rien de tel, ou rien que vous puissiez voir.",
            "Vérifiez l'identifiant ; une ressource d'un autre n'est pas montrée.",
        ),
        _T(
            405,
            "method-not-allowed",
            "Method not allowed",
            "Cette adresse n'accepte pas cette méthode.",
            "Voyez la documentation de l'API (/api/docs).",
        ),
        _T(
            409,
            "conflict",
            "Conflict",
            "L'état de la ressource ne le permet pas maintenant (déjà fait, en cours, modifiée entre-temps).",
            "Relisez la ressource, puis réessayez.",
        ),
        _T(
            412,
            "precondition-failed",
            "Precondition failed",
            "La ressource a changé depuis votre lecture (If-Match).",
            "Relisez-la (nouvel ETag), reportez vos changements, renvoyez.",
        ),
        _T(
            413,
            "too-large",
            "Too large",
            "C'est plus grand que ce que le service garde.",
            "Envoyez moins, ou en plusieurs fois.",
        ),
        _T(
            415,
            "unsupported",
            "Unsupported content",
            "Ce type de contenu n'est pas accepté ici.",
            "Envoyez un type accepté (voir `detail`).",
        ),
        _T(
            422,
            "invalid",
            "Invalid request",
            "Une valeur ne respecte pas ses règles ; `errors` nomme chaque champ.",
            "Corrigez les champs nommés.",
        ),
        _T(
            428,
            "precondition-required",
            "Precondition required",
            "Pour changer cette ressource, dites quelle version vous avez lue (If-Match).",
            "Envoyez l'ETag lu dans If-Match.",
        ),
        _T(
            429,
            "rate-limited",
            "Too many requests",
            "Trop de requêtes en peu de temps.",
            "Attendez le délai de Retry-After.",
        ),
        _T(
            500,
            "internal",
            "Internal error",
            "Une erreur imprévue ; elle est journalisée avec son request_id.",
            "Réessayez ; si cela dure, donnez le request_id au support.",
        ),
        _T(
            502,
            "bad-gateway",
            "Bad gateway",
            "Un système dont dépend la réponse (Keycloak, le GAR, PMB) a mal répondu.",
            "Réessayez dans un moment.",
        ),
        _T(
            503,
            "unavailable",
            "Service unavailable",
            "Un service ou son stockage ne répond pas pour l'instant.",
            "Réessayez après le délai de Retry-After.",
        ),
        _T(
            504,
            "timeout",
            "Timeout",
            "Le service n'a pas répondu à temps.",
            "Réessayez ; une écriture peut avoir eu lieu : relisez avant de renvoyer.",
        ),
    )
}


def type_of(status: int) -> str:
    """The `type` of a problem of this status: its page."""
    kind = PROBLEM_TYPES.get(status) or PROBLEM_TYPES[500 if status >= 500 else 400]
    return f"/problems/{kind.slug}"


log = logging.getLogger("maille.problems")


class Problem(Exception):
    """An error answered to the caller as a problem document."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title or HTTPStatus(status).phrase)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.type = type
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    type: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": type_of(status) if type == "about:blank" else type,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(exc.status, exc.detail, instance=request.url.path, headers=exc.headers, **exc.extensions)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status,
        exc.detail,
        title=exc.title,
        type=exc.type,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extensions,
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _location(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem_response(
            400,
            "The request body is not valid JSON.",
            title="Malformed request body",
            instance=request.url.path,
            errors=errors,
        )
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        422, f"Invalid value for {fields}.", title="Invalid request", instance=request.url.path, errors=errors
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != HTTPStatus(exc.status_code).phrase else None
    return problem_response(exc.status_code, detail, instance=request.url.path, headers=getattr(exc, "headers", None))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return unexpected_response(exc, request.method, request.url.path)


def unexpected_response(exc: Exception, method: str, path: str) -> JSONResponse:
    """The answer to an error no code meant: a 503 when the docstore is away or past its deadline (nothing of the
    request was done but what a unit of work finishes, see `maille_kit.work`; the caller may try again), else a
    500 that says nothing of the inside, the trace logged."""
    if isinstance(exc, PyMongoError) and (isinstance(exc, (ConnectionFailure, ExecutionTimeout)) or exc.timeout):
        log.warning("docstore unavailable on %s %s: %s", method, path, type(exc).__name__)
        return problem_response(
            503,
            "The service's storage does not answer right now; try again in a moment.",
            title="Storage unavailable",
            instance=path,
            headers={"Retry-After": "5"},
        )
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return problem_response(500, "An unexpected error occurred; it has been logged.", instance=path)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of `app` a problem document."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)

"""The one error shape: RFC 9457 problem details (`application/problem+json`).

Routers and services raise `Problem`; the handlers installed by `install_problem_handlers` turn it,
FastAPI's validation errors and Starlette's HTTP errors into problem documents. An unexpected error
is logged with its trace and answered with a 500 that says nothing of the inside.
"""

from __future__ import annotations

import logging
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
    body: dict[str, Any] = {"type": type, "title": title or HTTPStatus(status).phrase, "status": status}
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

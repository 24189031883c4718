"""Every error is problem+json: validation errors name the field, malformed bodies are 400, a bug is a 500 that tells
nothing."""

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from maille_kit.middleware import RequestContextMiddleware
from maille_kit.problems import PROBLEM_JSON, Problem, install_problem_handlers


class Resource(BaseModel):
    name: str
    licences: int


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.post("/resources")
    async def create(resource: Resource) -> Resource:
        return resource

    @app.get("/resources/{rid}")
    async def read(rid: int) -> dict[str, int]:
        if rid == 7:
            raise Problem(403, "Resource 7 belongs to another vendor.", vendor="other")
        if rid == 13:
            raise RuntimeError("database password is hunter2")
        return {"rid": rid}

    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_missing_field_named(client: httpx.AsyncClient) -> None:
    answer = await client.post("/resources", json={"name": "Atlas"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_JSON
    body = answer.json()
    assert "body.licences" in body["detail"]
    assert body["errors"] == [{"field": "body.licences", "message": "Field required"}]


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    answer = await client.post("/resources", content=b'{"name": "Atlas",', headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["title"] == "Malformed request body"


async def test_bad_path_parameter_named(client: httpx.AsyncClient) -> None:
    answer = await client.get("/resources/abc")
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "path.rid"


async def test_problem_raised_by_a_service(client: httpx.AsyncClient) -> None:
    answer = await client.get("/resources/7")
    assert answer.status_code == 403
    assert answer.json() | {"request_id": None} == {
        "type": "/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "Resource 7 belongs to another vendor.",
        "instance": "/resources/7",
        "vendor": "other",
        "request_id": None,
    }


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nowhere")).json()["status"] == 404
    answer = await client.delete("/resources")
    assert answer.status_code == 405
    assert answer.headers["content-type"] == PROBLEM_JSON


async def test_bug_is_500_without_internals(client: httpx.AsyncClient) -> None:
    answer = await client.get("/resources/13", headers={"x-request-id": "req-13"})
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert "hunter2" not in answer.text
    assert answer.json()["request_id"] == "req-13"

"""The gateway routes /api/<service>/… to the service, carries the request id and trace, and answers
with a problem document when it cannot."""

import json
import re
import time
from collections.abc import Callable

import httpx

from maille_devstack.processes import ServiceProcess, free_port


def logged_lines(service: ServiceProcess, wanted: Callable[[dict], bool], timeout: float = 3.0) -> list[dict]:
    """The service's JSON log lines that `wanted` picks, waiting a little for them (a line is written
    once the answer has gone)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in service.process.log_path.read_text().splitlines() if line.startswith("{")]
        found = [entry for entry in lines if wanted(entry)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def gateway_for(start: Callable[..., ServiceProcess], routes: dict[str, str]) -> ServiceProcess:
    return start("gateway", env={"MAILLE_GATEWAY_ROUTES": json.dumps(routes), "MAILLE_GATEWAY_RETRY_AFTER": "7"})


def test_routes_to_the_service(service_factory: Callable[..., ServiceProcess]) -> None:
    # Behind the gateway a service logs only its problems; asked to log every request, it shows the correlation.
    catalog = service_factory("catalog", env={"MAILLE_CATALOG_ACCESS_LOG": "all"})
    gateway = gateway_for(service_factory, {"catalog": catalog.url})
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    answer = httpx.get(
        f"{gateway.url}/api/catalog/v1/about",
        headers={"x-request-id": "morning-rush-1", "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    assert answer.status_code == 200
    assert answer.json()["name"] == "catalog"
    assert answer.headers["x-request-id"] == "morning-rush-1"
    # The catalog logged the same request id and the same trace, continued through the gateway.
    # The gateway's own access line: one JSON object, with the request, the trace and the caller.
    at_gateway = logged_lines(
        gateway, lambda entry: entry.get("logger") == "maille.access" and entry.get("upstream") == "catalog"
    )
    assert len(at_gateway) == 1
    line = at_gateway[0]
    assert (line["request_id"], line["trace_id"], line["status"], line["route"]) == (
        "morning-rush-1",
        trace_id,
        200,
        "/api/catalog/",
    )
    assert line["duration_ms"] > 0 and line["method"] == "GET" and line["caller"] is None
    access = logged_lines(catalog, lambda entry: entry.get("path") == "/api/catalog/v1/about")
    assert access and access[-1]["request_id"] == "morning-rush-1"
    assert access[-1]["trace_id"] == trace_id


def test_query_and_body_pass_through(service_factory: Callable[..., ServiceProcess]) -> None:
    catalog = service_factory("catalog")
    gateway = gateway_for(service_factory, {"catalog": catalog.url})
    # The catalog's own 404/405 problems come back unchanged, body and all.
    answer = httpx.post(
        f"{gateway.url}/api/catalog/v1/about?x=1", content=b'{"a": 1}', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["instance"] == "/api/catalog/v1/about"


def test_unknown_route_is_404_problem(service_factory: Callable[..., ServiceProcess]) -> None:
    gateway = gateway_for(service_factory, {})
    for path in ("/api/nothing/v1/about", "/elsewhere"):
        answer = httpx.get(f"{gateway.url}{path}")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
    assert "No service answers /api/nothing/" in httpx.get(f"{gateway.url}/api/nothing/v1/about").json()["detail"]


def test_service_down_is_503_with_retry_after(service_factory: Callable[..., ServiceProcess]) -> None:
    gateway = gateway_for(service_factory, {"catalog": f"http://127.0.0.1:{free_port()}"})
    answer = httpx.get(f"{gateway.url}/api/catalog/v1/about")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "7"
    assert answer.json()["service"] == "catalog"


def test_gateway_health(service_factory: Callable[..., ServiceProcess]) -> None:
    gateway = gateway_for(service_factory, {})
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "alive"}
    assert httpx.get(f"{gateway.url}/readyz").json()["checks"] == {"nats": True}
    assert re.fullmatch(r"[0-9a-f]{32}", httpx.get(f"{gateway.url}/healthz").headers["x-request-id"])


def test_every_problem_names_a_page_that_says_what_it_means(service_factory: Callable[..., ServiceProcess]) -> None:
    catalog = service_factory("catalog")
    gateway = gateway_for(service_factory, {"catalog": catalog.url, "library": f"http://127.0.0.1:{free_port()}"})
    answers = [
        httpx.post(f"{gateway.url}/api/catalog/v1/about"),  # the service's 405
        httpx.get(f"{gateway.url}/api/nothing/v1/about"),  # the gateway's 404
        httpx.get(f"{gateway.url}/api/library/v1/about"),  # the gateway's 503, its upstream away
        httpx.get(f"{gateway.url}/api/catalog/v1/vendor/resources"),  # the service's 401
    ]
    for answer in answers:
        kind = answer.json()["type"]
        assert kind.startswith("/problems/"), answer.json()
        page = httpx.get(f"{gateway.url}{kind}")  # a relative reference: resolved against the API's host
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f"HTTP {answer.status_code}" in page.text and 'lang="fr"' in page.text
    index = httpx.get(f"{gateway.url}/problems")
    assert all(kind in index.text for kind in ("/problems/not-found", "/problems/unavailable", "/problems/invalid"))
    assert httpx.get(f"{gateway.url}/problems/nothing-of-the-sort").status_code == 404

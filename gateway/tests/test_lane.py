"""The fast lane (lane.py) answers the common request exactly as the general path does, and hands over
to it whatever goes off the common path: a large answer, a connection that breaks, a service too slow."""

import json
import socket
import time

import httpx

from .conftest import Echo, Issuer
from .test_routing import logged_lines

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def to_record(traceparent: str) -> bool:
    """Whether a W3C traceparent asks for its trace to be recorded (the sampled flag)."""
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 1)


def access_lines(gw, request_id: str) -> list[dict]:
    return logged_lines(
        gw, lambda entry: entry.get("logger") == "maille.access" and entry.get("request_id") == request_id
    )


def ask(client: httpx.Client, token: str, request_id: str, path: str = "/api/echo/v1/things?page=2") -> httpx.Response:
    return client.get(
        path,
        headers={
            "authorization": f"Bearer {token}",
            "x-request-id": request_id,
            "cookie": "session=not-forwarded",
            "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
            "accept-language": "fr-FR",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-proto": "https",
        },
    )


def test_the_lane_answers_as_the_general_path_does(gateway, issuer: Issuer) -> None:
    token = issuer.token(subject="vendor-1")
    answers = {}
    for lane in ("true", "false"):
        gw = gateway(fast_lane=lane)
        with httpx.Client(base_url=gw.url) as client:
            ask(client, token, f"first-{lane}")  # the token verified, a connection to the service kept
            answers[lane] = ask(client, token, f"second-{lane}")
            line = access_lines(gw, f"second-{lane}")
        assert line and line[0]["lane"] is (lane == "true")  # the lane took it when on, not when off
        assert (line[0]["status"], line[0]["route"], line[0]["caller"], line[0]["trace_id"]) == (
            200,
            "/api/echo/",
            "c:vendor-1",
            TRACE,
        )
    fast, general = answers["true"], answers["false"]
    assert fast.status_code == general.status_code == 200
    seen_fast, seen_general = fast.json(), general.json()
    assert seen_fast["path"] == seen_general["path"] == "/api/echo/v1/things?page=2"
    # What the service received: the same headers, but for the request's own ids.
    for seen, rid in ((seen_fast, "second-true"), (seen_general, "second-false")):
        headers = seen["headers"]
        assert headers["authorization"] == f"Bearer {token}" and headers["x-request-id"] == rid
        assert headers["traceparent"].split("-")[1] == TRACE
        # The test connects from 127.0.0.1, a trusted proxy by default (FORWARDED_ALLOW_IPS): what it says is taken.
        assert (headers["x-forwarded-for"], headers["x-forwarded-proto"]) == ("203.0.113.7", "https")
        assert headers["accept-language"] == "fr-FR" and "cookie" not in headers
    assert set(seen_fast["headers"]) == set(seen_general["headers"])
    # What the caller received: the same headers, one Date each.
    assert fast.headers["x-request-id"] == "second-true" and general.headers["x-request-id"] == "second-false"
    assert sorted(k for k in fast.headers if k != "x-request-id") == sorted(
        k for k in general.headers if k != "x-request-id"
    )
    assert len(fast.headers.get_list("date")) == len(general.headers.get_list("date")) == 1
    assert "server" not in fast.headers


def test_a_large_answer_is_streamed_back(gateway, issuer: Issuer) -> None:
    gw = gateway()
    auth = {"authorization": f"Bearer {issuer.token()}"}
    size = 3 * 1024 * 1024 + 5
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        assert client.get("/api/echo/v1/x", headers=auth).status_code == 200
        for _ in range(2):  # through the lane: its answer has no length, so it is handed over and streamed
            big = client.get(f"/api/echo/v1/big/{size}", headers={**auth, "x-request-id": "big-one"})
            assert big.status_code == 200 and len(big.content) == size and set(big.content) == {ord("x")}
            assert big.headers["x-request-id"] == "big-one"
        assert (
            client.get("/api/echo/v1/after", headers=auth).json()["path"] == "/api/echo/v1/after"
        )  # the connection goes on
    lines = access_lines(gw, "big-one")
    assert len(lines) == 2 and lines[-1]["lane"] is True and lines[-1]["status"] == 200


def test_a_broken_connection_is_tried_again_and_a_slow_service_is_504(gateway, issuer: Issuer, echo: Echo) -> None:
    gw = gateway(upstream_timeout="0.5", upstream_retries="1")
    auth = {"authorization": f"Bearer {issuer.token()}"}
    with httpx.Client(base_url=gw.url) as client:
        assert client.get("/api/echo/v1/x", headers=auth).status_code == 200
        # The service drops the lane's request without answering: the general path asks again and gets the answer.
        echo.behaviour.update(drop=1, seen=0)
        again = client.get("/api/echo/v1/x", headers={**auth, "x-request-id": "dropped-once"})
        assert again.status_code == 200 and again.json()["path"] == "/api/echo/v1/x"
        assert echo.behaviour["seen"] == 2
        # Too slow twice (the lane's attempt, then the one retry): 504 in the one error shape.
        echo.behaviour.update(delay=1.2, seen=0)
        started = time.perf_counter()
        slow = client.get("/api/echo/v1/x", headers=auth)
        assert slow.status_code == 504 and slow.headers["content-type"] == "application/problem+json"
        assert slow.json()["service"] == "echo"
        assert 0.9 < time.perf_counter() - started < 2.5  # two attempts of 0.5 s, not three
        echo.behaviour.clear()


def test_pipelined_requests_are_answered_in_order_and_idle_connections_closed(gateway, issuer: Issuer) -> None:
    gw = gateway()
    token = issuer.token()
    port = int(gw.url.rsplit(":", 1)[1])
    assert httpx.get(f"{gw.url}/api/echo/v1/warm", headers={"authorization": f"Bearer {token}"}).status_code == 200
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        requests = b"".join(
            b"GET /api/echo/v1/n/%d HTTP/1.1\r\nhost: maille\r\nauthorization: Bearer %s\r\n\r\n" % (n, token.encode())
            for n in range(3)
        )
        sock.sendall(requests)
        received = b""
        while received.count(b'"path"') < 3:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed early: {received!r}"
            received += chunk
        paths = [
            json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])["path"]
            for part in received.split(b"HTTP/1.1 200")[1:]
        ]
        assert paths == ["/api/echo/v1/n/0", "/api/echo/v1/n/1", "/api/echo/v1/n/2"]
        # Left idle, the connection is closed by the gateway after its keep-alive time (uvicorn's 5 s).
        started = time.monotonic()
        assert sock.recv(65536) == b""
        assert 4 < time.monotonic() - started < 8


def test_traces_to_record_go_the_general_path_and_the_others_the_lane(gateway, issuer: Issuer, echo: Echo) -> None:
    # A collector is configured (the echo takes the OTLP posts) and no new trace is drawn for recording.
    gw = gateway(otlp_endpoint=echo.url, trace_sample_ratio="0")
    auth = {"authorization": f"Bearer {issuer.token()}"}
    with httpx.Client(base_url=gw.url) as client:
        client.get("/api/echo/v1/x", headers=auth)
        new = client.get("/api/echo/v1/x", headers={**auth, "x-request-id": "new-trace"})
        asked = client.get(
            "/api/echo/v1/x",
            headers={**auth, "x-request-id": "asked-trace", "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
        )
    # A new trace not drawn: carried on as not to be recorded, through the lane.
    assert not to_record(new.json()["headers"]["traceparent"])
    assert access_lines(gw, "new-trace")[0]["lane"] is True
    # The caller asks for its trace to be recorded: the general path records the gateway's span and says so on.
    assert asked.json()["headers"]["traceparent"].startswith(f"00-{TRACE}-") and to_record(
        asked.json()["headers"]["traceparent"]
    )
    assert access_lines(gw, "asked-trace")[0]["lane"] is False
    deadline = time.monotonic() + 15
    while "/v1/traces" not in echo.behaviour.get("paths", []) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "/v1/traces" in echo.behaviour["paths"]  # the span went to the collector


def test_every_new_trace_recorded_takes_the_general_path(gateway, issuer: Issuer, echo: Echo) -> None:
    gw = gateway(otlp_endpoint=echo.url)  # trace_sample_ratio 1: every trace recorded
    auth = {"authorization": f"Bearer {issuer.token()}"}
    with httpx.Client(base_url=gw.url) as client:
        client.get("/api/echo/v1/x", headers=auth)
        answer = client.get("/api/echo/v1/x", headers={**auth, "x-request-id": "recorded"})
    assert to_record(answer.json()["headers"]["traceparent"])
    assert access_lines(gw, "recorded")[0]["lane"] is False

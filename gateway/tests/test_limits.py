"""What protects the platform at the gateway: rate limits, body limits, slow clients, an upstream that
fails (retries, circuit breaker, timeouts) — each answered in the one error shape — and large bodies
streamed both ways."""

import json
import socket
import time

import httpx

from maille_devstack.processes import ServiceProcess, free_port

from .conftest import Echo, Issuer


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_caller_over_its_rate_gets_429_with_retry_after_and_others_are_not_slowed(gateway, issuer: Issuer) -> None:
    # 0.5/s, bursts of 10: no token comes back while the 14 requests go, however slow the machine.
    gw = gateway(rate_client="0.5", rate_burst_seconds="20")
    greedy, other = bearer(issuer.token(subject="greedy")), bearer(issuer.token(subject="other"))
    with httpx.Client(base_url=gw.url) as client:
        answers = [client.get("/api/echo/v1/x", headers=greedy).status_code for _ in range(14)]
        assert answers[:10] == [200] * 10 and answers[10:] == [429] * 4
        limited = client.get("/api/echo/v1/x", headers=greedy)
        assert (
            limited.headers["content-type"] == "application/problem+json" and int(limited.headers["retry-after"]) >= 1
        )
        assert client.get("/api/echo/v1/x", headers=other).status_code == 200
        time.sleep(2.1)  # the bucket refills at one every 2 s
        assert client.get("/api/echo/v1/x", headers=greedy).status_code == 200


def test_bodies_over_the_limit_are_413_announced_or_streamed(gateway, issuer: Issuer, echo: Echo) -> None:
    gw = gateway(max_body_bytes="100000")
    auth = bearer(issuer.token())
    announced = httpx.post(f"{gw.url}/api/echo/v1/upload", content=b"x" * 100_001, headers=auth)
    assert announced.status_code == 413 and announced.headers["content-type"] == "application/problem+json"

    def chunks():
        for _ in range(20):
            yield b"y" * 10_000

    streamed = httpx.post(f"{gw.url}/api/echo/v1/upload", content=chunks(), headers=auth)  # chunked, no length
    assert streamed.status_code == 413
    fits = httpx.post(f"{gw.url}/api/echo/v1/upload", content=b"z" * 100_000, headers=auth)
    assert fits.status_code == 200 and fits.json()["received"] == 100_000


def test_large_bodies_stream_both_ways(gateway, issuer: Issuer) -> None:
    gw = gateway(max_body_bytes=str(64 * 1024 * 1024))
    auth = bearer(issuer.token())

    def chunks():
        for _ in range(40 * 16):
            yield b"u" * 65536  # 40 MiB, sent without a length

    up = httpx.post(f"{gw.url}/api/echo/v1/upload", content=chunks(), headers=auth, timeout=60)
    assert up.status_code == 200 and up.json()["received"] == 40 * 1024 * 1024
    size = 50 * 1024 * 1024
    received = 0
    with httpx.stream("GET", f"{gw.url}/api/echo/v1/big/{size}", headers=auth, timeout=60) as down:
        assert down.status_code == 200
        for part in down.iter_raw():
            received += len(part)
    assert received == size


def test_a_client_that_stops_sending_its_body_gets_408(gateway, issuer: Issuer) -> None:
    gw = gateway(body_read_timeout="1")
    token = issuer.token()
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(
            f"POST /api/echo/v1/upload HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n"
            f"content-type: application/octet-stream\r\ncontent-length: 200000\r\n\r\n".encode()
            + b"a" * 70_000
        )
        sock.settimeout(10)
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 408") and "application/problem+json" in answer


def test_an_upstream_down_is_503_and_a_failing_one_opens_its_circuit(service_factory, issuer: Issuer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    silent = socket.create_server(("127.0.0.1", 0), backlog=64)  # takes connections, never answers
    gw: ServiceProcess = service_factory(
        "gateway",
        env={
            "MAILLE_GATEWAY_ROUTES": json.dumps(
                {"echo": dead, "silent": f"http://127.0.0.1:{silent.getsockname()[1]}"}
            ),
            "MAILLE_GATEWAY_AUTH_ISSUER": issuer.issuer,
            "MAILLE_GATEWAY_AUTH_JWKS_URL": issuer.jwks_url,
            "MAILLE_GATEWAY_CIRCUIT_FAILURES": "3",
            "MAILLE_GATEWAY_CIRCUIT_OPEN_SECONDS": "30",
            "MAILLE_GATEWAY_RETRY_AFTER": "9",
            "MAILLE_GATEWAY_UPSTREAM_TIMEOUT": "0.3",
            "MAILLE_GATEWAY_UPSTREAM_RETRIES": "0",
        },
    )
    auth = bearer(issuer.token())
    down = httpx.get(f"{gw.url}/api/echo/v1/x", headers=auth)
    assert down.status_code == 503 and down.headers["retry-after"] == "9" and down.json()["service"] == "echo"
    # Three timeouts in a row open the circuit: the next callers are answered at once, not after a timeout each.
    for _ in range(3):
        assert httpx.get(f"{gw.url}/api/silent/v1/x", headers=auth).status_code == 504
    started = time.perf_counter()
    opened = httpx.get(f"{gw.url}/api/silent/v1/x", headers=auth)
    assert opened.status_code == 503 and opened.headers["retry-after"] == "9"
    assert time.perf_counter() - started < 0.25
    silent.close()


def test_a_slow_upstream_is_504_and_a_failing_one_is_passed_through(gateway, issuer: Issuer, echo: Echo) -> None:
    gw = gateway(upstream_timeout="0.5", upstream_retries="0")
    auth = bearer(issuer.token())
    echo.behaviour["delay"] = 1.5
    slow = httpx.post(f"{gw.url}/api/echo/v1/x", headers=auth, json={})
    assert slow.status_code == 504 and slow.headers["content-type"] == "application/problem+json"
    echo.behaviour.clear()
    echo.behaviour["status"] = 500
    failing = httpx.get(f"{gw.url}/api/echo/v1/x", headers=auth)
    assert failing.status_code == 500 and failing.json()["method"] == "GET"  # the service's own answer, untouched


def test_idempotent_requests_are_retried_when_the_upstream_drops_the_connection(
    service_factory, issuer: Issuer
) -> None:
    # An upstream that drops every other connection without answering.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    import threading

    served = {"dropped": 0, "answered": 0}

    def serve() -> None:
        count = 0
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                count += 1
                if count % 2:
                    served["dropped"] += 1
                    continue
                served["answered"] += 1
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: "
                    b"close\r\n\r\n{}"
                )

    threading.Thread(target=serve, daemon=True).start()
    gw = service_factory(
        "gateway",
        env={
            "MAILLE_GATEWAY_ROUTES": json.dumps({"echo": f"http://127.0.0.1:{port}"}),
            "MAILLE_GATEWAY_AUTH_ISSUER": issuer.issuer,
            "MAILLE_GATEWAY_AUTH_JWKS_URL": issuer.jwks_url,
        },
    )
    auth = bearer(issuer.token())
    for _ in range(3):
        assert httpx.get(f"{gw.url}/api/echo/v1/x", headers=auth).status_code == 200
    assert served["dropped"] >= 3
    # A POST is not sent twice: the dropped one is answered 503.
    statuses = {httpx.post(f"{gw.url}/api/echo/v1/x", headers=auth, json={}).status_code for _ in range(2)}
    assert 503 in statuses
    listener.close()

"""The process's metrics as a Prometheus scrapes them: served on the metrics port (not the HTTP one), the standard
OTEL_* variables honoured, gauges read from what the process keeps. Each case runs in a process of its own (the
providers are the process's, set once)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from maille_devstack.processes import free_port

SCRAPE = textwrap.dedent(
    """
    import sys, urllib.request
    from maille_kit.telemetry import meter, observe, serve_metrics, setup_telemetry
    setup_telemetry(service="catalog", version="1.2.3", endpoint=None)
    meter().create_counter("maille.test.done", description="things done").add(3, {"what": "x"})
    remove = observe("maille.test.waiting", lambda: [(7, {"queue": "q"})], description="things waiting")
    server = serve_metrics("127.0.0.1", int(sys.argv[1]))
    if server is None:
        print("NO SERVER")
        raise SystemExit(0)
    print(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode())
    remove()
    print("AFTER REMOVE")
    print(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode())
    server.close()
    """
)


def scrape(**env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRAPE, str(free_port())],
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_metrics_are_served_with_the_service_named_and_gauges_read_live() -> None:
    out = scrape()
    before, after = out.split("AFTER REMOVE")
    assert 'maille_test_done_total{what="x"} 3.0' in before
    assert 'maille_test_waiting{queue="q"} 7.0' in before
    assert 'service_name="maille-catalog"' in before and 'service_version="1.2.3"' in before
    assert "maille_test_waiting{" not in after  # a source removed (a stopped outbox) is no longer read


def test_the_standard_otel_variables_are_honoured() -> None:
    named = scrape(OTEL_SERVICE_NAME="ent-catalog-35", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=recette")
    assert 'service_name="ent-catalog-35"' in named and 'deployment_environment="recette"' in named
    assert scrape(OTEL_SDK_DISABLED="true").strip() == "NO SERVER"  # nothing recorded, nothing served


def test_a_metrics_port_taken_stops_the_process_saying_so() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-c", SCRAPE, str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert f"metrics port {port} cannot be served" in done.stderr


SPANS = textwrap.dedent(
    """
    import sys
    from maille_kit.telemetry import setup_telemetry, tracer
    setup_telemetry(service="catalog", version="1.2.3", endpoint=sys.argv[1] or None)
    with tracer().start_as_current_span("work") as span:
        context = span.get_span_context()
        print(span.is_recording(), context.is_valid, context.trace_flags.sampled)
    """
)


def spans(endpoint: str = "", **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SPANS, endpoint],
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_spans_are_recorded_only_when_someone_exports_them() -> None:
    # No collector: the span is not recorded, but it has its ids (the logs and the calls made carry them).
    assert spans() == "False True False"
    assert spans(f"http://127.0.0.1:{free_port()}") == "True True True"
    assert spans(OTEL_TRACES_SAMPLER="always_on") == "True True True"  # the operator's sampler is theirs

"""OpenTelemetry traces and metrics: metrics served to a Prometheus at `/metrics` on each process's metrics port,
and both exported over OTLP/HTTP when a collector is configured.

The standard `OTEL_*` variables are honoured: `OTEL_SDK_DISABLED`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_EXPORTER_OTLP_ENDPOINT` (and its per-signal and header variables) when the service's own `otlp_endpoint` is
not set, `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_TRACES_SAMPLER`.

W3C trace context is carried over HTTP (the kit's middleware and HTTP client) and over NATS
message headers (`inject_headers` / `extract_context`).

Gauges that read what the process keeps (an outbox's backlog, a consumer's pending events) are `observe`d: a
source is a function giving (value, labels) pairs, read in the scrape's own thread, so it only reads numbers the
process has at hand — never the docstore or NATS.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

log = logging.getLogger("maille.telemetry")

_providers: tuple[TracerProvider, MeterProvider] | None = None

# Histogram buckets (seconds): a request, from 5 ms to 10 s; a docstore call, from half a millisecond; a relay delay,
# up to five minutes.
REQUEST_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
CALL_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELAY_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

Source = Callable[[], Iterable[tuple[float, Mapping[str, str]]]]


def setup_telemetry(*, service: str, version: str, endpoint: str | None) -> None:
    """Install the process's tracer and meter providers: metrics for a Prometheus to scrape, and both signals
    exported to `endpoint` (or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`) when one is set."""
    global _providers
    if _providers is not None:
        return
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return  # the API's no-op providers: nothing recorded, nothing served
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; OTEL_SERVICE_NAME, when set, names the process instead.
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or f"maille-{service}",
            "service.version": version,
            "service.namespace": "maille",
        }
    )
    exporting = bool(endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    # Spans nobody exports are not recorded (their ids still go into the logs and onto the calls made); a sampler
    # the operator names (OTEL_TRACES_SAMPLER) is theirs to choose.
    sampler = None if exporting or os.environ.get("OTEL_TRACES_SAMPLER") else ALWAYS_OFF
    tracer_provider = TracerProvider(resource=resource, sampler=sampler)
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    readers: list[MetricReader] = [PrometheusMetricReader(scope_info_enabled=False)]
    if exporting:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if endpoint:
            base = endpoint.rstrip("/")
            spans, points = OTLPSpanExporter(endpoint=f"{base}/v1/traces"), OTLPMetricExporter(f"{base}/v1/metrics")
        else:  # the exporters read OTEL_EXPORTER_OTLP_* themselves
            spans, points = OTLPSpanExporter(), OTLPMetricExporter()
        tracer_provider.add_span_processor(BatchSpanProcessor(spans))
        readers.append(PeriodicExportingMetricReader(points))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _providers = (tracer_provider, meter_provider)


def shutdown_telemetry() -> None:
    """Flush and stop the exporters (at process exit)."""
    global _providers
    if _providers is None:
        return
    tracer_provider, meter_provider = _providers
    tracer_provider.shutdown()
    meter_provider.shutdown()
    _providers = None


class MetricsServer:
    """`/metrics` in Prometheus' text format, on a port of its own (a thread of prometheus_client's), so that the
    gateway's public port never shows it and a scrape never waits behind the event loop."""

    def __init__(self, host: str, port: int) -> None:
        from prometheus_client import start_http_server

        self._server, self._thread = start_http_server(port, addr=host)
        self.port = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(host: str, port: int) -> MetricsServer | None:
    """Serve `/metrics` on `port` (0: not at all)."""
    if not port or _providers is None:
        return None
    try:
        server = MetricsServer(host, port)
    except OSError as exc:
        log.error("metrics port %d cannot be served: %s", port, exc)
        raise SystemExit(3) from exc
    log.info("metrics served", extra={"metrics_port": server.port})
    return server


class _Gauge:
    """One observable gauge fed by any number of sources (one per outbox, per consumer …)."""

    def __init__(self, name: str, description: str, unit: str) -> None:
        self.sources: dict[int, Source] = {}
        self.lock = threading.Lock()
        meter().create_observable_gauge(name, callbacks=[self._observe], description=description, unit=unit)

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self.lock:
            sources = list(self.sources.values())
        for source in sources:
            try:
                for value, labels in source():
                    yield Observation(value, dict(labels))
            except Exception as exc:  # a source that fails leaves the others' figures
                log.warning("gauge source failed: %s", exc)


_gauges: dict[str, _Gauge] = {}
_gauges_lock = threading.Lock()


def observe(name: str, source: Source, *, description: str, unit: str = "1") -> Callable[[], None]:
    """Add `source` to the gauge `name` (made once per process); returns what removes it again."""
    with _gauges_lock:
        gauge = _gauges.get(name)
        if gauge is None:
            gauge = _gauges[name] = _Gauge(name, description, unit)
    key = id(source)
    with gauge.lock:
        gauge.sources[key] = source

    def remove() -> None:
        with gauge.lock:
            gauge.sources.pop(key, None)

    return remove


def observe_certificate(name: str, path: Path) -> Callable[[], None]:
    """The expiry of the PEM certificate at `path` (read again at each scrape: a renewed Secret shows at once),
    as `maille.certificate.expiry` (seconds since the epoch) labelled `certificate=name`."""
    from cryptography import x509

    def expiry() -> list[tuple[float, dict[str, str]]]:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        return [(certificate.not_valid_after_utc.timestamp(), {"certificate": name})]

    return observe(
        "maille.certificate.expiry", expiry, unit="s", description="when a certificate the service presents expires"
    )


def tracer() -> trace.Tracer:
    """The kit's tracer."""
    return trace.get_tracer("maille")


def meter() -> metrics.Meter:
    """The kit's meter."""
    return metrics.get_meter("maille")


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current W3C trace context (`traceparent`, `tracestate`) to outgoing headers."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> Context:
    """The trace context carried by incoming headers (HTTP or NATS)."""
    return propagate.extract(dict(headers or {}))
